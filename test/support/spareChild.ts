/*
 * A child for the kill -9 test of snapshots written in a spare file (test/unit/core/snapshotSpare.test.ts): it opens a store
 * whose every dropped snapshot becomes the spare (spareAboveBytes 0), then puts keys with values of a few kilobytes
 * and snapshots every few puts, printing each key once its put is acknowledged, until it is killed.
 */
import { Store } from '../../src/core/store/store';
import type { SqlDatabase } from '../../src/core/store/sqlite';

export const SPARE_VALUE_BYTES = 3_000;
/** Snapshot after this many puts (a kill then lands inside a snapshot often enough). */
export const SPARE_SNAPSHOT_EVERY = 4;

export const spareMigrations = [(db: SqlDatabase) => db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)')];
export const spareReplay = (db: SqlDatabase, record: unknown): void => {
  for (const p of record as { k: string; v: string }[]) db.run('INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [p.k, p.v]);
};
/** The value every key gets: long enough to make snapshots of hundreds of kilobytes, and checkable. */
export const spareValue = (k: string): string => `${k}:`.padEnd(SPARE_VALUE_BYTES, k.slice(-1));

async function main(): Promise<void> {
  const dir = process.argv[2];
  const prefix = process.argv[3];
  if (!dir || !prefix) throw new Error('usage: spareChild <store dir> <key prefix>');
  const s = await Store.open({ dir, migrations: spareMigrations, replay: spareReplay, spareAboveBytes: 0, snapshotAfterRecords: 1e9 });
  process.stdout.write(`ready\n`);
  for (let i = 0; ; i++) {
    const k = `${prefix}-${i}`;
    const rec = [{ k, v: spareValue(k) }];
    const { durable } = s.write(() => {
      spareReplay(s.db, rec);
      return { result: undefined, record: rec };
    });
    await durable;
    process.stdout.write(`${k}\n`);
    if (i % SPARE_SNAPSHOT_EVERY === SPARE_SNAPSHOT_EVERY - 1) await s.snapshot();
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(1);
  });
}
