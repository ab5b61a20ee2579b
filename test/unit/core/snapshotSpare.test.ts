import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { writeOverSpare } from '../../../src/core/store/fileio';
import { readManifest, readSnapshot } from '../../../src/core/store/snapshot';
import type { SqlDatabase } from '../../../src/core/store/sqlite';
import { Store, type StoreOptions } from '../../../src/core/store/store';
import { spareMigrations, spareReplay, spareValue } from '../../support/spareChild';
import { tempDir } from '../../support/tmp';

/*
 * A dropped generation's snapshot is kept as a spare file that the next snapshot is written in (StoreOptions.spareAboveBytes):
 * no unlink of tens of megabytes and no allocation of new blocks on the snapshot path. These tests hold it to what a new
 * file gives: the same bytes, the same two generations, the same recovery after a crash at any moment.
 */

const migrations = [(db: SqlDatabase) => db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)')];
type Put = { k: string; v: string };
const replay = (db: SqlDatabase, record: unknown) => {
  for (const p of record as Put[]) db.run('INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [p.k, p.v]);
};
const open = (dir: string, extra: Partial<StoreOptions> = {}) => Store.open({ dir, migrations, replay, spareAboveBytes: 0, ...extra });
async function put(s: Store, k: string, v: string): Promise<void> {
  const { durable } = s.write(() => {
    const rec = [{ k, v }];
    replay(s.db, rec);
    return { result: undefined, record: rec };
  });
  await durable;
}
const all = (s: Store) => Object.fromEntries(s.db.all<Put>('SELECT k, v FROM kv ORDER BY k').map((r) => [r.k, r.v]));
const SPARE = `snapshot-spare.${process.pid}.tmp`;

describe('snapshots written in a spare file', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  it('writeOverSpare: renames the spare, overwrites it and cuts it to the new length; false when there is no spare', () => {
    const spare = path.join(t.dir, 'spare.tmp');
    const file = path.join(t.dir, 'new.bin');
    fs.writeFileSync(spare, Buffer.alloc(9 * 1024 * 1024, 0x5a));
    const ino = fs.statSync(spare).ino;
    const body = Buffer.alloc(5 * 1024 * 1024 + 3, 0x11);
    for (const durable of [true, false]) {
      assert.equal(writeOverSpare(spare, file, [body, () => Buffer.from('tail')], { durable }), true);
      assert.equal(fs.existsSync(spare), false);
      assert.equal(fs.statSync(file).ino, ino, 'the same file, renamed');
      assert.ok(fs.readFileSync(file).equals(Buffer.concat([body, Buffer.from('tail')])), 'exactly the new bytes, no old ones after them');
      fs.renameSync(file, spare);
    }
    // Longer than the spare: it grows.
    const longer = Buffer.alloc(11 * 1024 * 1024, 0x22);
    assert.equal(writeOverSpare(spare, file, [longer], { durable: true }), true);
    assert.ok(fs.readFileSync(file).equals(longer));
    assert.equal(writeOverSpare(path.join(t.dir, 'none.tmp'), path.join(t.dir, 'other.bin'), [body], { durable: true }), false);
    assert.equal(fs.existsSync(path.join(t.dir, 'other.bin')), false);
  });

  it('writeOverSpare: a failure removes the renamed file', () => {
    const spare = path.join(t.dir, 'spare.tmp');
    const file = path.join(t.dir, 'new.bin');
    fs.writeFileSync(spare, Buffer.alloc(6 * 1024 * 1024, 1));
    assert.throws(
      () =>
        writeOverSpare(
          spare,
          file,
          [
            Buffer.alloc(5 * 1024 * 1024),
            () => {
              throw new Error('boom');
            },
          ],
          { durable: true },
        ),
      /boom/,
    );
    assert.equal(fs.existsSync(file), false);
    assert.equal(fs.existsSync(spare), false);
  });

  it('keeps two generations plus one spare while open, writes the next snapshot in it, and leaves no spare after close', async () => {
    const s = await open(t.dir);
    for (let g = 0; g < 3; g++) {
      await put(s, `g${g}`, 'x'.repeat(1000));
      await s.snapshot();
    }
    const names = () => fs.readdirSync(t.dir).sort();
    assert.deepEqual(names(), ['journal-000000000002.log', 'journal-000000000003.log', 'manifest.json', 'snapshot-000000000002.sqlite', 'snapshot-000000000003.sqlite', SPARE]);
    const spareIno = fs.statSync(path.join(t.dir, SPARE)).ino;
    await put(s, 'g3', 'y');
    await s.snapshot();
    assert.equal(fs.statSync(path.join(t.dir, 'snapshot-000000000004.sqlite')).ino, spareIno, 'the new snapshot was written in the spare');
    assert.deepEqual(names(), ['journal-000000000003.log', 'journal-000000000004.log', 'manifest.json', 'snapshot-000000000003.sqlite', 'snapshot-000000000004.sqlite', SPARE]);
    // The snapshot in the spare is exactly what the manifest records, and what memory holds.
    const m = readManifest(path.join(t.dir, 'manifest.json'))!;
    const { image } = readSnapshot(path.join(t.dir, m.current.snapshot.file), m.current.snapshot);
    assert.equal(zlibCrc32(image) >>> 0, m.current.snapshot.crc);
    await s.close();
    assert.deepEqual(names(), ['journal-000000000003.log', 'journal-000000000004.log', 'manifest.json', 'snapshot-000000000003.sqlite', 'snapshot-000000000004.sqlite']);
    const r = await open(t.dir);
    assert.deepEqual(all(r), { g0: 'x'.repeat(1000), g1: 'x'.repeat(1000), g2: 'x'.repeat(1000), g3: 'y' });
    await r.close();
  });

  it('a spare longer than the new snapshot is cut to it (the database shrank)', async () => {
    const s = await open(t.dir);
    for (let i = 0; i < 3; i++) {
      await put(s, `big${i}`, 'b'.repeat(400_000));
      await s.snapshot();
    }
    const spareBytes = fs.statSync(path.join(t.dir, SPARE)).size;
    const { durable } = s.write(() => {
      s.db.run('DELETE FROM kv');
      return { result: undefined, record: null };
    });
    await durable;
    s.db.exec('VACUUM');
    await put(s, 'small', 's');
    await s.snapshot();
    const m = readManifest(path.join(t.dir, 'manifest.json'))!;
    const size = fs.statSync(path.join(t.dir, m.current.snapshot.file)).size;
    assert.ok(size < spareBytes / 2, `the snapshot (${size} bytes) is not padded to the spare's ${spareBytes}`);
    assert.equal(size, m.current.snapshot.bytes);
    s.abandon();
    const r = await open(t.dir);
    assert.deepEqual(all(r), { small: 's' });
    await r.close();
  });

  it('a snapshot that loses the queue before its manifest leaves the manifest alone; the file it wrote in the spare is swept', async () => {
    let acks = 0;
    let demoteAt = Infinity;
    const s = await open(t.dir, {
      fence: (when) => {
        if (when === 'acknowledge' && ++acks >= demoteAt) throw new Error('another process owns the queue now');
      },
    });
    for (let g = 0; g < 3; g++) {
      await put(s, `g${g}`, 'v');
      await s.snapshot();
    }
    assert.ok(fs.existsSync(path.join(t.dir, SPARE)));
    await put(s, 'late', 'v');
    const manifest = fs.readFileSync(path.join(t.dir, 'manifest.json'), 'utf8');
    demoteAt = acks + 2; // the look before the snapshot passes; the one before its manifest fails
    await assert.rejects(s.snapshot(), /another process owns/);
    assert.equal(fs.readFileSync(path.join(t.dir, 'manifest.json'), 'utf8'), manifest);
    assert.equal(fs.existsSync(path.join(t.dir, SPARE)), false, 'the spare was used for the unnamed snapshot');
    s.abandon();
    const r = await open(t.dir, { spareAboveBytes: Infinity });
    assert.ok(r.recovery.swept.includes('snapshot-000000000004.sqlite'), r.recovery.swept.join(', '));
    assert.deepEqual(all(r), { g0: 'v', g1: 'v', g2: 'v', late: 'v' });
    await r.close();
  });

  it('a crash leaves the spare to the sweep at the next open; a spare that went missing means a new file', async () => {
    const s = await open(t.dir);
    for (let g = 0; g < 3; g++) {
      await put(s, `g${g}`, 'v');
      await s.snapshot();
    }
    fs.rmSync(path.join(t.dir, SPARE));
    await put(s, 'g3', 'v');
    await s.snapshot(); // no spare: written as a new file
    await put(s, 'g4', 'v');
    await s.snapshot();
    assert.ok(fs.existsSync(path.join(t.dir, SPARE)));
    s.abandon();
    const r = await open(t.dir);
    assert.ok(r.recovery.swept.includes(SPARE), r.recovery.swept.join(', '));
    assert.equal(Object.keys(all(r)).length, 5);
    await r.close();
  });

  it('below spareAboveBytes the dropped snapshot is removed, as before', async () => {
    const s = await open(t.dir, { spareAboveBytes: 1024 * 1024 });
    for (let g = 0; g < 4; g++) {
      await put(s, `g${g}`, 'v');
      await s.snapshot();
    }
    assert.deepEqual(fs.readdirSync(t.dir).filter((n) => n.endsWith('.tmp')), []);
    await s.close();
  });
});

describe('kill -9 while snapshots are written in a spare file', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('sparkq-spare-crash-')));
  afterEach(() => t.cleanup());

  const CYCLES = Number(process.env['SPARKQ_SPARE_CRASH_CYCLES'] ?? 25);

  it(`keeps every acknowledged put through ${CYCLES} SIGKILLs, with a spare in play`, async function (this: Mocha.Context) {
    this.timeout(300_000);
    const out = path.join(t.dir, 'child');
    fs.mkdirSync(out);
    const child = path.join(out, 'spareChild.js');
    buildSync({ entryPoints: [path.join(__dirname, '..', '..', 'support', 'spareChild.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: child, logLevel: 'error' });
    fs.copyFileSync(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'), path.join(out, 'sql-wasm.wasm'));
    const dir = path.join(t.dir, 'store');
    const acked: string[] = [];
    let withSpare = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const lines = await runAndKill(child, dir, `c${cycle}`, 30 + Math.floor(Math.random() * 150));
      acked.push(...lines.filter((l) => l !== 'ready'));
      if (fs.readdirSync(dir).some((n) => n.startsWith('snapshot-spare.'))) withSpare++;
      const s = await Store.open({ dir, migrations: spareMigrations, replay: spareReplay, spareAboveBytes: Infinity });
      const rows = new Map(s.db.all<Put>('SELECT k, v FROM kv').map((r) => [r.k, r.v]));
      for (const k of acked) assert.equal(rows.get(k), spareValue(k), `cycle ${cycle}: acknowledged ${k} is there, whole`);
      assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], `cycle ${cycle}: no temp file or spare after open`);
      await s.close({ snapshot: false });
    }
    assert.ok(acked.length > CYCLES, `the children acknowledged ${acked.length} puts`);
    assert.ok(withSpare > 0, 'some kills left a spare behind (the spare was in play)');
  });
});

/** Runs the child until `ms` after it is ready, SIGKILLs it, and returns the lines it printed whole. */
function runAndKill(child: string, dir: string, prefix: string, ms: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--liftoff-only', child, dir, prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let stderr = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (c: string) => {
      if (text === '' && c.startsWith('ready')) setTimeout(() => p.kill('SIGKILL'), ms);
      text += c;
    });
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`the child ended by itself (${code}): ${stderr}`));
      resolve(text.split('\n').slice(0, -1));
    });
  });
}
