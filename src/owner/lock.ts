/**
 * The single-owner lock (DESIGN.md, "One writer: the owner").
 *
 * Ownership is a set of generation-numbered files in the workspace's `.sparkq/` folder, `owner-<gen>.lock` with the
 * generation zero-padded to 10 digits. The holder of the HIGHEST generation is the owner. A generation is taken by
 * writing the holder record to a private temp file, fsyncing it and hard-linking it to its final name: link() never
 * replaces an existing name, so exactly one contender wins each generation, and a lock file is never seen half written.
 *
 * Invariants the fencing relies on:
 *  - The highest-generation file is never deleted. A winner deletes only LOWER generations, and release() does not
 *    delete its file but replaces it (rename over) with a "released" record. So once a file with generation > g has
 *    existed, one exists forever after, and "is there any generation above mine?" is a check whose answer, once yes,
 *    stays yes. That is what isCurrent() asks.
 *  - A lower generation that a winner deleted can be re-created by a slow contender that read the directory before the
 *    deletion (link succeeds on the freed name). Such a contender looks for a higher generation right after its link,
 *    finds it (it existed before the link, see above) and backs off, removing its file again.
 *
 * About 570 lines, on purpose: taking, proving stale, fencing and releasing are one protocol with the invariants
 * above, and each step is only right together with the others.
 */
import type * as Crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, writeFileAtomic, writeNewFile } from '../core/store/fileio';

export interface LockHolder {
  pid: number;
  startTime: string | null;
  generation: number;
  role: string;
  socketPath: string | null;
  acquiredAt: string;
}

export interface AcquireOptions {
  role: string;
  socketPath?: string | null;
  /** Asks the holder (normally over its IPC socket) whether it is there; false, a throw or a timeout = stale. */
  ping?: (holder: LockHolder) => Promise<boolean>;
  /** A lock younger than this is not pinged (its holder may still be starting its socket). Default 5,000 ms. */
  pingGraceMs?: number;
  /** Default 1,500 ms. */
  pingTimeoutMs?: number;
}

const LOCK_NAME = /^owner-(\d{10})\.lock$/;
const TEMP_NAME = /^\.owner-lock\.(\d+)\.[0-9a-f]+\.tmp$/;
/** An unparsable lock file younger than this is taken to be still being written (only possible without link()). */
const PARTIAL_GRACE_MS = 2_000;
const DEFAULT_PING_GRACE_MS = 5_000;
const DEFAULT_PING_TIMEOUT_MS = 1_500;
/**
 * isCurrent trusts an unchanged `.sparkq/` only when its time stamps were older than this when it was listed: well
 * above the time stamp granularity (a clock tick, ≤ 10 ms, on Linux file systems; 10 ms on exFAT), and 2.5 s for
 * stamps in whole seconds, which is what a file system with 1 s (HFS+) or 2 s (FAT) stamps gives. It lists the
 * folder anyway when its last listing is older than FULL_CHECK_MS.
 */
const RACY_MS = 50;
const RACY_WHOLE_SECONDS_MS = 2_500;
const FULL_CHECK_MS = 1_000;

/** Whether a time stamp `stampMs` seen at `atMs` is too recent to tell apart from a change in the same tick. */
function racy(stampMs: number, atMs: number): boolean {
  return atMs - stampMs < (stampMs % 1000 === 0 ? RACY_WHOLE_SECONDS_MS : RACY_MS);
}
/** Every retry means another contender made progress; this only stops a livelock from hanging the caller forever. */
const MAX_ATTEMPTS = 1_000;

function lockName(generation: number): string {
  return `owner-${String(generation).padStart(10, '0')}.lock`;
}

function errCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

// ---------------------------------------------------------------------------------------------------------------------
// Processes

let bootId: string | null | undefined;

/**
 * The start time of a process as an opaque string, or null where it cannot be known (any platform but Linux, or no
 * such process). On Linux: `<boot id>:<field 22 of /proc/<pid>/stat>` (clock ticks since boot); the boot id makes a
 * lock written before a reboot never match a process after it.
 */
export function processStartTime(pid: number): string | null {
  if (process.platform !== 'linux' || !isPid(pid)) return null;
  const stat = readProcStat(pid);
  return stat ? stat.startTime : null;
}

function readProcStat(pid: number): { state: string; startTime: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses and may itself contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0]; // field 3
  const ticks = rest[19]; // field 22
  if (state === undefined || ticks === undefined || !/^\d+$/.test(ticks)) return null;
  if (bootId === undefined) {
    try {
      bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      bootId = null;
    }
  }
  return { state, startTime: bootId ? `${bootId}:${ticks}` : ticks };
}

let procOk: boolean | undefined;
function procMounted(): boolean {
  return (procOk ??= fs.existsSync('/proc/self/stat'));
}

function isPid(pid: number): boolean {
  // kill(0) and kill(-n) address process groups, never one process: such a "pid" in a lock file is garbage.
  return Number.isSafeInteger(pid) && pid > 0;
}

/**
 * Whether `pid` is a running process and (when `startTime` is known) the same process that recorded `startTime`,
 * not a later one that reused the pid. EPERM from kill(pid, 0) means it exists. A zombie counts as dead.
 */
export function isProcessAlive(pid: number, startTime: string | null): boolean {
  if (!isPid(pid)) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (errCode(e) !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  const stat = readProcStat(pid);
  // kill() just said it exists, so a missing /proc entry means it exited in between (unless there is no /proc at all,
  // and then nothing but kill() can be asked).
  if (!stat) return !procMounted();
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === null || stat.startTime === startTime;
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading the directory

type LockEntry =
  | { kind: 'held'; generation: number; holder: LockHolder }
  | { kind: 'released'; generation: number }
  /** Unparsable: being written if young, otherwise stale. */
  | { kind: 'partial'; generation: number; mtimeMs: number }
  /** The file went away between readdir and read: a newer generation exists by now. */
  | { kind: 'vanished'; generation: number };

function lockGenerations(sparkqDir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(sparkqDir);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return [];
    throw e;
  }
  const out: number[] = [];
  for (const name of names) {
    const m = LOCK_NAME.exec(name);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

function highestGeneration(sparkqDir: string): number | null {
  let max: number | null = null;
  for (const g of lockGenerations(sparkqDir)) if (max === null || g > max) max = g;
  return max;
}

function parseHolder(text: string, generation: number): LockHolder | 'released' | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o['generation'] !== generation) return null;
  if (typeof o['released'] === 'string') return 'released';
  const { pid, startTime, role, socketPath, acquiredAt } = o;
  if (typeof pid !== 'number' || !isPid(pid)) return null;
  if (startTime !== null && typeof startTime !== 'string') return null;
  if (typeof role !== 'string' || typeof acquiredAt !== 'string') return null;
  if (socketPath !== null && typeof socketPath !== 'string') return null;
  return { pid, startTime, generation, role, socketPath, acquiredAt };
}

function readEntry(sparkqDir: string, generation: number): LockEntry {
  const file = path.join(sparkqDir, lockName(generation));
  let text: string;
  let mtimeMs: number;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      mtimeMs = fs.fstatSync(fd).mtimeMs;
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (errCode(e) === 'ENOENT') return { kind: 'vanished', generation };
    throw e;
  }
  const h = parseHolder(text, generation);
  if (h === 'released') return { kind: 'released', generation };
  if (h === null) return { kind: 'partial', generation, mtimeMs };
  return { kind: 'held', generation, holder: h };
}

/** The highest generation's entry, re-reading when it vanished under us. */
function readHighest(sparkqDir: string): LockEntry | null {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const g = highestGeneration(sparkqDir);
    if (g === null) return null;
    const e = readEntry(sparkqDir, g);
    if (e.kind !== 'vanished') return e;
  }
  throw new Error(`owner lock in ${sparkqDir}: lock files keep vanishing`);
}

/**
 * The current owner as recorded in `.sparkq/`, or null when there is none (no lock file, or the highest one was
 * released or is unreadable). Does not check whether the holder is alive.
 */
export function readOwner(sparkqDir: string): LockHolder | null {
  const e = readHighest(sparkqDir);
  return e?.kind === 'held' ? e.holder : null;
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

/** A fresh temp file name in `.sparkq/` (TEMP_NAME: cleanUp removes those whose process is dead). */
function tempName(sparkqDir: string): string {
  // node:crypto on demand: a client of a live owner reads the lock but never writes it, and loading crypto would
  // cost it a few milliseconds.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { randomBytes } = require('node:crypto') as typeof Crypto;
  return path.join(sparkqDir, `.owner-lock.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** A new temp file holding `content`, fsynced (removed again if writing it fails); returns its path. */
function writeTemp(sparkqDir: string, content: string): string {
  for (;;) {
    const tmp = tempName(sparkqDir);
    if (writeNewFile(tmp, [Buffer.from(content, 'utf8')], { durable: true })) return tmp;
  }
}

/** Codes with which link() says "this file system has no hard links" rather than "that name is taken". */
const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Creates `file` with `content` only if the name is free. Returns false when it is taken. Normally temp + fsync +
 * link, so the file appears complete; on a file system without hard links, an exclusive create written in place
 * (which is why a young unparsable lock file counts as "being written").
 */
function createExclusive(sparkqDir: string, file: string, content: string): boolean {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const tmp = writeTemp(sparkqDir, content);
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      const code = errCode(e);
      fs.rmSync(tmp, { force: true });
      if (code === 'EEXIST') return false;
      if (code === 'ENOENT') continue; // someone swept our temp file away: write it again
      if (code !== undefined && NO_LINK.has(code)) return createInPlace(file, content);
      throw e;
    }
    fs.rmSync(tmp, { force: true });
    fsyncDir(sparkqDir);
    return true;
  }
  throw new Error(`owner lock in ${sparkqDir}: could not create ${path.basename(file)}`);
}

/**
 * The exclusive create written in place, for file systems without hard links. Not fileio's writeNewFile: that removes
 * the file when writing fails, and this file may already be the highest generation, which is never deleted.
 */
function createInPlace(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (e) {
    if (errCode(e) === 'EEXIST') return false;
    throw e;
  }
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDir(path.dirname(file));
  return true;
}

/**
 * temp + rename over `file` (only ever our own generation's file, which must never be missing: a rename replaces it
 * without a moment in between). Not synced: what it records (our socket, our release) is about a live process, and
 * every process dies with the machine. The generation's name itself was made durable when it was taken
 * (createExclusive); after a crash of the machine the file holds the old record, the new one, or nothing readable,
 * and each of those is stale (a dead pid, or an unparsable file past PARTIAL_GRACE_MS). Two fsyncs less for every
 * process that becomes the owner and every one that lets go (a short CLI command does both).
 */
function replaceFile(sparkqDir: string, file: string, content: string): void {
  writeFileAtomic(file, content, { temp: tempName(sparkqDir), durable: false });
}

function tryUnlink(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // best effort: a later winner deletes it
  }
}

/** After winning `generation`: delete lower generations, oldest first, and temp files that dead contenders left. */
function cleanUp(sparkqDir: string, generation: number): void {
  for (const g of lockGenerations(sparkqDir).sort((a, b) => a - b)) {
    if (g < generation) tryUnlink(path.join(sparkqDir, lockName(g)));
  }
  let names: string[];
  try {
    names = fs.readdirSync(sparkqDir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    const pid = m ? Number(m[1]) : NaN;
    if (m && pid !== process.pid && !isProcessAlive(pid, null)) tryUnlink(path.join(sparkqDir, name));
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The lock

export class OwnerLock {
  readonly generation: number;
  private readonly file: string;
  private current: LockHolder;
  /** Once not current, never current again (also after release()). */
  private lost = false;
  /** `.sparkq/` as stat'ed just before the last readdir that found no newer generation, and when (see isCurrent). */
  private seen: { dev: number; ino: number; mtimeMs: number; ctimeMs: number; at: number } | null = null;
  /** performance.now() of the last look at `.sparkq/` (stat or listing) that found us current (see isCurrent). */
  private verifiedAt = -Infinity;

  /**
   * The previous owner's process was alive when we took over (it did not answer a ping): it may still write to files
   * it holds open, such as the journal, until it notices it lost the queue. See StoreOptions.rehomeJournal.
   */
  readonly predecessorMayRun: boolean;

  /** @internal — use tryAcquireOwnerLock. */
  constructor(
    private readonly sparkqDir: string,
    holder: LockHolder,
    predecessorMayRun = false,
  ) {
    this.predecessorMayRun = predecessorMayRun;
    this.generation = holder.generation;
    this.file = path.join(sparkqDir, lockName(holder.generation));
    this.current = holder;
  }

  /** A copy of our holder record, as last written to our lock file. */
  get holder(): LockHolder {
    return { ...this.current };
  }

  /**
   * False as soon as any generation above ours exists (someone proved us stale and took over), after release(), and
   * forever after either. Called before every write, so it is cheap: one stat of `.sparkq/`, and a readdir only when
   * the folder may have changed since the last readdir that found nothing above us (see folderUnchanged).
   *
   * `reuseMs`: a look that found us current less than this long ago (monotonic time) answers without looking again.
   * Only for the check before a write, which narrows the window for a demoted owner's append; the check before a
   * change is acknowledged always looks (see Store.write).
   */
  isCurrent(options: { reuseMs?: number } = {}): boolean {
    if (this.lost) return false;
    const looked = performance.now();
    if (options.reuseMs !== undefined && looked - this.verifiedAt < options.reuseMs) return true;
    if (this.folderUnchanged()) {
      this.verifiedAt = looked;
      return true;
    }
    let names: string[];
    let before: fs.Stats;
    const at = Date.now();
    try {
      // Stat BEFORE the readdir: a file linked after the stat changes the folder's times after what we remember, so
      // the next call looks again; one linked before it is in the listing.
      before = fs.statSync(this.sparkqDir);
      names = fs.readdirSync(this.sparkqDir);
    } catch {
      // The folder is gone: nobody can tell us apart from a new owner any more.
      this.lost = true;
      return false;
    }
    for (const name of names) {
      const m = LOCK_NAME.exec(name);
      if (m && Number(m[1]) > this.generation) {
        this.lost = true;
        this.seen = null;
        return false;
      }
    }
    this.seen = { dev: before.dev, ino: before.ino, mtimeMs: before.mtimeMs, ctimeMs: before.ctimeMs, at };
    this.verifiedAt = looked;
    return true;
  }

  /**
   * Whether `.sparkq/` is provably the folder our last clean readdir listed, with no entry added since. A newer
   * generation can only appear as a new name in the folder — link() (or an exclusive create, where there are no hard
   * links) — and adding a name sets the folder's mtime and ctime to the current time (POSIX link(2), open(2) with
   * O_CREAT; every local file system we run on does this). So same device + inode + mtime + ctime means no new name,
   * with one trap: time stamps are coarse (a clock tick on Linux, 2 s on FAT), so a name added in the same tick as
   * the change we saw would leave the times equal. Times that were within RACY_MS of the clock when we listed are
   * therefore never trusted (the git "racy index" rule; see racy()): until the folder has been quiet that long,
   * every call lists it again. `at` is read before the stat, so a name added after the stat gets a stamp of at least
   * at − one tick, later than any stamp we trust. A clock step backwards also forces a listing.
   * FULL_CHECK_MS bounds the trust anyway, for file systems that cache attributes (network mounts).
   */
  private folderUnchanged(): boolean {
    const seen = this.seen;
    if (seen === null) return false;
    const now = Date.now();
    if (now - seen.at > FULL_CHECK_MS || now < seen.at) return false;
    if (racy(seen.mtimeMs, seen.at) || racy(seen.ctimeMs, seen.at)) return false;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.sparkqDir, { throwIfNoEntry: false });
    } catch {
      return false;
    }
    return st !== undefined && st.ino === seen.ino && st.dev === seen.dev && st.mtimeMs === seen.mtimeMs && st.ctimeMs === seen.ctimeMs;
  }

  /**
   * Gives ownership up. While still current, our file is replaced by a "released" record of the same generation (not
   * deleted: the highest generation must stay, so that the next owner takes a higher one and fencing keeps working).
   * Never touches another generation's file. Idempotent.
   */
  release(): void {
    if (!this.isCurrent()) return;
    this.lost = true;
    const record = { ...this.current, released: new Date().toISOString() };
    try {
      replaceFile(this.sparkqDir, this.file, JSON.stringify(record));
    } catch {
      // best effort: the record still names us, and once we are gone it is stale by pid
    }
  }

  /** Records the socket we now listen on, by rewriting OUR generation's file (temp + rename) while still current. */
  setSocketPath(p: string): void {
    if (!this.isCurrent()) return;
    const next: LockHolder = { ...this.current, socketPath: p };
    replaceFile(this.sparkqDir, this.file, JSON.stringify(next));
    this.current = next;
  }
}

async function pingWithTimeout(ping: (h: LockHolder) => Promise<boolean>, holder: LockHolder, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
  });
  try {
    const answer = Promise.resolve()
      .then(() => ping({ ...holder }))
      .then(
        (ok) => ok === true,
        () => false,
      );
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the holder of `entry` is gone, so that the next generation may be taken. */
async function isStale(entry: LockEntry, opts: AcquireOptions): Promise<{ stale: true; alive?: boolean } | { stale: false; holder: LockHolder }> {
  switch (entry.kind) {
    case 'released':
    case 'vanished':
      return { stale: true };
    case 'partial': {
      if (Date.now() - entry.mtimeMs >= PARTIAL_GRACE_MS) return { stale: true };
      // Somebody is writing it right now: report a placeholder holder; the caller retries shortly.
      const holder: LockHolder = {
        pid: 0,
        startTime: null,
        generation: entry.generation,
        role: 'unknown',
        socketPath: null,
        acquiredAt: new Date(entry.mtimeMs).toISOString(),
      };
      return { stale: false, holder };
    }
    case 'held': {
      const h = entry.holder;
      if (!isProcessAlive(h.pid, h.startTime)) return { stale: true };
      if (opts.ping) {
        const acquired = Date.parse(h.acquiredAt);
        const age = Number.isFinite(acquired) ? Date.now() - acquired : Infinity;
        if (age >= (opts.pingGraceMs ?? DEFAULT_PING_GRACE_MS)) {
          const ok = await pingWithTimeout(opts.ping, h, opts.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS);
          if (!ok) return { stale: true, alive: true };
        }
      }
      return { stale: false, holder: h };
    }
  }
}

/**
 * Becomes the owner of the workspace whose `.sparkq/` folder is `sparkqDir` (created 0700 if missing), or reports who
 * is. At most one process holds a current lock at any time, however many try at once.
 */
export async function tryAcquireOwnerLock(sparkqDir: string, opts: AcquireOptions): Promise<{ lock: OwnerLock } | { holder: LockHolder }> {
  fs.mkdirSync(sparkqDir, { recursive: true, mode: 0o700 });
  const startTime = processStartTime(process.pid);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    // 1. The highest generation.
    const top = readHighest(sparkqDir);
    // 2. Alive → not ours.
    let predecessorMayRun = false;
    if (top) {
      const verdict = await isStale(top, opts);
      if (!verdict.stale) return { holder: verdict.holder };
      predecessorMayRun = verdict.alive === true;
    }
    // 3. Take the next generation; EEXIST means another contender won it: look again.
    const generation = (top?.generation ?? 0) + 1;
    const holder: LockHolder = {
      pid: process.pid,
      startTime,
      generation,
      role: opts.role,
      socketPath: opts.socketPath ?? null,
      acquiredAt: new Date().toISOString(),
    };
    const file = path.join(sparkqDir, lockName(generation));
    if (!createExclusive(sparkqDir, file, JSON.stringify(holder))) continue;
    // A winner of a higher generation may have deleted `generation` before we linked it (we read the folder before
    // it did). The highest file is never deleted, so such a generation is visible now: back off and look again.
    const highest = highestGeneration(sparkqDir);
    if (highest !== null && highest > generation) {
      tryUnlink(file);
      continue;
    }
    // 4. Lower generations are history now.
    cleanUp(sparkqDir, generation);
    return { lock: new OwnerLock(sparkqDir, holder, predecessorMayRun) };
  }
  throw new Error(`owner lock in ${sparkqDir}: gave up after ${MAX_ATTEMPTS} attempts`);
}
