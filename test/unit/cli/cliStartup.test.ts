import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { COMMAND_GROUPS } from '../../../src/cli/commands';
import type { CliIo } from '../../../src/cli/io';
import { groupsFor, runCli } from '../../../src/cli/program';
import { Cli, type CliResult, bundleCli, cliEnv } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * What a CLI call loads before it runs (issue 14 §4): only the command group it names, and for --version and help
 * nothing but the entry file. The timings are in bench/cli.ts; these tests hold the mechanisms to the same answers
 * as loading everything.
 */

function captureIo(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s), isTTY: false },
      stderr: { write: (s: string) => (err += s) },
      env: {},
      cwd: '/',
      readStdin: () => '',
      onStopSignal: () => () => undefined,
    },
    out: () => out,
    err: () => err,
  };
}

describe('cli start-up: lazy command groups', () => {
  it("each group's names are exactly the top-level commands it adds, and no two groups share one", () => {
    const seen = new Set<string>();
    for (const g of COMMAND_GROUPS) {
      const program = new Command('sparkq');
      g.load().register(program, captureIo().io);
      assert.deepEqual(
        program.commands.map((c) => c.name()),
        [...g.names],
        `the group listed as ${g.names.join(', ')}`,
      );
      for (const n of g.names) {
        assert.ok(!seen.has(n), `${n} is in two groups`);
        seen.add(n);
      }
    }
  });

  it('a command line loads the group of the command it names; help, typos and odd options load them all', () => {
    const one = (argv: string[]) => groupsFor(argv).map((g) => g.names[0]);
    assert.deepEqual(one(['peek', '--queue', 'Q']), ['enqueue']);
    assert.deepEqual(one(['--json', 'complete', 'tsk_x', 'done']), ['claim']);
    assert.deepEqual(one(['--workspace', 'dir', 'queue', 'list']), ['queue']);
    assert.deepEqual(one(['--workspace=dir', 'serve']), ['serve']);
    assert.deepEqual(one(['help', 'guide']), ['run']);
    const all = COMMAND_GROUPS.map((g) => g.names[0]);
    for (const argv of [[], ['--help'], ['-v'], ['help'], ['pek'], ['--bogus', 'peek'], ['--workspace'], ['--workspace', 'peek'], ['help', 'nope']]) {
      assert.deepEqual(one(argv), all, JSON.stringify(argv));
    }
  });

  it('gives the same answer as a program with every group, for usage errors and help alike', async () => {
    const lines = [
      ['peek'],
      ['peek', '--bogus'],
      ['peek', '--help'],
      ['help', 'complete'],
      ['complete'],
      ['queue', 'frobnicate'],
      ['session', '--help'],
      ['tasks', '--limit', 'x'],
      ['enqueue', 'run-bash', '--queue', 'Q', '--timeout', 'abc'],
      ['--json', 'claim', '--help'],
    ];
    for (const argv of lines) {
      const lazy = captureIo();
      const lazyCode = await runCli(argv, lazy.io);
      const eager = captureIo();
      const eagerCode = await runCli(argv, eager.io, { loadAll: true });
      assert.equal(lazyCode, eagerCode, `exit code of ${argv.join(' ')}`);
      assert.equal(lazy.out(), eager.out(), `stdout of ${argv.join(' ')}`);
      assert.equal(lazy.err(), eager.err(), `stderr of ${argv.join(' ')}`);
    }
  });
});

describe('cli start-up: the entry file (dist/cli.js)', function () {
  this.timeout(60_000);
  const tmp = tempDir('sparkq-startup-');
  let bundle = '';
  let dir = '';
  const cacheDir = () => path.join(dir, '.cache');
  const cacheFile = (flavour: 'client' | 'owner' | 'long' = 'owner') => path.join(cacheDir(), `cli-app.js.${flavour}.${process.version}-${process.arch}.v8cache`);
  const cacheHeader = (flavour: 'client' | 'owner' = 'owner') => {
    const raw = fs.readFileSync(cacheFile(flavour));
    const first = raw.indexOf(10);
    return JSON.parse(raw.subarray(first + 1, raw.indexOf(10, first + 1)).toString()) as { parts: string[]; bytes: number };
  };

  before(() => {
    bundle = bundleCli(path.join(tmp.dir, 'bundle'));
    dir = path.dirname(bundle);
  });
  after(() => tmp.cleanup());

  /** The program itself, without the entry's table or code cache: what every answer must equal. */
  function viaProgram(args: string[], cwd: string, env: Record<string, string>): Promise<CliResult> {
    const script = `require(${JSON.stringify(path.join(dir, 'cli-app.js'))}).main(${JSON.stringify(args)}).then((c) => { process.exitCode = c; })`;
    return runNode(['-e', script], cwd, env);
  }

  function runNode(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { cwd, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (x: string) => (stdout += x));
      child.stderr.setEncoding('utf8').on('data', (x: string) => (stderr += x));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  }

  it('answers --version and help exactly as the program does, in any folder and environment', async () => {
    const elsewhere = path.join(tmp.dir, 'elsewhere');
    fs.mkdirSync(elsewhere, { recursive: true });
    const env = { SPARKQ_WORKSPACE: elsewhere, FORCE_COLOR: '1', COLUMNS: '132', LANG: 'de_DE.UTF-8' };
    for (const args of [['--version'], ['-v'], ['--help'], [], ['help'], ['queue'], ['queue', '--help'], ['help', 'complete'], ['session', 'help', 'create'], ['peek', '-h']]) {
      const fast = await new Cli(bundle).run(args, { cwd: elsewhere, env });
      const slow = await viaProgram(args, elsewhere, env);
      assert.deepEqual({ code: fast.code, out: fast.stdout, err: fast.stderr }, { code: slow.code, out: slow.stdout, err: slow.stderr }, `sparkq ${args.join(' ')}`);
    }
  });

  it('answers them without the program: only a command that runs loads cli-app.js', async () => {
    const copy = path.join(tmp.dir, 'no-program');
    fs.mkdirSync(copy);
    fs.copyFileSync(bundle, path.join(copy, 'cli.js'));
    const cli = new Cli(path.join(copy, 'cli.js'));
    assert.match(await cli.ok(['--version'], { cwd: tmp.dir }), /^\d+\.\d+\.\d+\n$/);
    assert.match(await cli.ok(['complete', '--help'], { cwd: tmp.dir }), /^Usage: sparkq complete /);
    const r = await cli.run(['status'], { cwd: tmp.dir });
    assert.notEqual(r.code, 0, 'status needs the program');
    assert.match(r.stderr, /cli-app\.js/);
  });

  it('compiles the program once: a cache per role, grown to the parts commands run, then reused unchanged', async () => {
    fs.rmSync(cacheDir(), { recursive: true, force: true });
    const ws = path.join(tmp.dir, 'ws');
    fs.mkdirSync(ws, { recursive: true });
    const cli = new Cli(bundle);
    await cli.ok(['init'], { cwd: ws });
    assert.deepEqual(cacheHeader('client').parts, ['init'], 'no workspace yet: init expected to be a client');
    assert.equal(fs.statSync(cacheDir()).mode & 0o777, 0o700);
    assert.equal(fs.statSync(cacheFile('client')).mode & 0o777, 0o600);
    // No owner running: status owns the queue for its own duration, with the owner's cache.
    await cli.ok(['status'], { cwd: ws });
    assert.deepEqual(cacheHeader().parts.sort(), ['owner', 'status']);
    const st = fs.statSync(cacheFile());
    await cli.ok(['status'], { cwd: ws });
    const again = fs.statSync(cacheFile());
    assert.deepEqual([again.ino, again.mtimeMs], [st.ino, st.mtimeMs], 'a usable cache is not rewritten');
    // A command group the cache lacks: rewritten once, with what was cached and what this command compiled.
    await cli.ok(['session', 'create', 's1'], { cwd: ws });
    const grown = cacheHeader();
    assert.deepEqual(grown.parts.sort(), ['owner', 'session', 'status']);
    const before = fs.statSync(cacheFile());
    await cli.ok(['session', 'list'], { cwd: ws });
    await cli.ok(['status'], { cwd: ws });
    const after = fs.statSync(cacheFile());
    assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'nothing new: not rewritten');
    // A live owner: the command expects to be its client and has a cache of its own.
    const serving = await cli.serve({ cwd: ws });
    try {
      await cli.ok(['session', 'list'], { cwd: ws });
      assert.deepEqual(cacheHeader('client').parts.sort(), ['init', 'session']);
    } finally {
      await serving.stop();
    }
  });

  it('a damaged, foreign or stale cache is never used: the command runs from source and replaces it', async () => {
    const ws = path.join(tmp.dir, 'ws');
    const cli = new Cli(bundle);
    await cli.ok(['status'], { cwd: ws });
    const good = fs.readFileSync(cacheFile());
    const headerEnd = good.indexOf(10, good.indexOf(10) + 1) + 1;
    const header = JSON.parse(good.subarray(good.indexOf(10) + 1, headerEnd - 1).toString()) as Record<string, unknown>;
    const withHeader = (h: Record<string, unknown>, data = good.subarray(headerEnd)) => Buffer.concat([good.subarray(0, good.indexOf(10) + 1), Buffer.from(JSON.stringify(h) + '\n'), data]);
    const flipped = Buffer.from(good.subarray(headerEnd));
    const mid = flipped.length >> 1;
    flipped.writeUInt8(flipped.readUInt8(mid) ^ 0x10, mid);
    const cases: [string, Buffer][] = [
      ['one bit flipped in the code (V8 does not check; it spun forever)', withHeader(header, flipped)],
      ['truncated', good.subarray(0, good.length - 1000)],
      ['garbage', Buffer.from('not a cache at all')],
      ['another build', withHeader({ ...header, build: 'ffffffffffffffff' })],
      ['the bundle edited since', withHeader({ ...header, mtimeMs: 1 })],
    ];
    for (const [what, bytes] of cases) {
      fs.writeFileSync(cacheFile(), bytes);
      const out = await cli.ok(['status', '--json'], { cwd: ws });
      assert.equal((JSON.parse(out) as { project: string }).project, 'ws', what);
      assert.ok(fs.readFileSync(cacheFile()).equals(good) || !fs.readFileSync(cacheFile()).equals(bytes), `${what}: replaced`);
      await cli.ok(['status'], { cwd: ws });
    }
  });

  it('uses a cache folder only this user can write: never a shared one, else the user cache folder', async () => {
    const ws = path.join(tmp.dir, 'ws');
    const cli = new Cli(bundle);
    const xdg = path.join(tmp.dir, 'xdg-cache');
    fs.rmSync(cacheDir(), { recursive: true, force: true });
    fs.mkdirSync(cacheDir(), { mode: 0o777 });
    fs.chmodSync(cacheDir(), 0o777);
    await cli.ok(['status'], { cwd: ws, env: { XDG_CACHE_HOME: xdg } });
    assert.deepEqual(fs.readdirSync(cacheDir()), [], 'nothing written to a folder others can write to');
    const mine = fs.readdirSync(path.join(xdg, 'sparkq', 'code-cache'));
    assert.equal(mine.length, 1);
    assert.deepEqual(fs.readdirSync(path.join(xdg, 'sparkq', 'code-cache', mine[0]!)), [path.basename(cacheFile())]);
    fs.rmSync(cacheDir(), { recursive: true, force: true });
  });
});
