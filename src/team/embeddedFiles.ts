import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparkqError, errorMessage } from '../core/errors';
import { ARCHIVE_DIR, Archive } from '../core/queue/archive';
import { type Effect, EffectBatch } from '../core/queue/effects';
import { MIGRATIONS } from '../core/queue/schema';
import { fsyncDir, writeNewFile } from '../core/store/fileio';
import { encodeHeader, readJournal, recordText } from '../core/store/journal';
import { DATA_FILE_PATTERN, type Manifest, journalFileName, readManifest, readSnapshot, snapshotFileName, writeManifest, writeSnapshot } from '../core/store/snapshot';
import { SqlDatabase } from '../core/store/sqlite';

/*
 * An embedded store's files, read and written without being its owner, for moving a queue between stores. Reading
 * loads what Store.open loads (the manifest's current generation: its snapshot, then its journal replayed in memory)
 * but writes nothing: no sweep, no new generation, no repair. Writing makes what Store.open makes of a new store — a
 * snapshot at sequence 0, its empty journal, the manifest naming both — with a database image of our own making.
 * The caller holds the workspace's owner lock either way, so no owner changes the files meanwhile.
 */

export const MANIFEST_FILE = 'manifest.json';

export interface EmbeddedFiles {
  /** The live database, in memory: changes to it go nowhere. */
  readonly db: SqlDatabase;
  /** The archive chunks the live database names, read from their files. */
  readonly archive: Archive;
  close(): void;
}

/** Brings an in-memory database to the schema this SparkQ writes (a store last written by an older SparkQ). */
function migrateInMemory(db: SqlDatabase): void {
  const version = Number(db.value('PRAGMA user_version') ?? 0);
  if (version > MIGRATIONS.length) {
    throw new SparkqError('conflict', `the embedded queue has schema version ${version}, newer than this SparkQ knows (${MIGRATIONS.length}); update SparkQ`);
  }
  if (version === MIGRATIONS.length) return;
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) MIGRATIONS[v]!(db);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
  });
}

/** A new, empty database with the embedded store's schema. */
export async function newEmbeddedDatabase(): Promise<SqlDatabase> {
  const db = await SqlDatabase.open();
  migrateInMemory(db);
  return db;
}

/**
 * The embedded store in `dir` as its owner would load it, without changing a byte of it; null when there is none (no
 * manifest and no data files). A damaged file is a `corrupt` error, as at any open.
 */
export async function readEmbeddedStore(dir: string): Promise<EmbeddedFiles | null> {
  const manifest: Manifest | null = readManifest(path.join(dir, MANIFEST_FILE));
  if (manifest === null) {
    const data = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => DATA_FILE_PATTERN.test(n)) : [];
    if (data.length > 0) throw new SparkqError('corrupt', `the store in ${dir} has data files (${data.join(', ')}) but no manifest`, { dir });
    return null;
  }
  const gen = manifest.current;
  const { image } = readSnapshot(path.join(dir, gen.snapshot.file), gen.snapshot);
  const journalPath = path.join(dir, gen.journal.file);
  // A torn last record (a crash during an append) was never acknowledged: left out, as an open leaves it out.
  const journal = readJournal(journalPath);
  if (journal.baseSeq !== gen.snapshot.seq) {
    throw new SparkqError('corrupt', `journal ${journalPath} continues sequence ${journal.baseSeq}, but its snapshot is at ${gen.snapshot.seq}`, { file: journalPath });
  }
  const db = await SqlDatabase.open(image);
  try {
    migrateInMemory(db);
    if (journal.records.length > 0) {
      try {
        db.transaction(() => {
          const batch = new EffectBatch(db);
          for (const r of journal.records) for (const e of JSON.parse(recordText(r)) as Effect[]) batch.apply(e);
          batch.finish();
        });
      } catch (e) {
        throw new SparkqError('corrupt', `journal ${journalPath}: its records passed their checksums but could not be applied (${errorMessage(e)})`, { file: journalPath });
      }
    }
    const archive = new Archive(db, path.join(dir, ARCHIVE_DIR), false);
    archive.verifyPresent();
    return {
      db,
      archive,
      close: () => {
        archive.close();
        db.close();
      },
    };
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Makes `dir` (an empty folder; archive chunks may already be in its archive/ folder) a store whose first generation
 * holds `db`: the snapshot and the empty journal, synced with the folder, then the manifest that names them.
 */
export function writeNewEmbeddedStore(dir: string, db: SqlDatabase, now: number): void {
  const snapshot = snapshotFileName(0);
  const journal = journalFileName(0);
  const { bytes, crc } = writeSnapshot(path.join(dir, snapshot), db.export(), 0, true, { fresh: true });
  if (!writeNewFile(path.join(dir, journal), [encodeHeader(0)], { durable: true })) throw new Error(`internal: ${journal} already exists in ${dir}`);
  fsyncDir(dir);
  const m: Manifest = {
    format: 1,
    current: { snapshot: { file: snapshot, seq: 0, bytes, crc }, journal: { file: journal, baseSeq: 0 } },
    previous: null,
    writtenAt: new Date(now).toISOString(),
  };
  writeManifest(path.join(dir, MANIFEST_FILE), m, true);
}
