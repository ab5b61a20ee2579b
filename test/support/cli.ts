import { strict as assert } from 'node:assert';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleCliSync } from '../../scripts/lib/cli-bundle';
import { tempDir } from './tmp';

/*
 * Runs the real `sparkq` CLI as child processes. The CLI is bundled from the sources once per test run, the way
 * scripts/build.mjs ships it (scripts/lib/cli-bundle.js: cli.js, the program beside it in cli-app.js, sql.js's
 * WebAssembly, a #!/usr/bin/env node banner), into a temp folder, so `npm test` alone never runs a stale dist/ and
 * never writes over the dist/ another build is using.
 */

/** Bundles the CLI into `outDir`; returns cli.js's path. Production (minified) unless told otherwise: what users run. */
export function bundleCli(outDir: string, opts: { production?: boolean } = {}): string {
  fs.mkdirSync(outDir, { recursive: true });
  return bundleCliSync({ outdir: outDir, production: opts.production ?? true, logLevel: 'error' });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  /** Added to a clean environment (no SPARKQ_*, NO_COLOR or FORCE_COLOR inherited from the developer's shell). */
  env?: Record<string, string>;
  input?: string;
}

/** The environment the CLI gets: the parent's minus anything that would change its behaviour, plus `extra`. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SPARKQ_') || k === 'NO_COLOR' || k === 'FORCE_COLOR') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export class Cli {
  constructor(readonly bundle: string) {}

  run(args: string[], opts: RunOptions): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [this.bundle, ...args], { cwd: opts.cwd, env: cliEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      child.on('error', reject);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  /** Runs a command that must succeed: exit 0 and nothing on stderr. */
  async ok(args: string[], opts: RunOptions): Promise<string> {
    const r = await this.run(args, opts);
    assert.equal(r.code, 0, `sparkq ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`);
    assert.equal(r.stderr, '', `sparkq ${args.join(' ')} wrote to stderr`);
    return r.stdout;
  }

  /** Runs a `--json` command that must succeed and parses its stdout. */
  async json<T>(args: string[], opts: RunOptions): Promise<T> {
    const out = await this.ok([...args, '--json'], opts);
    try {
      return JSON.parse(out) as T;
    } catch {
      assert.fail(`sparkq ${args.join(' ')} --json printed something that is not JSON: ${out}`);
    }
  }

  /** `sparkq serve` in the background, resolved once it printed that it serves (its JSON, or its human lines). */
  async serve(opts: RunOptions, { json = true }: { json?: boolean } = {}): Promise<Serving> {
    const args = json ? ['serve', '--json'] : ['serve'];
    const child = spawn(process.execPath, [this.bundle, ...args], { cwd: opts.cwd, env: cliEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    const serving = new Serving(child, json ? parseServeJson : parseServeHuman);
    await serving.started;
    return serving;
  }
}

export interface ServeInfo {
  workspace: string;
  pid: number;
  role: string;
  generation: number;
  since: string;
  socketPath: string;
}

export class Serving {
  stdout = '';
  stderr = '';
  readonly started: Promise<ServeInfo>;
  readonly exited: Promise<CliResult>;
  private info: ServeInfo | null = null;

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    parse: (stdout: string) => ServeInfo | null,
  ) {
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })));
    this.started = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sparkq serve did not start within 20 s: ${this.stderr}`)), 20_000);
      child.stdout.on('data', (s: string) => {
        this.stdout += s;
        if (this.info) return;
        this.info = parse(this.stdout);
        if (!this.info) return; // not all of it yet
        clearTimeout(timer);
        resolve(this.info);
      });
      void this.exited.then((r) => {
        clearTimeout(timer);
        reject(new Error(`sparkq serve exited ${String(r.code)} before serving: ${r.stderr}`));
      });
    });
    this.started.catch(() => undefined);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<CliResult> {
    this.child.kill(signal);
    return this.exited;
  }

  /** For an `after` hook: kill it if a failed test left it running. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function parseServeJson(stdout: string): ServeInfo | null {
  try {
    return JSON.parse(stdout) as ServeInfo;
  } catch {
    return null;
  }
}

function parseServeHuman(stdout: string): ServeInfo | null {
  if (!stdout.includes('Stop with Ctrl+C.')) return null;
  const field = (label: string) => new RegExp(`^${label} +(.+)$`, 'm').exec(stdout)?.[1] ?? '';
  return { workspace: field('serving'), pid: Number(field('pid')), role: 'serve', generation: Number(field('generation')), since: '', socketPath: field('socket') };
}

/** Asserts the error contract: exit code, `error: …` as the first stderr line, nothing on stdout. */
export function assertError(r: CliResult, code: 1 | 2, pattern: RegExp, what = ''): void {
  const label = what ? `${what}: ` : '';
  assert.equal(r.code, code, `${label}expected exit ${code}, got ${String(r.code)}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '', `${label}nothing on stdout on error`);
  const lines = r.stderr.split('\n');
  assert.match(lines[0]!, /^error: \S/, `${label}stderr starts with "error: "`);
  assert.match(lines[0]!, pattern, `${label}the error line`);
  if (code === 1) assert.equal(r.stderr, `${lines[0]!}\n`, `${label}exactly one line on stderr`);
  else assert.match(r.stderr, /\nUsage: sparkq /, `${label}a usage error shows the usage`);
}

/** ANSI escape codes anywhere in the text. */
// eslint-disable-next-line no-control-regex
export const ESCAPE = /\u001b\[/;

/**
 * What a CLI test file sets up around its tests (call it in the `describe` body): the CLI bundled once into a temp
 * folder, `sparkq serve` processes started through `serve` stopped after each test (SIGTERM, a clean hand-over) or
 * killed if one will not stop, and the temp folder removed at the end.
 */
export function cliSandbox(prefix: string): { readonly cli: Cli; readonly dir: string; serve(o: RunOptions): Promise<Serving> } {
  const tmp = tempDir(prefix);
  const servers: Serving[] = [];
  let cli: Cli | null = null;
  before(() => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop('SIGTERM')));
  });
  after(() => {
    for (const s of servers) s.kill();
    tmp.cleanup();
  });
  return {
    get cli(): Cli {
      if (!cli) throw new Error('cliSandbox: the CLI is bundled in a before hook; use it inside tests');
      return cli;
    },
    dir: tmp.dir,
    async serve(o: RunOptions): Promise<Serving> {
      const s = await this.cli.serve(o);
      servers.push(s);
      return s;
    },
  };
}
