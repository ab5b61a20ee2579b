import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Zlib from 'node:zlib';

let zlibCrc32: typeof Zlib.crc32 | undefined;

/** CRC-32 of bytes. Our own checksum, because `PRAGMA quick_check` misses most single-byte flips. */
export function crc32(data: Uint8Array, previous = 0): number {
  // node:zlib on demand: every client loads this module with the owner lock, and only an owner computes checksums;
  // loading zlib costs a few milliseconds.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  zlibCrc32 ??= (require('node:zlib') as typeof Zlib).crc32;
  return zlibCrc32(data, previous) >>> 0;
}

/** Makes a rename, create or removal in `dir` durable. */
export function fsyncDir(dir: string): void {
  // Windows cannot open a directory for fsync; the entry is as durable as NTFS makes it there.
  if (process.platform === 'win32') return;
  // Directories cannot be opened for writing; O_RDONLY + fsync is how a rename or create is made durable.
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

let tempCounter = 0;

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old or the new content, never a mix:
 * temp file → fsync → rename over → fsync the directory. In-place writes destroyed the file in 44 of 200 kill -9
 * cycles on these machines; this sequence in none. `temp` names the temp file, for a caller that sweeps its own
 * leftovers by name (the owner lock); by default it is `file` with `.<pid>.<n>.tmp` appended.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string | readonly Part[], options: { durable?: boolean; mode?: number; temp?: string } = {}): void {
  const durable = options.durable ?? true;
  const tmp = options.temp ?? `${file}.${process.pid}.${++tempCounter}.tmp`;
  const fd = fs.openSync(tmp, 'w', options.mode ?? 0o600);
  try {
    writeAll(fd, tmp, typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data, durable);
    if (durable) fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  if (durable) fsyncDir(path.dirname(file));
}

/** Writes all of `data` at the descriptor's position (one writeSync may write less than it was given). */
export function writeFully(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
}

/**
 * A part of a file's content: bytes; bytes with a function that sees each chunk of them right after it is written
 * (while it is still in the CPU's cache: the snapshot's checksum is computed that way, not in a pass of its own over
 * tens of megabytes); or a function that gives the bytes once the parts before are written (the snapshot's trailer,
 * which holds that checksum).
 */
export type Part = Uint8Array | { bytes: Uint8Array; written: (chunk: Uint8Array) => void } | (() => Uint8Array);

/** Parts are written in chunks of this size; a durable write starts the disk writing each chunk (see EarlyWriteback). */
const CHUNK_BYTES = 4 * 1024 * 1024;

/** Writes the parts at the descriptor's position, one after the other; returns how many bytes that was. */
function writeAll(fd: number, file: string, parts: readonly Part[], durable: boolean): number {
  // Parts are written one after the other (no concatenated copy: a snapshot image is tens of megabytes).
  const total = parts.reduce((n, p) => n + (typeof p === 'function' ? 0 : p instanceof Uint8Array ? p.length : p.bytes.length), 0);
  const early = durable && total > CHUNK_BYTES ? EarlyWriteback.open(file) : null;
  let bytes = 0;
  try {
    for (const part of parts) {
      const buf = typeof part === 'function' ? part() : part instanceof Uint8Array ? part : part.bytes;
      const written = typeof part === 'function' || part instanceof Uint8Array ? null : part.written;
      for (let at = 0; at < buf.length; ) {
        const end = Math.min(buf.length, at + CHUNK_BYTES);
        writeFully(fd, buf.subarray(at, end));
        early?.start();
        written?.(buf.subarray(at, end));
        at = end;
      }
      bytes += buf.length;
    }
  } finally {
    early?.close();
  }
  return bytes;
}

/**
 * Starts the disk writing a large file while the rest of it is still being written and checksummed: an fdatasync on a
 * second descriptor of the file, run on libuv's thread pool, at most one at a time. Without it the whole file goes to
 * the disk only in the final fsync, after all the CPU work. The caller's own fsync (on its descriptor, after the last
 * byte) is still what makes the file durable and what reports a failure; this one's result is ignored. Linux only:
 * there (since 4.13; Node 20 needs 4.18) a writeback error is reported to every descriptor that was open when it
 * happened, so this descriptor seeing it first cannot hide it from the caller's; elsewhere that is not promised.
 * Null when the second descriptor cannot be opened (then nothing starts early).
 */
class EarlyWriteback {
  private running = false;
  private closing = false;

  private constructor(private readonly fd: number) {}

  static open(file: string): EarlyWriteback | null {
    if (process.platform !== 'linux') return null;
    try {
      return new EarlyWriteback(fs.openSync(file, 'r+'));
    } catch {
      return null;
    }
  }

  start(): void {
    if (this.running || this.closing) return;
    this.running = true;
    fs.fdatasync(this.fd, () => {
      this.running = false;
      if (this.closing) this.release();
    });
  }

  /** Closes the descriptor once no sync is running on it. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (!this.running) this.release();
  }

  private release(): void {
    fs.close(this.fd, () => {});
  }
}

/**
 * Creates `file`, which must not exist, with `parts`, synced when `durable`; returns false (and writes nothing) when it
 * exists. For files that nothing names until a later, atomic step does (a manifest, a journaled effect): a crash
 * before that step leaves an unnamed file that the next open sweeps, so no temp file and rename are needed. The
 * caller makes the directory entry durable (fsyncDir) before that later step.
 */
export function writeNewFile(file: string, parts: readonly Part[], options: { durable: boolean; mode?: number }): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', options.mode ?? 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  finishFile(fd, file, () => {
    writeAll(fd, file, parts, options.durable);
    if (options.durable) fs.fsyncSync(fd);
  });
  return true;
}

/** Runs `write` on `fd`, an open descriptor of `file`, and closes it; on a failure `file` is removed too. */
function finishFile(fd: number, file: string, write: () => void): void {
  try {
    write();
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw e;
  }
  fs.closeSync(fd);
}

/**
 * Writes `parts` into `file` in the blocks of `spare`, an old file that nothing names any more (a dropped snapshot kept
 * for this): `spare` is renamed to `file`, overwritten from its first byte, cut to the new length and synced (data and
 * length: fdatasync). Like writeNewFile, for a file that nothing names until a later atomic step, whose caller syncs the
 * directory before that step; a crash before it leaves an unnamed file that the next open sweeps. What it saves over a
 * new file, for tens of megabytes: the file system allocating the new blocks (and zeroing pages for them) now, and
 * freeing the old file's blocks when it is removed (an unlink of a 17 MB file takes ~3.5 ms here). An existing `file`
 * is replaced (it can only be a leftover that nothing names either). Returns false, having done nothing, when `spare`
 * is not there; on a failure the renamed file is removed.
 */
export function writeOverSpare(spare: string, file: string, parts: readonly Part[], options: { durable: boolean }): boolean {
  try {
    fs.renameSync(spare, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch (e) {
    fs.rmSync(file, { force: true });
    throw e;
  }
  finishFile(fd, file, () => {
    const before = fs.fstatSync(fd).size;
    const bytes = writeAll(fd, file, parts, options.durable);
    if (before > bytes) fs.ftruncateSync(fd, bytes);
    if (options.durable) fs.fdatasyncSync(fd);
  });
  return true;
}

export function isTempFile(name: string): boolean {
  return name.endsWith('.tmp');
}

/**
 * Copies a damaged file into `asideDir` (never moves or rewrites the original) and returns where it went. Copies are
 * named by content, so opening the same damaged store again and again keeps one copy, not one per attempt.
 */
export function keepAside(file: string, asideDir: string, reason: string): string | null {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch {
    return null;
  }
  fs.mkdirSync(asideDir, { recursive: true, mode: 0o700 });
  const dest = path.join(asideDir, `${path.basename(file)}.${reason}-${crc32(data).toString(16).padStart(8, '0')}`);
  if (!fs.existsSync(dest)) writeFileAtomic(dest, data);
  return dest;
}
