import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SqlDatabase } from '../../../src/core/store/sqlite';
import { Store } from '../../../src/core/store/store';
import { tempDir } from '../../support/tmp';

/** Rows of varied text, so that pages differ from one another and from one export to the next. */
function fill(db: SqlDatabase, from: number, count: number): void {
  db.transaction(() => {
    for (let i = from; i < from + count; i++) db.run('INSERT INTO t(id, v) VALUES (?, ?)', [i, `${i}:`.padEnd(150 + (i % 97), String.fromCharCode(97 + (i % 26)))]);
  });
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

describe('export into a kept buffer (export({ reuse: true }))', () => {
  it('gives the same bytes as a fresh export while the database grows and shrinks, and keeps its buffer while it can', async () => {
    const db = await SqlDatabase.open();
    try {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t(v)');
      const original = globalThis.Uint8Array;
      let buffer: ArrayBufferLike | null = null;
      let kept = 0;
      const check = (what: string): boolean => {
        const fresh = db.export();
        const reused = db.export({ reuse: true });
        assert.equal(reused.length, fresh.length, what);
        assert.ok(same(reused, fresh), `${what}: the reused buffer gives the image a fresh export gives`);
        const same0 = reused.buffer === buffer;
        if (same0) kept++;
        buffer = reused.buffer;
        // Another export of the same database into the same buffer, scribbled over first: stale bytes never show.
        new Uint8Array(reused.buffer).fill(0xa5);
        const again = db.export({ reuse: true });
        assert.equal(again.buffer, reused.buffer, `${what}: the same buffer serves the next export`);
        assert.ok(same(again, fresh), `${what}: an export over stale bytes is exact`);
        assert.equal(globalThis.Uint8Array, original, 'the global Uint8Array is itself again');
        return same0;
      };
      check('empty schema');
      fill(db, 0, 6000);
      check('filled');
      for (let step = 1; step < 8; step++) {
        // Growth by a few percent fits the room kept after the image; every few steps it does not.
        fill(db, step * 10_000, step % 3 === 0 ? 3000 : 200);
        db.run('UPDATE t SET v = v || ? WHERE id % 7 = ?', ['x', step]);
        check(`grown, step ${step}`);
      }
      db.run('DELETE FROM t WHERE id % 10 = 0');
      db.exec('VACUUM');
      assert.ok(check('shrunk a little'), 'the buffer is kept when the image shrinks a little (its tail is stale)');
      db.run('DELETE FROM t WHERE id > 2000');
      db.exec('VACUUM');
      assert.ok(!check('shrunk to a small part'), 'the buffer is dropped when the image shrinks to under half');
      fill(db, 100_000, 8000);
      check('grown again');
      assert.ok(kept >= 4, `the buffer was reused between exports (${kept} times)`);
      // A fresh export is the caller's own: a later reuse export does not write into it.
      const own = db.export();
      const copy = Uint8Array.from(own);
      fill(db, 200_000, 500);
      db.export({ reuse: true });
      assert.ok(same(own, copy));
      // The image loads back.
      const back = SqlDatabase.openSync(db.export({ reuse: true }));
      try {
        assert.equal(back.value('SELECT count(*) FROM t'), db.value('SELECT count(*) FROM t'));
        assert.equal(back.value('PRAGMA integrity_check'), 'ok');
      } finally {
        back.close();
      }
    } finally {
      db.close();
    }
  });

  it('restores the global Uint8Array when the export throws', async () => {
    const db = await SqlDatabase.open();
    try {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      fill(db, 0, 100);
      const original = globalThis.Uint8Array;
      const raw = db.raw as unknown as { export: () => Uint8Array };
      const exportOf = raw.export;
      raw.export = () => {
        throw new Error('boom');
      };
      try {
        assert.throws(() => db.export({ reuse: true }), /boom/);
      } finally {
        raw.export = exportOf;
      }
      assert.equal(globalThis.Uint8Array, original);
      assert.throws(() => db.transaction(() => db.export({ reuse: true })), /inside a transaction/);
      assert.equal(globalThis.Uint8Array, original);
    } finally {
      db.close();
    }
  });
});

describe('removing a dropped generation off the snapshot path', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  const migrations = [(db: SqlDatabase) => db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)')];
  const replay = (db: SqlDatabase, record: unknown) => {
    for (const p of record as { k: string; v: string }[]) db.run('INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [p.k, p.v]);
  };
  const put = async (s: Store, k: string) => {
    const { durable } = s.write(() => {
      const rec = [{ k, v: k.repeat(50) }];
      replay(s.db, rec);
      return { result: undefined, record: rec };
    });
    await durable;
  };
  const dataFiles = () => fs.readdirSync(t.dir).filter((n) => /^(snapshot|journal)-/.test(n)).sort();

  it('removes the files of the generation two back, at the latest by close', async () => {
    const s = await Store.open({ dir: t.dir, migrations, replay });
    for (let i = 0; i < 4; i++) {
      await put(s, `k${i}`);
      await s.snapshot();
    }
    await s.close({ snapshot: false });
    assert.deepEqual(dataFiles(), ['journal-000000000003.log', 'journal-000000000004.log', 'snapshot-000000000003.sqlite', 'snapshot-000000000004.sqlite']);
  });

  it('a crash before the dropped files are gone leaves them to the sweep at the next open', async () => {
    const s = await Store.open({ dir: t.dir, migrations, replay });
    await put(s, 'a');
    await s.snapshot(); // generation 1; generation 0 is the previous one
    const old = dataFiles().filter((n) => n.includes('000000000000'));
    assert.equal(old.length, 2);
    const kept = old.map((n) => ({ n, bytes: fs.readFileSync(path.join(t.dir, n)) }));
    await put(s, 'b');
    await s.snapshot(); // generation 2: generation 0 is dropped, its removal started
    await put(s, 'c');
    s.abandon(); // a crash
    // As if the process died before the removal ran: the dropped files are still there.
    for (const { n, bytes } of kept) fs.writeFileSync(path.join(t.dir, n), bytes);
    const r = await Store.open({ dir: t.dir, migrations, replay });
    assert.deepEqual(r.recovery.swept.sort(), old.sort());
    assert.deepEqual(
      r.db.all<{ k: string }>('SELECT k FROM kv ORDER BY k').map((x) => x.k),
      ['a', 'b', 'c'],
    );
    await r.close({ snapshot: false });
    assert.deepEqual(dataFiles(), ['journal-000000000001.log', 'journal-000000000002.log', 'snapshot-000000000001.sqlite', 'snapshot-000000000002.sqlite']);
  });
});
