import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSparkqLauncher } from '../../../src/worker/launcher';
import { tempDir } from '../../support/tmp';

describe('the sparkq launcher', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  it('runs the command it names with the arguments it is given, quoted as they are', function () {
    if (process.platform === 'win32') this.skip();
    const bin = writeSparkqLauncher(path.join(t.dir, 'bin'), [process.execPath, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))'], { SPARKQ_X: "it's" });
    const r = spawnSync(path.join(bin, 'sparkq'), ['a b', '$HOME', "'"], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['a b', '$HOME', "'"]);
    assert.equal(fs.statSync(path.join(bin, 'sparkq')).mode & 0o777, 0o755 & ~process.umask());
  });

  it('is left alone when it already says the same, and replaced when the command changes', function () {
    if (process.platform === 'win32') this.skip();
    const bin = path.join(t.dir, 'bin');
    const file = path.join(bin, 'sparkq');
    writeSparkqLauncher(bin, [process.execPath, '-e', 'console.log("one")']);
    const first = fs.statSync(file).ino;
    writeSparkqLauncher(bin, [process.execPath, '-e', 'console.log("one")']);
    assert.equal(fs.statSync(file).ino, first, 'rewritten although nothing changed');
    writeSparkqLauncher(bin, [process.execPath, '-e', 'console.log("two")']);
    assert.notEqual(fs.statSync(file).ino, first);
    assert.equal(spawnSync(file, { encoding: 'utf8' }).stdout, 'two\n');
    fs.chmodSync(file, 0o644); // not executable any more: written again
    writeSparkqLauncher(bin, [process.execPath, '-e', 'console.log("two")']);
    assert.equal(spawnSync(file, { encoding: 'utf8' }).stdout, 'two\n');
  });

  it('workers starting together all write it: none fails, and the launcher is whole', async function () {
    if (process.platform === 'win32') this.skip();
    this.timeout(60_000);
    const bin = path.join(t.dir, 'bin');
    // Each process writes the launcher 50 times, all at once, as the workers of a plan start together.
    const script = `
      require('tsx/cjs');
      const { writeSparkqLauncher } = require(${JSON.stringify(path.resolve(__dirname, '../../../src/worker/launcher.ts'))});
      for (let i = 0; i < 50; i++) writeSparkqLauncher(${JSON.stringify(bin)}, [process.execPath, '-e', 'console.log("ok")']);
    `;
    const codes = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
        const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (c: Buffer) => (err += c.toString()));
        p.on('exit', (code) => resolve({ code, err }));
      })),
    );
    for (const c of codes) assert.equal(c.code, 0, c.err);
    assert.deepEqual(fs.readdirSync(bin), ['sparkq'], 'no temp files left');
    assert.equal(spawnSync(path.join(bin, 'sparkq'), { encoding: 'utf8' }).stdout, 'ok\n');
  });
});
