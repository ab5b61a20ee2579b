import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { type Part, crc32, writeFileAtomic, writeNewFile } from '../../../src/core/store/fileio';
import { readSnapshot, writeSnapshot } from '../../../src/core/store/snapshot';
import type { SqlDatabase } from '../../../src/core/store/sqlite';
import { Store } from '../../../src/core/store/store';
import { tempDir } from '../../support/tmp';

/** Bytes that differ everywhere (so a chunk written twice, skipped or out of order changes the file). */
function pattern(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The snapshot file as the format defines it, built independently of writeSnapshot: image | 28-byte trailer. */
function expectedFile(image: Uint8Array, seq: number): Buffer {
  const trailer = Buffer.alloc(28);
  trailer.writeUInt32LE(0x53515053, 0);
  trailer.writeUInt32LE(1, 4);
  trailer.writeDoubleLE(seq, 8);
  trailer.writeUInt32LE(image.length, 16);
  trailer.writeUInt32LE(zlibCrc32(image) >>> 0, 20);
  trailer.writeUInt32LE(zlibCrc32(trailer.subarray(0, 24)) >>> 0, 24);
  return Buffer.concat([image, trailer]);
}

describe('snapshot writing (chunked checksum, early writeback)', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  it('crc32 continues over chunks to the checksum of the whole', () => {
    const data = pattern(1_000_003, 7);
    let c = 0;
    for (let at = 0; at < data.length; at += 65_536) c = crc32(data.subarray(at, at + 65_536), c);
    assert.equal(c, crc32(data));
    assert.equal(crc32(data), zlibCrc32(data) >>> 0);
  });

  for (const size of [0, 1, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9 * 1024 * 1024 + 4096 * 3 + 5]) {
    for (const durable of [true, false]) {
      for (const fresh of [true, false]) {
        it(`writes exactly the same bytes as the format defines: ${size} bytes, durable ${durable}, fresh ${fresh}`, () => {
          const image = pattern(size, size + 11);
          const file = path.join(t.dir, `s-${size}-${durable}-${fresh}.sqlite`);
          const { bytes, crc } = writeSnapshot(file, image, 1234, durable, { fresh });
          const want = expectedFile(image, 1234);
          const got = fs.readFileSync(file);
          assert.equal(bytes, want.length);
          assert.equal(crc, zlibCrc32(image) >>> 0);
          assert.ok(got.equals(want), 'the file is image | trailer, byte for byte');
          const back = readSnapshot(file, { seq: 1234, crc, bytes });
          assert.equal(back.seq, 1234);
          assert.ok(Buffer.from(back.image).equals(Buffer.from(image)));
          assert.deepEqual(
            fs.readdirSync(t.dir).filter((f) => f.endsWith('.tmp')),
            [],
          );
        });
      }
    }
  }

  it('a fresh write whose name is taken replaces the file atomically and checksums the image once, from the start', () => {
    const file = path.join(t.dir, 'taken.sqlite');
    fs.writeFileSync(file, 'leftover of a crash');
    const image = pattern(5 * 1024 * 1024 + 17, 3);
    const { crc } = writeSnapshot(file, image, 9, true, { fresh: true });
    assert.equal(crc, zlibCrc32(image) >>> 0);
    assert.ok(fs.readFileSync(file).equals(expectedFile(image, 9)));
  });

  it('writeNewFile and writeFileAtomic: chunk callbacks see every byte once, in order, before the lazy parts are made', () => {
    for (const durable of [true, false]) {
      for (const how of ['new', 'atomic'] as const) {
        const big = pattern(10 * 1024 * 1024 + 3, 5);
        const seen: Uint8Array[] = [];
        let madeAfter = -1;
        const parts: Part[] = [
          Buffer.from('head'),
          { bytes: big, written: (c) => seen.push(Uint8Array.from(c)) },
          () => {
            madeAfter = seen.reduce((n, c) => n + c.length, 0);
            return Buffer.from('tail');
          },
        ];
        const file = path.join(t.dir, `parts-${how}-${durable}`);
        if (how === 'new') assert.equal(writeNewFile(file, parts, { durable }), true);
        else writeFileAtomic(file, parts, { durable });
        assert.equal(madeAfter, big.length);
        assert.ok(Buffer.concat(seen).equals(Buffer.from(big)));
        assert.ok(fs.readFileSync(file).equals(Buffer.concat([Buffer.from('head'), big, Buffer.from('tail')])));
      }
    }
  });

  it('a failing write leaves no file and does not keep the second descriptor open', async function () {
    if (process.platform !== 'linux') this.skip();
    const file = path.join(t.dir, 'fails');
    // The tests before this one leave second descriptors whose close waits for their sync to finish (on a busy disk,
    // into this test): count once the number has held still for a while.
    let fdsBefore = -1;
    for (let still = 0; still < 4; ) {
      await new Promise((r) => setTimeout(r, 50));
      const n = fs.readdirSync('/proc/self/fd').length;
      still = n === fdsBefore ? still + 1 : 0;
      fdsBefore = n;
    }
    assert.throws(
      () =>
        writeNewFile(
          file,
          [
            { bytes: pattern(9 * 1024 * 1024, 1), written: () => undefined },
            () => {
              throw new Error('boom');
            },
          ],
          { durable: true },
        ),
      /boom/,
    );
    assert.equal(fs.existsSync(file), false);
    // The second descriptor is closed once its sync is done (up to seconds on a busy disk).
    const deadline = Date.now() + 5_000;
    while (fs.readdirSync('/proc/self/fd').length !== fdsBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore);
  });

  it('a store at several megabytes snapshots, reopens from the snapshot, and replays writes made after it', async function () {
    this.timeout(120_000);
    const migrations = [(db: SqlDatabase) => db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)')];
    const replay = (db: SqlDatabase, record: unknown) => {
      for (const p of record as { k: string; v: string }[]) db.run('INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [p.k, p.v]);
    };
    const put = async (s: Store, rec: { k: string; v: string }[]) => {
      const { durable } = s.write(() => {
        replay(s.db, rec);
        return { result: undefined, record: rec };
      });
      await durable;
    };
    const dump = (s: Store) => s.db.all<{ k: string; v: string }>('SELECT k, v FROM kv ORDER BY k');
    const s = await Store.open({ dir: t.dir, migrations, replay, durability: 'full' });
    const text = Buffer.from(pattern(3000, 99)).toString('base64');
    for (let b = 0; b < 10; b++) await put(s, Array.from({ length: 400 }, (_, i) => ({ k: `k${b}-${i}`, v: `${b}:${i}:${text}` })));
    await s.snapshot();
    const image = s.db.export();
    assert.ok(image.length > 9 * 1024 * 1024, `a multi-chunk image (${image.length} bytes)`);
    await put(s, [{ k: 'after', v: 'the snapshot' }]);
    const before = dump(s);
    s.abandon();

    const manifest = JSON.parse(fs.readFileSync(path.join(t.dir, 'manifest.json'), 'utf8')) as { manifest: { current: { snapshot: { file: string; seq: number; crc: number; bytes: number } } } };
    const snap = manifest.manifest.current.snapshot;
    const file = readSnapshot(path.join(t.dir, snap.file), snap);
    assert.equal(snap.crc, zlibCrc32(file.image) >>> 0);
    assert.ok(Buffer.from(file.image).equals(Buffer.from(image)), 'the snapshot file holds the image export() gives');

    const r = await Store.open({ dir: t.dir, migrations, replay, durability: 'full' });
    assert.equal(r.recovery.replayed, 1, 'the write after the snapshot comes from the journal');
    assert.deepEqual(dump(r), before);
    assert.equal(r.db.value('PRAGMA integrity_check'), 'ok');
    await r.close();
  });
});
