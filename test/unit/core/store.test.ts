import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isSparkqError } from '../../../src/core/errors';
import type { SqlDatabase } from '../../../src/core/store/sqlite';
import { encodeRecord } from '../../../src/core/store/journal';
import { Store, type StoreOptions } from '../../../src/core/store/store';
import { fingerprint, tempDir } from '../../support/tmp';

// A tiny schema keeps these tests about durability, not about the queue.
const migrations = [(db: SqlDatabase) => db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)')];
type Put = { k: string; v: string };
const replay = (db: SqlDatabase, record: unknown) => {
  for (const p of record as Put[]) db.run('INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [p.k, p.v]);
};

function open(dir: string, extra: Partial<StoreOptions> = {}) {
  return Store.open({ dir, migrations, replay, ...extra });
}
async function put(s: Store, k: string, v: string): Promise<void> {
  const { durable } = s.write(() => {
    const rec = [{ k, v }];
    replay(s.db, rec);
    return { result: undefined, record: rec };
  });
  await durable;
}
function all(s: Store): Record<string, string> {
  return Object.fromEntries(s.db.all<Put>('SELECT k, v FROM kv ORDER BY k').map((r) => [r.k, r.v]));
}

describe('store', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  it('creates a new store with a manifest, an empty snapshot and a journal', async () => {
    const s = await open(t.dir);
    assert.equal(s.recovery.created, true);
    assert.deepEqual(fs.readdirSync(t.dir).sort(), ['journal-000000000000.log', 'manifest.json', 'snapshot-000000000000.sqlite']);
    await s.close();
  });

  it('opens a cleanly closed store after a new migration (empty journal), and one with records to replay', async () => {
    const more = [...migrations, (db: SqlDatabase) => db.exec("CREATE TABLE extra (x TEXT); INSERT INTO extra VALUES ('migrated')")];
    const s = await open(t.dir);
    await put(s, 'a', '1');
    await s.close(); // snapshot: the journal is empty
    const m = await open(t.dir, { migrations: more });
    assert.equal(m.db.value('SELECT x FROM extra'), 'migrated');
    assert.deepEqual(all(m), { a: '1' });
    await put(m, 'b', '2');
    m.abandon(); // a crash: the record is in the journal, the image on disk is still the old schema's
    const again = await open(t.dir, { migrations: more });
    assert.deepEqual(all(again), { a: '1', b: '2' });
    assert.equal(again.db.value('SELECT count(*) FROM extra'), 1, 'migrated once');
    await again.close();
    const last = await open(t.dir, { migrations: more });
    assert.deepEqual(all(last), { a: '1', b: '2' });
    await last.close();
  });

  it('keeps the database in SQLite memory and loads a snapshot image back exactly (unicode and large values too)', async () => {
    const s = await open(t.dir);
    assert.equal(s.db.inMemory, true, 'an in-memory database, not a file in sql.js’s file system');
    const big = 'é😀'.repeat(200_000);
    await put(s, 'big', big);
    await put(s, 'u', 'ünïcødé 😀 \u0000 end');
    for (let i = 0; i < 2_000; i++) await put(s, `k${i}`, `v${i}`.repeat(20));
    const before = all(s);
    await s.close();
    const r = await open(t.dir);
    assert.equal(r.recovery.replayed, 0, 'all of it from the snapshot');
    assert.equal(r.db.inMemory, true);
    assert.deepEqual(all(r), before);
    assert.equal(r.db.value('PRAGMA integrity_check'), 'ok');
    await r.close();
  });

  it('replays acknowledged writes after a crash (no snapshot, no close)', async () => {
    const s = await open(t.dir);
    for (let i = 0; i < 20; i++) await put(s, `k${i}`, `v${i}`);
    s.abandon();
    const r = await open(t.dir);
    assert.equal(r.recovery.replayed, 20);
    assert.equal(Object.keys(all(r)).length, 20);
    assert.equal(all(r)['k7'], 'v7');
    await r.close();
  });

  it('rolls back a write whose function throws and journals nothing', async () => {
    const s = await open(t.dir);
    await put(s, 'a', '1');
    assert.throws(() =>
      s.write(() => {
        replay(s.db, [{ k: 'b', v: '2' }]);
        throw new Error('validation failed half-way');
      }),
    );
    assert.deepEqual(all(s), { a: '1' });
    s.abandon();
    const r = await open(t.dir);
    assert.deepEqual(all(r), { a: '1' });
    await r.close();
  });

  it('snapshots on close, and the next open replays nothing', async () => {
    const s = await open(t.dir);
    await put(s, 'a', '1');
    await s.close();
    const r = await open(t.dir);
    assert.equal(r.recovery.replayed, 0);
    assert.equal(r.recovery.snapshotSeq, 1);
    assert.deepEqual(all(r), { a: '1' });
    await r.close();
  });

  it('leaves a journal shorter than closeSnapshotMinRecords and closeSnapshotMinBytes to the next open, and snapshots one that reaches either', async () => {
    const s = await open(t.dir, { closeSnapshotMinRecords: 3, closeSnapshotMinBytes: 1024 });
    await put(s, 'a', '1');
    await put(s, 'b', '2');
    await s.close();
    const r = await open(t.dir, { closeSnapshotMinRecords: 3, closeSnapshotMinBytes: 1024 });
    assert.equal(r.recovery.replayed, 2);
    assert.equal(r.recovery.snapshotSeq, 0);
    await put(r, 'c', '3');
    await r.close(); // three records: the journal is snapshotted
    const big = await open(t.dir, { closeSnapshotMinRecords: 3, closeSnapshotMinBytes: 1024 });
    assert.equal(big.recovery.replayed, 0);
    assert.equal(big.recovery.snapshotSeq, 3);
    await put(big, 'd', 'x'.repeat(2000));
    await big.close(); // one record, but over the byte limit
    const last = await open(t.dir);
    assert.equal(last.recovery.replayed, 0);
    assert.deepEqual(all(last), { a: '1', b: '2', c: '3', d: 'x'.repeat(2000) });
    await last.close();
  });

  it('keeps exactly two generations and continues sequence numbers across snapshots', async () => {
    const s = await open(t.dir);
    for (let g = 0; g < 4; g++) {
      await put(s, `g${g}`, 'x');
      await s.snapshot();
    }
    assert.equal(s.seq, 4);
    const names = fs.readdirSync(t.dir).sort();
    assert.deepEqual(names, ['journal-000000000003.log', 'journal-000000000004.log', 'manifest.json', 'snapshot-000000000003.sqlite', 'snapshot-000000000004.sqlite']);
    await put(s, 'after', 'y');
    s.abandon();
    const r = await open(t.dir);
    assert.equal(r.recovery.replayed, 1);
    assert.equal(Object.keys(all(r)).length, 5);
    await r.close();
  });

  it('opens after a crash that tore the first record of a fresh journal (no whole record to replay)', async () => {
    const s = await open(t.dir);
    for (let i = 0; i < 3; i++) await put(s, `k${i}`, 'v');
    await s.snapshot(); // a new generation at sequence 3: its journal holds only its header
    s.abandon();
    const journal = path.join(t.dir, 'journal-000000000003.log');
    fs.appendFileSync(journal, encodeRecord(4, Buffer.from(JSON.stringify([{ k: 'k3', v: 'lost' }]))).subarray(0, 20));
    const r = await open(t.dir);
    assert.deepEqual(all(r), { k0: 'v', k1: 'v', k2: 'v' });
    assert.equal(r.recovery.tornTail?.bytes, 20);
    assert.ok(r.recovery.tornTail?.keptAt && fs.existsSync(r.recovery.tornTail.keptAt), 'the torn journal is kept aside');
    await put(r, 'k3', 'v');
    r.abandon();
    const again = await open(t.dir);
    assert.deepEqual(all(again), { k0: 'v', k1: 'v', k2: 'v', k3: 'v' });
    assert.equal(again.recovery.tornTail, null);
    await again.close();
  });

  it('recovers from a torn tail: keeps every whole record, copies the journal aside, starts a new generation', async () => {
    const s = await open(t.dir);
    for (let i = 0; i < 5; i++) await put(s, `k${i}`, 'v');
    s.abandon();
    const journal = path.join(t.dir, 'journal-000000000000.log');
    fs.appendFileSync(journal, encodeRecord(6, Buffer.from(JSON.stringify([{ k: 'k5', v: 'lost' }]))).subarray(0, 20)); // a record cut mid-write
    const r = await open(t.dir);
    assert.equal(Object.keys(all(r)).length, 5);
    assert.equal(r.recovery.tornTail?.bytes, 20);
    assert.ok(r.recovery.tornTail?.keptAt && fs.existsSync(r.recovery.tornTail.keptAt));
    await put(r, 'k5', 'v');
    r.abandon();
    const again = await open(t.dir);
    assert.equal(Object.keys(all(again)).length, 6);
    await again.close();
  });

  it('refuses writes and snapshots once the fence says another process owns the queue', async () => {
    let demoted = false;
    const s = await open(t.dir, {
      fence: () => {
        if (demoted) throw new Error('another process owns the queue now');
      },
    });
    await put(s, 'a', '1');
    demoted = true;
    await assert.rejects(put(s, 'b', '2'), /another process owns/);
    await assert.rejects(s.snapshot(), /another process owns/);
    assert.deepEqual(all(s), { a: '1' });
    s.abandon();
  });

  it('does not acknowledge a write when ownership was lost while it was being synced', async () => {
    let lost = false;
    const s = await open(t.dir, {
      fence: (when) => {
        if (lost && when === 'acknowledge') throw new Error('another process owns the queue now');
      },
    });
    await put(s, 'a', '1');
    // The checks before the write and before its batch pass; the successor takes over while the record is synced.
    lost = true;
    await assert.rejects(put(s, 'b', '2'), (e: unknown) => isSparkqError(e, 'unavailable') && e.details?.['mayHaveRun'] === true);
    s.abandon();
  });

  for (const rehomeJournal of [true, false]) {
    it(`a successor ${rehomeJournal ? 'that rehomes the journal keeps its records' : 'that continues the journal file is left with a damaged journal'} when the old owner writes late`, async () => {
      // The old owner: its journal file is open and it still has a batch to write (it has not noticed yet).
      const old = await open(t.dir);
      for (let i = 0; i < 3; i++) await put(old, `k${i}`, 'v');
      // The successor opens the same store (as after taking over from an owner that did not answer) and writes.
      const next = await open(t.dir, rehomeJournal ? { rehomeJournal: true } : {});
      await put(next, 'n1', 'new');
      await put(next, 'n2', 'new');
      // Now the old owner's late batch reaches its open file.
      await put(old, 'late', 'x');
      old.abandon();
      next.abandon();
      if (rehomeJournal) {
        const r = await open(t.dir);
        assert.deepEqual(all(r), { k0: 'v', k1: 'v', k2: 'v', n1: 'new', n2: 'new' }, 'every record of the successor, none of the old owner');
        await r.close();
      } else {
        // What the rehome prevents: the late record lands after the successor's (every journal is written in append
        // mode, so never over them) with a sequence number the successor already used: the store no longer opens.
        await assert.rejects(open(t.dir), (e: unknown) => isSparkqError(e, 'corrupt') && /sequence/.test(e.message));
      }
    });
  }

  it('never writes records that waited in memory once the fence says another process owns the queue', async () => {
    let demoted = false;
    const s = await open(t.dir, {
      fence: () => {
        if (demoted) throw new Error('another process owns the queue now');
      },
    });
    await put(s, 'a', '1');
    // The record is in memory and its batch not yet written (that happens a turn later) when ownership is lost: the
    // loop was blocked long enough for another process to take over.
    const { durable } = s.write(() => {
      const rec = [{ k: 'b', v: '2' }];
      replay(s.db, rec);
      return { result: undefined, record: rec };
    });
    demoted = true;
    await assert.rejects(durable, /another process owns/);
    s.abandon();
    const journal = fs.readFileSync(path.join(t.dir, 'journal-000000000000.log'));
    assert.equal(journal.includes('"b"'), false, 'the record never reached the file');
    const r = await open(t.dir);
    assert.deepEqual(all(r), { a: '1' });
    await r.close();
  });

  it('looks again before a snapshot’s manifest names its files, and leaves the manifest alone if it lost the queue', async () => {
    let acknowledgeChecks = 0;
    let demoteAt = Infinity;
    const s = await open(t.dir, {
      fence: (when) => {
        if (when === 'acknowledge' && ++acknowledgeChecks >= demoteAt) throw new Error('another process owns the queue now');
      },
    });
    for (let i = 0; i < 3; i++) await put(s, `k${i}`, 'v');
    const manifest = fs.readFileSync(path.join(t.dir, 'manifest.json'), 'utf8');
    // The check before the snapshot passes; the one after its files are written (before the manifest) fails.
    demoteAt = acknowledgeChecks + 2;
    await assert.rejects(s.snapshot(), /another process owns/);
    assert.equal(fs.readFileSync(path.join(t.dir, 'manifest.json'), 'utf8'), manifest, 'the manifest still names the old generation');
    s.abandon();
    const r = await open(t.dir);
    assert.deepEqual(all(r), { k0: 'v', k1: 'v', k2: 'v' });
    assert.ok(r.recovery.swept.some((f) => f.startsWith('snapshot-000000000003')), `the unnamed snapshot is swept: ${r.recovery.swept.join(', ')}`);
    await r.close();
  });

  it('checks the fence before every write, and once per group commit after the sync before acknowledging', async () => {
    const checks: string[] = [];
    const s = await open(t.dir, { fence: (when) => void checks.push(when) });
    await put(s, 'warm', 'up');
    checks.length = 0;
    await Promise.all(Array.from({ length: 20 }, (_, i) => put(s, `k${i}`, 'v')));
    // 20 checks before the writes (one each, which may reuse a recent look) and one per batch before it is written,
    // and a few that must look, after the syncs.
    const writes = checks.filter((c) => c === 'write').length;
    assert.ok(writes >= 21 && writes <= 25, `fence checks before 20 writes and their batches: ${writes}`);
    const acks = checks.filter((c) => c === 'acknowledge').length;
    assert.ok(acks >= 1 && acks <= 5, `fence checks after the syncs of 20 writes in a group commit: ${acks}`);
    checks.length = 0;
    await s.snapshot();
    assert.equal(checks.at(-1), 'acknowledge', `a snapshot looks too: ${checks.join(', ')}`);
    await s.close();
  });

  it('sweeps temp files and unreferenced data files left by a crash mid-switch', async () => {
    const s = await open(t.dir);
    await put(s, 'a', '1');
    await s.close();
    fs.writeFileSync(path.join(t.dir, 'snapshot-000000000099.sqlite.123.1.tmp'), 'partial');
    fs.writeFileSync(path.join(t.dir, 'snapshot-000000000099.sqlite'), 'orphan');
    const r = await open(t.dir);
    assert.deepEqual(r.recovery.swept.sort(), ['snapshot-000000000099.sqlite', 'snapshot-000000000099.sqlite.123.1.tmp']);
    await r.close();
  });

  describe('damaged files are detected, reported, kept aside and never overwritten', () => {
    async function prepared(): Promise<void> {
      const s = await open(t.dir);
      for (let i = 0; i < 10; i++) await put(s, `k${i}`, `v${i}`);
      await s.snapshot();
      for (let i = 10; i < 15; i++) await put(s, `k${i}`, `v${i}`);
      s.abandon();
    }
    async function expectRefused(damage: () => void, pattern: RegExp, keptAside = true): Promise<void> {
      await prepared();
      damage();
      const before = fingerprint(t.dir);
      await assert.rejects(open(t.dir), (e: unknown) => isSparkqError(e, 'corrupt') && pattern.test((e as Error).message));
      const after = fingerprint(t.dir);
      for (const [name, hash] of Object.entries(before)) assert.equal(after[name], hash, `${name} was changed`);
      if (keptAside) assert.ok(fs.readdirSync(path.join(t.dir, 'aside')).length > 0, 'a copy of the damaged file was kept aside');
    }
    const snap = () => path.join(t.dir, 'snapshot-000000000010.sqlite');
    const journal = () => path.join(t.dir, 'journal-000000000010.log');

    it('zero-length snapshot', () => expectRefused(() => fs.truncateSync(snap(), 0), /snapshot .* is damaged: the file is empty/));
    it('truncated snapshot', () => expectRefused(() => fs.truncateSync(snap(), fs.statSync(snap()).size - 100), /truncated/));
    it('missing snapshot', () => expectRefused(() => fs.rmSync(snap()), /is missing/, false));
    it('zero-length journal', () => expectRefused(() => fs.truncateSync(journal(), 0), /journal .* is damaged at byte 0: the file is empty/));
    it('missing journal', () => expectRefused(() => fs.rmSync(journal()), /is missing/, false));
    it('damaged manifest', () => expectRefused(() => fs.appendFileSync(path.join(t.dir, 'manifest.json'), 'x'), /manifest .* is damaged/));
    it('missing manifest with data files present', async () => {
      await prepared();
      fs.rmSync(path.join(t.dir, 'manifest.json'));
      await assert.rejects(open(t.dir), /has data files .* but no manifest/);
      assert.ok(fs.existsSync(snap()));
    });

    it('bit flips in the snapshot, at 200 positions spread over the file', async () => {
      await prepared();
      const good = fs.readFileSync(snap());
      for (let i = 0; i < 200; i++) {
        const pos = Math.floor((i * good.length) / 200);
        const bad = Buffer.from(good);
        bad[pos]! ^= 1 << i % 8;
        fs.writeFileSync(snap(), bad);
        await assert.rejects(open(t.dir), (e: unknown) => isSparkqError(e, 'corrupt'), `flip at ${pos} not detected`);
        assert.ok(bad.equals(fs.readFileSync(snap())), 'the damaged snapshot was rewritten');
      }
    });

    it('bit flips in the journal, at every byte', async () => {
      await prepared();
      const good = fs.readFileSync(journal());
      for (let pos = 0; pos < good.length; pos++) {
        const bad = Buffer.from(good);
        bad[pos]! ^= 1 << pos % 8;
        fs.writeFileSync(journal(), bad);
        await assert.rejects(open(t.dir), (e: unknown) => isSparkqError(e, 'corrupt'), `flip at ${pos} not detected`);
      }
    });

    it('truncated journal: a cut inside a record is caught as a torn tail, reported and kept aside', async () => {
      await prepared();
      const good = fs.readFileSync(journal());
      fs.writeFileSync(journal(), good.subarray(0, good.length - 7));
      const r = await open(t.dir);
      assert.equal(r.recovery.tornTail?.bytes !== undefined, true);
      assert.ok(fs.existsSync(r.recovery.tornTail!.keptAt!));
      assert.equal(Object.keys(all(r)).length, 14, 'the cut (never acknowledged) record is the only one missing');
      await r.close();
    });

    it('repair rebuilds a damaged current snapshot from the previous generation with nothing lost', async () => {
      await prepared();
      const bad = fs.readFileSync(snap());
      bad[100]! ^= 0x10;
      fs.writeFileSync(snap(), bad);
      const r = await open(t.dir, { repair: true });
      assert.equal(Object.keys(all(r)).length, 15);
      assert.match(r.recovery.repairs.join(), /nothing was lost/);
      await r.close();
      const again = await open(t.dir);
      assert.equal(Object.keys(all(again)).length, 15);
      await again.close();
    });

    it('repair keeps the journal records before the damage and says what was lost', async () => {
      await prepared();
      const buf = fs.readFileSync(journal());
      buf[buf.length - 2]! ^= 0x01; // the last record's checksum
      fs.writeFileSync(journal(), buf);
      const r = await open(t.dir, { repair: true });
      assert.equal(Object.keys(all(r)).length, 14);
      assert.match(r.recovery.repairs.join(), /kept 4 journal records/);
      await r.close();
    });
  });
});
