import * as fs from 'node:fs';
import { SparkqError } from '../errors';
import { type Part, crc32, writeFileAtomic, writeNewFile, writeOverSpare } from './fileio';

/*
 * A snapshot file is the SQLite image followed by a trailer that makes it self-verifying, so a damaged file is caught
 * even when the manifest is what was lost:
 *   trailer = "SPQS" | u32 version | f64 seq | u32 byteLength | u32 crc32(image) | u32 crc32(previous 24 bytes)
 */
const MAGIC = 0x53515053; // "SPQS"
const VERSION = 1;
const TRAILER_BYTES = 28;

export function snapshotFileName(seq: number): string {
  return `snapshot-${String(seq).padStart(12, '0')}.sqlite`;
}
export function journalFileName(baseSeq: number): string {
  return `journal-${String(baseSeq).padStart(12, '0')}.log`;
}
export const DATA_FILE_PATTERN = /^(snapshot|journal)-(\d{12})\.(sqlite|log)$/;

/**
 * Writes a snapshot file: the image, then its trailer (two parts, no concatenated copy of the image). The image's
 * checksum is computed chunk by chunk as the chunks are written (see Part in fileio), so the trailer, which holds it,
 * is made after the image is written.
 * `fresh`: the file is new and nothing names it until the caller's next atomic step (see writeNewFile), so it is
 * created in place and the caller syncs the directory; otherwise (or when a leftover of that name exists) it is
 * replaced atomically (temp file, fsync, rename, directory fsync).
 * `spare` (with `fresh`): an old file that nothing names, to write the snapshot in instead of a new one (see
 * writeOverSpare); when it is gone, the snapshot is written as a fresh file.
 */
export function writeSnapshot(
  file: string,
  image: Uint8Array,
  seq: number,
  durable: boolean,
  options: { fresh?: boolean; spare?: string } = {},
): { bytes: number; crc: number } {
  let crc = 0;
  let summed = 0;
  const parts: Part[] = [
    {
      bytes: image,
      written: (chunk) => {
        crc = crc32(chunk, crc);
        summed += chunk.length;
      },
    },
    () => {
      // Every byte of the image went through `written` (a second attempt, after writeNewFile found the name taken,
      // starts again from nothing).
      if (summed !== image.length) throw new Error(`internal: checksummed ${summed} of the ${image.length} bytes of the snapshot image`);
      return trailerOf(image.length, crc, seq);
    },
  ];
  const again = () => {
    crc = 0;
    summed = 0;
    return parts;
  };
  const done = options.fresh && ((options.spare !== undefined && writeOverSpare(options.spare, file, again(), { durable })) || writeNewFile(file, again(), { durable }));
  if (!done) writeFileAtomic(file, again(), { durable });
  return { bytes: image.length + TRAILER_BYTES, crc };
}

function trailerOf(length: number, crc: number, seq: number): Buffer {
  const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
  trailer.writeUInt32LE(MAGIC, 0);
  trailer.writeUInt32LE(VERSION, 4);
  trailer.writeDoubleLE(seq, 8);
  trailer.writeUInt32LE(length, 16);
  trailer.writeUInt32LE(crc, 20);
  trailer.writeUInt32LE(crc32(trailer.subarray(0, 24)), 24);
  return trailer;
}

/** Reads a snapshot file and checks it against its trailer (and against the manifest's record of it, when given). */
export function readSnapshot(file: string, expect?: { seq: number; crc: number; bytes: number }): { image: Uint8Array; seq: number } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SparkqError('corrupt', `snapshot ${file} is missing; the manifest names it`, { file });
    throw e;
  }
  const bad = (what: string) => new SparkqError('corrupt', `snapshot ${file} is damaged: ${what}`, { file });
  if (buf.length === 0) throw bad('the file is empty');
  if (expect && buf.length !== expect.bytes) throw bad(`it has ${buf.length} bytes where ${expect.bytes} were written (truncated or extended)`);
  if (buf.length < TRAILER_BYTES) throw bad('the file is too short to be a snapshot');
  const t = buf.length - TRAILER_BYTES;
  if (buf.readUInt32LE(t) !== MAGIC || buf.readUInt32LE(t + 24) !== crc32(buf.subarray(t, t + 24))) throw bad('its trailer is missing or damaged (truncated?)');
  if (buf.readUInt32LE(t + 4) !== VERSION) throw bad(`unknown snapshot format version ${buf.readUInt32LE(t + 4)}`);
  const seq = buf.readDoubleLE(t + 8);
  const length = buf.readUInt32LE(t + 16);
  if (length !== t) throw bad('its recorded length does not match the file');
  const image = buf.subarray(0, t);
  const crc = crc32(image);
  if (crc !== buf.readUInt32LE(t + 20)) throw bad('the checksum of its contents does not match');
  if (expect && (crc !== expect.crc || seq !== expect.seq)) throw bad('it is not the snapshot the manifest recorded');
  return { image, seq };
}

export interface Generation {
  snapshot: { file: string; seq: number; bytes: number; crc: number };
  journal: { file: string; baseSeq: number };
}

export interface Manifest {
  format: 1;
  current: Generation;
  /** The generation before, kept so that a damaged current snapshot can be rebuilt from it. */
  previous: Generation | null;
  writtenAt: string;
}

export function writeManifest(file: string, manifest: Manifest, durable: boolean): void {
  const body = JSON.stringify(manifest);
  writeFileAtomic(file, JSON.stringify({ manifest, crc: crc32(Buffer.from(body, 'utf8')) }, null, 1) + '\n', { durable });
}

/** The manifest, or null when there is none; SparkqError('corrupt') when it is there but damaged. */
export function readManifest(file: string): Manifest | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const bad = (what: string) => new SparkqError('corrupt', `manifest ${file} is damaged: ${what}`, { file });
  if (text.length === 0) throw bad('the file is empty');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('it is not valid JSON');
  }
  const o = parsed as { manifest?: Manifest; crc?: number };
  if (typeof o !== 'object' || o === null || typeof o.crc !== 'number' || typeof o.manifest !== 'object') throw bad('it lacks its fields');
  if (crc32(Buffer.from(JSON.stringify(o.manifest), 'utf8')) !== o.crc) throw bad('its checksum does not match');
  if (o.manifest.format !== 1) throw bad(`unknown manifest format ${String(o.manifest.format)}`);
  return o.manifest;
}
