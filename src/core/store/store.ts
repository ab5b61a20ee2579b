/*
 * The durable store of DESIGN.md ("Durability"): open and recover (last good snapshot, then the journal), write (apply,
 * journal, sync, then answer), snapshot, repair and hand-over. About 570 lines, on purpose: these steps share the
 * invariants that make an acknowledged change survive a crash, and are checked best read together. The file formats
 * are in journal.ts, snapshot.ts and fileio.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Clock, systemClock } from '../clock';
import { SparkqError, errorMessage } from '../errors';
import { fsyncDir, isTempFile, keepAside } from './fileio';
import { type Durability, type JournalReadResult, JournalWriter, type SyncOn, type WriterOptions, readJournal, recordText } from './journal';
import {
  DATA_FILE_PATTERN,
  type Generation,
  type Manifest,
  journalFileName,
  readManifest,
  readSnapshot,
  snapshotFileName,
  writeManifest,
  writeSnapshot,
} from './snapshot';
import { SqlDatabase } from './sqlite';

/** Brings the schema from version `index` to `index + 1`. Migrations are pure functions of the database. */
export type Migration = (db: SqlDatabase) => void;

export interface StoreOptions {
  dir: string;
  migrations: readonly Migration[];
  /** Re-applies one journal record. Must do exactly what the live mutation did. */
  replay: (db: SqlDatabase, record: unknown) => void;
  /**
   * Optional: replays many records at once. `apply` takes each record in order, `finish` runs after the last, in the
   * same transaction; the result must be what `replay` on each record gives. Start-up uses it when present.
   */
  replayBatch?: (db: SqlDatabase) => { apply(record: unknown): void; finish(): void };
  /**
   * Optional: how many bytes replaying these records (their payloads) will add to the database, roughly. That much
   * room is reserved up front, so that the in-memory database file grows once rather than in many copy-and-grow
   * steps while the replay commits. A guess only: too little just means some growth steps, too much some idle memory.
   */
  replayReserve?: (payloads: readonly Buffer[]) => number;
  durability?: Durability;
  /** Where each batch's fdatasync runs (default 'thread-pool'); see SyncOn. */
  syncOn?: SyncOn;
  /**
   * The previous owner may still be running (it was taken over for not answering): continue the journal in a new
   * file of the same name (see JournalWriter.rehome), so that nothing that process still writes reaches ours.
   */
  rehomeJournal?: boolean;
  clock?: Clock;
  /** Take a snapshot (and start a new journal) once the journal holds this many records or bytes. */
  snapshotAfterRecords?: number;
  snapshotAfterBytes?: number;
  /**
   * close() snapshots only a journal of at least this many records or bytes (default 0 and 0: any record). Below
   * that, the next open replays the journal instead: a few milliseconds at the most, where the snapshot would cost
   * an export of the whole database and five fsyncs in the process that is leaving (each short CLI command that owned
   * the queue for a moment). Nothing acknowledged depends on it: every record was synced before its answer.
   */
  closeSnapshotMinRecords?: number;
  closeSnapshotMinBytes?: number;
  /**
   * A dropped generation's snapshot file of at least this many bytes (default 4 MiB) is not removed but kept as a
   * spare, unnamed file that the next snapshot is written in (see writeOverSpare): the file system neither frees its
   * blocks nor allocates new ones. Removed at close; swept at open like any temp file. Infinity: always remove.
   */
  spareAboveBytes?: number;
  /**
   * Open a damaged store with what can be recovered: the journal up to its first damaged record, or the previous
   * generation when the current snapshot is damaged. Damaged files are always copied aside first.
   */
  repair?: boolean;
  /**
   * Throws when this process may no longer write (another process took ownership of the queue): the fence that keeps
   * a demoted owner from overwriting its successor. Called with 'write' before every change and before each batch of
   * records is written to the journal, where an answer from the last millisecond may be reused; and with 'acknowledge'
   * once a batch is synced (before anyone is told) and before and after a snapshot's files are written, where it must
   * look.
   */
  fence?: (when: FenceCheck) => void;
}

export type FenceCheck = 'write' | 'acknowledge';

export interface RecoveryReport {
  /** The sequence number of the snapshot that was loaded. */
  snapshotSeq: number;
  /** Journal records re-applied on top of it. */
  replayed: number;
  /** A record cut short by a crash (never acknowledged), discarded; a copy of the journal was kept here. */
  tornTail: { bytes: number; keptAt: string | null } | null;
  /** What repair mode did, in words; empty when nothing needed repair. */
  repairs: string[];
  /** Leftover temporary and unreferenced files that were removed. */
  swept: string[];
  /** True when the directory held no store and a new, empty one was created. */
  created: boolean;
}

type StoreOpts = Required<Omit<StoreOptions, 'repair' | 'fence' | 'replayBatch' | 'replayReserve' | 'rehomeJournal'>> &
  Pick<StoreOptions, 'fence' | 'replayBatch' | 'replayReserve' | 'rehomeJournal'>;

const MANIFEST = 'manifest.json';
const ASIDE = 'aside';
/** The spare snapshot file (see StoreOptions.spareAboveBytes): per process, a temp file to the sweep at open. */
const spareFileName = () => `snapshot-spare.${process.pid}.tmp`;

/**
 * A durable SQLite database in memory. Every mutation runs as one synchronous transaction and appends a record of
 * its resolved effect to the journal; the caller is answered once the record is synced (group commit). Snapshots are
 * written atomically with a manifest; opening loads the last good snapshot and replays the journal after it.
 */
export class Store {
  private journal: JournalWriter;
  private closed = false;
  private snapshotting: Promise<void> | null = null;
  /** The fence was last passed after every record up to this seq was synced (see write). */
  private fencedThrough = 0;
  /** Removals of dropped generations' files still under way (see snapshotSync); close waits for them. */
  private removing: Promise<void> = Promise.resolve();
  /**
   * Set by close: its snapshot removes the dropped files synchronously, so that nothing of this store still changes
   * the folder once close has returned (the next owner may be opening it).
   */
  private closing = false;
  /** The spare file the next snapshot is written in, when there is one (see StoreOptions.spareAboveBytes). */
  private spare: string | null = null;

  private constructor(
    readonly db: SqlDatabase,
    private readonly opts: StoreOpts,
    private manifest: Manifest,
    journal: JournalWriter,
    readonly recovery: RecoveryReport,
  ) {
    this.journal = journal;
  }

  get dir(): string {
    return this.opts.dir;
  }
  /** The sequence number of the last mutation applied. */
  get seq(): number {
    return this.journal.lastSeq;
  }
  get journalRecords(): number {
    return this.journal.records;
  }
  get journalBytes(): number {
    return this.journal.bytes;
  }
  get needsSnapshot(): boolean {
    return this.journal.records >= this.opts.snapshotAfterRecords || this.journal.bytes >= this.opts.snapshotAfterBytes;
  }

  static async open(options: StoreOptions): Promise<Store> {
    const opts: StoreOpts = {
      durability: 'full',
      syncOn: 'thread-pool',
      clock: systemClock,
      snapshotAfterRecords: 50_000,
      snapshotAfterBytes: 64 * 1024 * 1024,
      closeSnapshotMinRecords: 0,
      closeSnapshotMinBytes: 0,
      spareAboveBytes: 4 * 1024 * 1024,
      ...options,
    };
    const { dir } = opts;
    const durable = opts.durability === 'full';
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const manifestFile = path.join(dir, MANIFEST);
    const report: RecoveryReport = { snapshotSeq: 0, replayed: 0, tornTail: null, repairs: [], swept: [], created: false };
    const aside = path.join(dir, ASIDE);
    const now = opts.clock.now();

    let manifest: Manifest | null;
    try {
      manifest = readManifest(manifestFile);
    } catch (e) {
      keepAside(manifestFile, aside, 'damaged');
      throw withAdvice(e, aside);
    }
    const dataFiles = fs.readdirSync(dir).filter((n) => DATA_FILE_PATTERN.test(n));

    if (manifest === null) {
      if (dataFiles.length > 0) {
        throw new SparkqError(
          'corrupt',
          `the store in ${dir} has data files (${dataFiles.join(', ')}) but no manifest; it was not opened, so nothing was overwritten. ` +
            `Restore ${MANIFEST} from a backup, or move the folder away to start an empty queue.`,
          { dir },
        );
      }
      // A new store: an empty database at sequence 0, its empty journal, then the manifest that names both.
      const db = await SqlDatabase.open();
      migrate(db, opts.migrations);
      const { gen, writer } = writeGeneration(dir, db, 0, opts);
      const m: Manifest = { format: 1, current: gen, previous: null, writtenAt: new Date(now).toISOString() };
      writeManifest(manifestFile, m, durable);
      report.created = true;
      return new Store(db, opts, m, writer, report);
    }

    report.swept = sweep(dir, manifest);

    let loaded: { db: SqlDatabase; journal: JournalReadResult; migrated: boolean };
    try {
      loaded = await loadGeneration(dir, manifest.current, opts, report);
    } catch (e) {
      if (!(e instanceof SparkqError) || e.code !== 'corrupt') throw e;
      const damaged = (e.details?.['file'] as string | undefined) ?? null;
      if (damaged) keepAside(damaged, aside, 'damaged');
      if (!options.repair) throw withAdvice(e, aside);
      loaded = await repairOpen(dir, manifest, opts, report, e);
    }

    const { db, journal, migrated } = loaded;
    const journalPath = path.join(dir, manifest.current.journal.file);
    let writer: JournalWriter;
    // A migrated schema goes into a snapshot at the next record: with no records to replay, a new generation would be
    // at the same sequence as the current one (same file names). Until then every open migrates the old image again
    // before replaying, which gives the same database.
    let mustSnapshot = (migrated && journal.records.length > 0) || report.repairs.length > 0;
    if (journal.tornTail) {
      const keptAt = keepAside(journalPath, aside, 'torn');
      report.tornTail = { bytes: journal.tornTail.bytes, keptAt };
      mustSnapshot = true;
    }
    const seq = journal.records.length > 0 ? journal.records[journal.records.length - 1]!.seq : journal.baseSeq;
    if (mustSnapshot && journal.tornTail && journal.records.length === 0 && report.repairs.length === 0 && seq === manifest.current.snapshot.seq) {
      // A crash tore the first record after a snapshot: nothing whole to replay, so memory is the snapshot, and a new
      // generation would have this one's names. The torn bytes are kept aside (above); the journal goes back to its
      // header, as it was before the crash (in a new file of that name, not truncated in place).
      writer = JournalWriter.rehome(journalPath, journal, opts.durability, writerOptions(opts));
    } else if (mustSnapshot) {
      // Retire the journal as it is (never truncated in place) by starting a new generation from memory.
      const next = writeGeneration(dir, db, seq, opts, manifest.current);
      const m: Manifest = { format: 1, current: next.gen, previous: manifest.current, writtenAt: new Date(now).toISOString() };
      writeManifest(manifestFile, m, durable);
      manifest = m;
      writer = next.writer;
    } else {
      writer = opts.rehomeJournal
        ? JournalWriter.rehome(journalPath, journal, opts.durability, writerOptions(opts))
        : JournalWriter.continue(journalPath, journal, opts.durability, writerOptions(opts));
    }
    return new Store(db, opts, manifest, writer, report);
  }

  /**
   * Runs `fn` as one transaction. `fn` applies its changes and returns the record that replays them (or null when it
   * changed nothing). A throw rolls everything back and records nothing. The promise settles when the record is synced.
   */
  write<T>(fn: () => { result: T; record: unknown }): { result: T; durable: Promise<void> } {
    this.assertOpen();
    let record: unknown;
    const result = this.db.transaction(() => {
      const out = fn();
      record = out.record;
      return out.result;
    });
    if (record === null || record === undefined) return { result, durable: this.journal.hasPending ? this.journal.flush() : Promise.resolve() };
    const { seq, durable } = this.journal.append(JSON.stringify(record));
    const fence = this.opts.fence;
    if (!fence) return { result, durable };
    // Checked again once the record is on disk, before anyone is told: a successor that took over before this
    // point may have loaded the journal without this record, so the change must not be acknowledged. One that takes
    // over after it reads the record, synced, from the journal. One check covers every record synced before it: the
    // writes of a group commit share it.
    return {
      result,
      durable: durable.then(() => {
        if (seq <= this.fencedThrough) return;
        const through = this.journal.syncedSeq;
        try {
          fence('acknowledge');
          this.fencedThrough = Math.max(this.fencedThrough, through);
        } catch {
          throw new SparkqError(
            'unavailable',
            'this process lost ownership of the queue while the change was being written, so it may or may not have been kept; check before repeating it',
            { mayHaveRun: true },
          );
        }
      }),
    };
  }

  /** Resolves once every mutation so far is synced. */
  flush(): Promise<void> {
    return this.journal.flush();
  }

  /** Writes a snapshot of memory and starts a new journal; the generation before it is kept for repair. */
  async snapshot(): Promise<void> {
    this.assertOpen();
    // `.finally` runs after this assignment even when the work completes at once, so the slot is always freed.
    this.snapshotting ??= this.flushThenSnapshot().finally(() => (this.snapshotting = null));
    return this.snapshotting;
  }

  private async flushThenSnapshot(): Promise<void> {
    while (this.journal.hasPending) await this.journal.flush();
    this.snapshotSync();
    // Resolves once the dropped generation's files are gone (the event loop is free meanwhile), so that a caller of
    // snapshot() finds exactly two generations on disk.
    await this.removing;
  }

  private snapshotSync(): void {
    this.opts.fence?.('acknowledge');
    const seq = this.journal.lastSeq;
    if (seq === this.manifest.current.snapshot.seq) return;
    // The spare is used up by this attempt, whatever happens to it (close removes a leftover by its name).
    const spare = this.spare ?? undefined;
    this.spare = null;
    const { gen, writer } = writeGeneration(this.opts.dir, this.db, seq, this.opts, this.manifest.current, spare);
    // Writing the files takes a while (tens of milliseconds for a large queue): look again right before the manifest
    // names them, so that a successor that took over meanwhile never finds its generation replaced by ours. Files
    // that no manifest names are swept at the next open.
    try {
      this.opts.fence?.('acknowledge');
    } catch (e) {
      writer.close();
      throw e;
    }
    const m: Manifest = { format: 1, current: gen, previous: this.manifest.current, writtenAt: new Date(this.opts.clock.now()).toISOString() };
    writeManifest(path.join(this.opts.dir, MANIFEST), m, this.opts.durability === 'full');
    this.journal.close();
    this.journal = writer;
    const dropped = this.manifest.previous;
    this.manifest = m;
    // The dropped generation's files are removed on the thread pool, not on the event loop (unlinking a snapshot of
    // tens of megabytes takes milliseconds): no manifest names them any more, so a crash before they are gone leaves
    // files that the next open sweeps. Their names are below every later generation's: nothing new is made under them.
    if (dropped) {
      const remove = [dropped.journal.file];
      if (!this.closing && dropped.snapshot.bytes >= this.opts.spareAboveBytes) {
        // Kept for the next snapshot to be written in: a rename, not an unlink of tens of megabytes.
        const spare = path.join(this.opts.dir, spareFileName());
        try {
          fs.renameSync(path.join(this.opts.dir, dropped.snapshot.file), spare);
          this.spare = spare;
        } catch {
          remove.push(dropped.snapshot.file);
        }
      } else remove.push(dropped.snapshot.file);
      for (const f of remove) {
        if (this.closing) {
          fs.rmSync(path.join(this.opts.dir, f), { force: true });
          continue;
        }
        const removed = new Promise<void>((done) => fs.rm(path.join(this.opts.dir, f), { force: true }, () => done()));
        this.removing = this.removing.then(() => removed);
      }
    }
  }

  async close(options: { snapshot?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (this.snapshotting) await this.snapshotting;
    if (options.snapshot ?? true) {
      const short = this.journal.records < this.opts.closeSnapshotMinRecords && this.journal.bytes < this.opts.closeSnapshotMinBytes;
      if (this.journal.failed === null && !short) await this.snapshot();
    }
    this.closed = true;
    this.journal.close();
    this.db.close();
    this.spare = null;
    fs.rmSync(path.join(this.opts.dir, spareFileName()), { force: true });
    await this.removing;
  }

  /** Stops without syncing or snapshotting: what a crash looks like, for tests. */
  abandon(): void {
    this.closed = true;
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new SparkqError('closed', 'the queue store is closed');
    this.opts.fence?.('write');
    if (this.journal.failed !== null) {
      throw new SparkqError('store-failed', `the queue store stopped accepting changes after a write failed (${errorMessage(this.journal.failed)}); reopen it`);
    }
  }
}

function migrate(db: SqlDatabase, migrations: readonly Migration[]): boolean {
  const version = Number(db.value('PRAGMA user_version') ?? 0);
  if (version > migrations.length) {
    throw new SparkqError('conflict', `the queue store has schema version ${version}, newer than this SparkQ knows (${migrations.length}); update SparkQ`);
  }
  if (version === migrations.length) return false;
  db.transaction(() => {
    for (let v = version; v < migrations.length; v++) migrations[v]!(db);
    db.exec(`PRAGMA user_version = ${migrations.length}`);
  });
  return true;
}

/** How the store's journal writers sync, and the fence they check before writing a batch (see WriterOptions). */
function writerOptions(opts: StoreOpts): WriterOptions {
  const fence = opts.fence;
  return { syncOn: opts.syncOn, ...(fence ? { beforeWrite: () => fence('write') } : {}) };
}

/**
 * Writes a snapshot at `seq` and creates its empty journal, both synced, and returns them; the caller then writes the
 * manifest that names them. In that order a crash at any point leaves either the old manifest (the new files are
 * unreferenced and swept at the next open) or a new manifest whose files all exist.
 */
function writeGeneration(
  dir: string,
  db: SqlDatabase,
  seq: number,
  opts: StoreOpts,
  current?: Generation,
  spare?: string,
): { gen: Generation; writer: JournalWriter } {
  const snapFile = snapshotFileName(seq);
  const journalFile = journalFileName(seq);
  if (current && current.journal.file === journalFile) {
    throw new Error(`internal: a new generation at sequence ${seq} would reuse the current journal`);
  }
  // Both files are new and unnamed until the manifest names them, so they are created in place (no temp file and
  // rename) and one directory fsync makes both entries durable before the manifest is written (the snapshot may be
  // written in a spare file renamed to its name: the same fsync covers the rename). The image is a view of the buffer
  // the database keeps for its exports (see export): written out here and not kept.
  const { durability } = opts;
  const { bytes, crc } = writeSnapshot(path.join(dir, snapFile), db.export({ reuse: true }), seq, durability === 'full', {
    fresh: true,
    ...(spare !== undefined ? { spare } : {}),
  });
  // A journal of this name can only be a leftover of a crash before its manifest was written: it holds no records.
  fs.rmSync(path.join(dir, journalFile), { force: true });
  const writer = JournalWriter.create(path.join(dir, journalFile), seq, durability, { syncDir: false, ...writerOptions(opts) });
  fsyncDir(dir);
  return { gen: { snapshot: { file: snapFile, seq, bytes, crc }, journal: { file: journalFile, baseSeq: seq } }, writer };
}

async function loadGeneration(
  dir: string,
  gen: Generation,
  opts: StoreOpts,
  report: RecoveryReport,
): Promise<{ db: SqlDatabase; journal: JournalReadResult; migrated: boolean }> {
  const { image } = readSnapshot(path.join(dir, gen.snapshot.file), gen.snapshot);
  const journalPath = path.join(dir, gen.journal.file);
  const journal = readJournal(journalPath);
  if (journal.baseSeq !== gen.snapshot.seq) {
    throw new SparkqError('corrupt', `journal ${journalPath} continues sequence ${journal.baseSeq}, but its snapshot is at ${gen.snapshot.seq}`, {
      file: journalPath,
    });
  }
  let db = await SqlDatabase.open(image);
  if (!db.inMemory) {
    // A database in a sql.js file (a build without the functions for an in-memory one): give the file room up front.
    const reserve = journal.records.length > 0 && opts.replayReserve ? Math.min(MAX_RESERVE, Math.max(0, Math.round(opts.replayReserve(journal.records.map((r) => r.payload))))) : 0;
    if (reserve > 0) {
      db.close();
      db = await SqlDatabase.open(withRoom(image, reserve));
    }
  }
  const migrated = migrate(db, opts.migrations);
  replayAll(db, journal, journalPath, opts);
  report.snapshotSeq = gen.snapshot.seq;
  report.replayed = journal.records.length;
  return { db, journal, migrated };
}

const MAX_RESERVE = 512 * 1024 * 1024;

/**
 * The image followed by `bytes` zero bytes. SQLite reads the database's size from its header (written by
 * db.export(), which the snapshot is), so the bytes after it are free room in the file, not pages.
 */
function withRoom(image: Uint8Array, bytes: number): Uint8Array {
  const out = new Uint8Array(image.length + bytes);
  out.set(image, 0);
  return out;
}

function replayAll(db: SqlDatabase, journal: JournalReadResult, file: string, opts: Pick<StoreOptions, 'replay' | 'replayBatch'>): void {
  if (journal.records.length === 0) return;
  // An in-memory database keeps every page whatever the cache size: nothing to spill.
  if (db.inMemory) return replayInOne(db, journal, file, opts);
  // One transaction for the whole journal: give it a cache that holds what it dirties (a few times the records'
  // bytes covers rows and indexes), so that SQLite does not spill pages mid-way.
  const journalBytes = journal.validLength;
  db.withCache(Math.min(1024 * 1024, (4 * journalBytes) / 1024), () => replayInOne(db, journal, file, opts));
}

function replayInOne(db: SqlDatabase, journal: JournalReadResult, file: string, opts: Pick<StoreOptions, 'replay' | 'replayBatch'>): void {
  db.transaction(() => {
    const batch = opts.replayBatch?.(db);
    const apply = batch ? (record: unknown) => batch.apply(record) : (record: unknown) => opts.replay(db, record);
    for (const r of journal.records) {
      try {
        apply(JSON.parse(recordText(r)));
      } catch (e) {
        throw new SparkqError('corrupt', `journal ${file}: record ${r.seq} passed its checksum but could not be applied (${errorMessage(e)})`, {
          file,
        });
      }
    }
    try {
      batch?.finish();
    } catch (e) {
      throw new SparkqError('corrupt', `journal ${file}: its records passed their checksums but could not be applied together (${errorMessage(e)})`, {
        file,
      });
    }
  });
}

/** Repair mode: recover as much as the files allow, and say what was done. */
async function repairOpen(
  dir: string,
  manifest: Manifest,
  opts: StoreOpts,
  report: RecoveryReport,
  cause: SparkqError,
): Promise<{ db: SqlDatabase; journal: JournalReadResult; migrated: boolean }> {
  const cur = manifest.current;
  const damaged = cause.details?.['file'];
  if (damaged === path.join(dir, cur.journal.file)) {
    // Keep the snapshot and every journal record before the first damaged one.
    const { image } = readSnapshot(path.join(dir, cur.snapshot.file), cur.snapshot);
    const db = await SqlDatabase.open(image);
    const migrated = migrate(db, opts.migrations);
    const good = readJournal(path.join(dir, cur.journal.file), { stopAtDamage: true });
    replayAll(db, good, cur.journal.file, opts);
    report.snapshotSeq = cur.snapshot.seq;
    report.replayed = good.records.length;
    report.repairs.push(`kept ${good.records.length} journal records before the damage (${cause.message}); later records were lost`);
    return { db, journal: { ...good, tornTail: null }, migrated };
  }
  const prev = manifest.previous;
  if (prev && damaged === path.join(dir, cur.snapshot.file)) {
    // Rebuild the current snapshot from the previous one and the previous journal, then apply the current journal.
    const loaded = await loadGeneration(dir, prev, opts, report);
    const lastPrev = loaded.journal.records.length > 0 ? loaded.journal.records[loaded.journal.records.length - 1]!.seq : prev.snapshot.seq;
    if (lastPrev !== cur.snapshot.seq) {
      loaded.db.close();
      throw new SparkqError('corrupt', `${cause.message}; the previous generation reaches only sequence ${lastPrev}, not ${cur.snapshot.seq}, so it cannot replace it`);
    }
    const journal = readJournal(path.join(dir, cur.journal.file));
    replayAll(loaded.db, journal, cur.journal.file, opts);
    report.replayed += journal.records.length;
    report.repairs.push(`rebuilt the damaged snapshot ${cur.snapshot.file} from ${prev.snapshot.file} and its journal; nothing was lost`);
    return { db: loaded.db, journal, migrated: loaded.migrated };
  }
  throw new SparkqError('corrupt', `${cause.message}; there is no intact earlier copy to repair it from`, cause.details);
}

/** Removes temp files and data files that no manifest generation names (leftovers of a crash mid-switch). */
function sweep(dir: string, manifest: Manifest): string[] {
  const keep = new Set<string>();
  for (const g of [manifest.current, manifest.previous]) {
    if (g) {
      keep.add(g.snapshot.file);
      keep.add(g.journal.file);
    }
  }
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (isTempFile(name) || (DATA_FILE_PATTERN.test(name) && !keep.has(name))) {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    }
  }
  if (removed.length > 0) fsyncDir(dir);
  return removed;
}

function withAdvice(e: unknown, aside: string): unknown {
  if (!(e instanceof SparkqError) || e.code !== 'corrupt') return e;
  return new SparkqError(
    'corrupt',
    `${e.message}. The queue was not opened and nothing was overwritten; copies of the damaged files are in ${aside}. ` +
      'Run `sparkq repair` to open it with what can be recovered.',
    e.details,
  );
}
