/*
 * What one CLI call costs an agent (issue 14 §4): an orchestrator or a chat worker pays it on every step.
 *
 *   node --import tsx bench/cli.ts [--runs 15] [--rounds 3] [--serial-rounds 1] [--agents 8] [--per-agent 10]
 *                                  [--bundle path/to/cli.js]
 *
 * The real CLI, bundled the way `npm run build --production` ships it (test/support/cli.ts bundleCli), runs as child
 * processes timed from spawn to exit. Single calls alternate, one of each per round, so that they share the machine's
 * moments: `node -e 0` (the floor), `sparkq --version`, `sparkq --help`, `sparkq peek` against a live `sparkq serve`
 * owner, and `sparkq enqueue` with no owner (it becomes the owner for its own duration). Then 8 agents enqueue 10 tasks
 * each at once, against a live owner and with none (every command finds, reaches or becomes the owner itself),
 * alternating per round. Each workspace's sockets live in a private XDG_RUNTIME_DIR, so no one else's cleanup of
 * <tmpdir>/sparkq-<uid> can take the live owner away mid-run; the run checks that it did not lose ownership and that
 * every enqueue landed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Target } from './lib/results';
import { bundleCli, cliEnv } from '../test/support/cli';

/** `--version` and `--help` may cost at most this multiple of a bare `node -e 0`. */
export const CLI_HELP_TARGET_RATIO = 1.2;
/** A client command (`peek`) with a live owner may cost at most this multiple of a bare `node -e 0`. */
export const CLI_CLIENT_TARGET_RATIO = 1.5;
/** 8 agents × 10 enqueues with no owner may take at most this multiple of the same with a live owner. */
export const CLI_PARALLEL_TARGET_RATIO = 1.0;

export interface CliCostOptions {
  /** Timed runs of each single call (default 15). */
  runs: number;
  /** Rounds of the parallel-agents test, live owner and no owner alternating (default 3). */
  rounds?: number;
  /** Runs of one agent making all the enqueues in a row with no owner (default 1; 0 to skip). */
  serialRounds?: number;
  agents?: number;
  perAgent?: number;
  /** A prebuilt cli.js to measure instead of bundling the sources (e.g. an older build, for before/after). */
  bundle?: string;
  progress?: (line: string) => void;
}

export interface CliCallCost {
  label: string;
  /** Spawn-to-exit wall times, ms, in run order. */
  ms: number[];
  median: number;
  /** median / median(node -e 0). */
  ratio: number;
  /** The target ratio, when this call has one. */
  target: number | null;
}

export interface CliParallelCost {
  agents: number;
  perAgent: number;
  /** Wall time for all agents' enqueues, ms, one per round. */
  liveOwnerMs: number[];
  noOwnerMs: number[];
  /** median(noOwnerMs) / median(liveOwnerMs): the target's reading (no owner no slower than with one). */
  ratio: number;
  target: number;
  /** How many processes owned the no-owner workspace in each round (each command, before commands lingered). */
  noOwnerOwners: number[];
  /** The other reading, for information: one agent making all agents × perAgent enqueues in a row, no owner, ms. */
  serialNoOwnerMs: number[];
  /** median(noOwnerMs) / median(serialNoOwnerMs). */
  parallelVsSerial: number;
}

export interface CliCostResult {
  runs: number;
  node: string;
  bundleBytes: number;
  calls: CliCallCost[];
  parallel: CliParallelCost;
  loadAvgStart: number[];
  loadAvgEnd: number[];
  loadAvgMax: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Ran {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stdout, stderr }));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.on('close', (code) => resolve(code));
  });
}

class Workspace {
  private serve: ChildProcess | null = null;
  generation = -1;

  constructor(
    readonly bundle: string,
    readonly dir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  async sparkq(args: string[]): Promise<Ran> {
    const r = await run(process.execPath, [this.bundle, ...args], this.dir, this.env);
    if (r.code !== 0) throw new Error(`sparkq ${args.join(' ')} exited ${String(r.code)} in ${this.dir}: ${r.stderr.trim()}`);
    return r;
  }

  async init(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    await this.sparkq(['init', '--project', 'bench']);
    await this.sparkq(['session', 'create', 'bench']);
    await this.sparkq(['queue', 'create', 'Q', '--session', 'bench']);
    await this.sparkq(['enqueue', 'run-bash', '--queue', 'Q', '--prompt', 'the task peek shows']);
  }

  async status(): Promise<{ owner: { generation: number; isThisCommand?: boolean } | null; counts: { queued: number } }> {
    // (Without a live owner, status owns the queue itself for a moment: its generation is the latest.)
    return JSON.parse((await this.sparkq(['status', '--json'])).stdout) as { owner: { generation: number; isThisCommand?: boolean } | null; counts: { queued: number } };
  }

  async startServe(): Promise<void> {
    const child = spawn(process.execPath, [this.bundle, 'serve', '--json'], { cwd: this.dir, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.serve = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        try {
          this.generation = (JSON.parse(out) as { generation: number }).generation;
          resolve();
        } catch {
          // not all of it yet
        }
      });
      child.on('error', reject);
      child.on('close', (code) => reject(new Error(`sparkq serve exited ${String(code)} before serving: ${out}`)));
    });
  }

  /** Throws when the live owner is no longer the one started: then the client figures were not client figures. */
  async checkServe(): Promise<void> {
    const s = await this.status();
    if (!this.serve || this.serve.exitCode !== null || s.owner?.generation !== this.generation || s.owner.isThisCommand) {
      throw new Error(`the live owner of ${this.dir} (generation ${this.generation}) lost ownership during the run; now ${JSON.stringify(s.owner)}`);
    }
  }

  async stopServe(): Promise<void> {
    const child = this.serve;
    this.serve = null;
    if (!child || child.exitCode !== null) return;
    const gone = exitOf(child);
    child.kill('SIGTERM');
    await gone;
  }
}

/** Builds (or takes) the CLI, makes the workspaces, and times single calls and the parallel agents. */
export async function measureCliCost(opts: CliCostOptions): Promise<CliCostResult> {
  const rounds = opts.rounds ?? 3;
  const serialRounds = opts.serialRounds ?? 1;
  const agents = opts.agents ?? 8;
  const perAgent = opts.perAgent ?? 10;
  const progress = opts.progress ?? (() => undefined);
  const loadAvgStart = os.loadavg();
  let loadAvgMax = loadAvgStart[0] ?? 0;
  const loadTimer = setInterval(() => (loadAvgMax = Math.max(loadAvgMax, os.loadavg()[0] ?? 0)), 2_000);
  loadTimer.unref();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-clicost-'));
  const spaces: Workspace[] = [];
  try {
    const bundle = opts.bundle ? path.resolve(opts.bundle) : bundleCli(path.join(tmp, 'bundle'), { production: true });
    // Sockets in a runtime dir of our own (see the top of this file).
    const runtime = path.join(tmp, 'run');
    fs.mkdirSync(runtime, { mode: 0o700 });
    const env = cliEnv({ XDG_RUNTIME_DIR: runtime });
    const space = (name: string) => {
      const w = new Workspace(bundle, path.join(tmp, name), env);
      spaces.push(w);
      return w;
    };
    const live = space('live');
    const none = space('none');
    const liveAgents = space('live-agents');
    const noneAgents = space('none-agents');
    for (const w of spaces) await w.init();
    await live.startServe();

    const node = process.execPath;
    const singles: { label: string; target: number | null; once: () => Promise<Ran> }[] = [
      { label: 'node -e 0', target: null, once: () => run(node, ['-e', '0'], tmp, env) },
      { label: 'sparkq --version', target: CLI_HELP_TARGET_RATIO, once: () => live.sparkq(['--version']) },
      { label: 'sparkq --help', target: CLI_HELP_TARGET_RATIO, once: () => live.sparkq(['--help']) },
      { label: 'sparkq peek (live owner)', target: CLI_CLIENT_TARGET_RATIO, once: () => live.sparkq(['peek', '--queue', 'Q']) },
      { label: 'sparkq enqueue (no owner)', target: null, once: () => none.sparkq(['enqueue', 'run-bash', '--queue', 'Q', '--prompt', 'one more']) },
    ];
    const times = singles.map(() => [] as number[]);
    // One untimed round: the page cache and the CPU governor then start the same for every timed one.
    for (const s of singles) await s.once();
    progress(`single calls: ${opts.runs} rounds of ${singles.length}`);
    for (let i = 0; i < opts.runs; i++) {
      for (const [k, s] of singles.entries()) times[k]!.push((await s.once()).ms);
    }
    await live.checkServe();
    const floor = median(times[0]!);
    const calls: CliCallCost[] = singles.map((s, k) => ({ label: s.label, ms: times[k]!, median: median(times[k]!), ratio: median(times[k]!) / floor, target: s.target }));
    for (const c of calls) progress(`  ${c.label}: median ${c.median.toFixed(0)} ms (${c.ratio.toFixed(2)}×)`);

    // The agents: each enqueues its tasks one after another, all agents at once.
    await liveAgents.startServe();
    const agentsOnce = async (w: Workspace, tag: string, n: number, each: number): Promise<{ ms: number; owners: number }> => {
      const before = await w.status();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: n }, async (_, a) => {
          for (let j = 0; j < each; j++) await w.sparkq(['enqueue', 'run-bash', '--queue', 'Q', '--prompt', `${tag}: agent ${a}, task ${j}`]);
        }),
      );
      const ms = performance.now() - t0;
      const after = await w.status();
      if (after.counts.queued - before.counts.queued !== n * each) throw new Error(`${n * each} enqueues acknowledged but the queue grew by ${after.counts.queued - before.counts.queued}`);
      // Generations between the two status commands (each owned the queue itself when there was no live owner).
      return { ms, owners: (after.owner?.generation ?? 0) - (before.owner?.generation ?? 0) - 1 };
    };
    const liveOwnerMs: number[] = [];
    const noOwnerMs: number[] = [];
    const noOwnerOwners: number[] = [];
    const serialNoOwnerMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      liveOwnerMs.push((await agentsOnce(liveAgents, `live ${r}`, agents, perAgent)).ms);
      const none = await agentsOnce(noneAgents, `none ${r}`, agents, perAgent);
      noOwnerMs.push(none.ms);
      noOwnerOwners.push(none.owners);
      progress(
        `  ${agents} agents × ${perAgent} enqueues, round ${r + 1}/${rounds}: live owner ${liveOwnerMs[r]!.toFixed(0)} ms, ` +
          `no owner ${noOwnerMs[r]!.toFixed(0)} ms (${none.owners} owners); load ${os.loadavg()[0]!.toFixed(2)}`,
      );
    }
    await liveAgents.checkServe();
    for (let r = 0; r < serialRounds; r++) {
      serialNoOwnerMs.push((await agentsOnce(noneAgents, `serial ${r}`, 1, agents * perAgent)).ms);
      progress(`  1 agent × ${agents * perAgent} enqueues, no owner: ${serialNoOwnerMs[r]!.toFixed(0)} ms; load ${os.loadavg()[0]!.toFixed(2)}`);
    }

    return {
      runs: opts.runs,
      node: process.version,
      bundleBytes: fs.statSync(bundle).size,
      calls,
      parallel: {
        agents,
        perAgent,
        liveOwnerMs,
        noOwnerMs,
        ratio: median(noOwnerMs) / median(liveOwnerMs),
        target: CLI_PARALLEL_TARGET_RATIO,
        noOwnerOwners,
        serialNoOwnerMs,
        parallelVsSerial: median(noOwnerMs) / median(serialNoOwnerMs),
      },
      loadAvgStart,
      loadAvgEnd: os.loadavg(),
      loadAvgMax,
    };
  } finally {
    clearInterval(loadTimer);
    for (const w of spaces) await w.stopServe();
    if (!process.env['SPARKQ_KEEP_TMP']) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The target lines for `npm run bench` (bench/lib/report.ts's Target): --version, --help, peek, the agents. */
export function cliCostTargets(r: CliCostResult): Target[] {
  const la = `load ${r.loadAvgStart[0]!.toFixed(2)}→${r.loadAvgEnd[0]!.toFixed(2)}`;
  const calls: Target[] = r.calls
    .filter((c) => c.target !== null)
    .map((c) => ({
      name: `${c.label} vs node -e 0`,
      measured: `${c.median.toFixed(0)} vs ${r.calls[0]!.median.toFixed(0)} ms = ${c.ratio.toFixed(2)}× (median of ${c.ms.length}, ${la})`,
      target: `≤ ${c.target}×`,
      result: c.ratio <= c.target! ? 'PASS' : 'FAIL',
    }));
  const p = r.parallel;
  return [
    ...calls,
    {
      name: `${p.agents} agents × ${p.perAgent} enqueues at once, no owner vs a live sparkq serve`,
      measured: `${median(p.noOwnerMs).toFixed(0)} vs ${median(p.liveOwnerMs).toFixed(0)} ms = ${p.ratio.toFixed(2)}× (median of ${p.noOwnerMs.length}, ${la})`,
      target: `≤ ${p.target}×`,
      result: p.ratio <= p.target ? 'PASS' : 'FAIL',
    },
  ];
}

const verdict = (ratio: number, target: number) => `target ≤ ${target}×: ${ratio <= target ? 'met' : 'NOT met'}`;

/** The lines `npm run bench` and the standalone run print. */
export function renderCliCost(r: CliCostResult): string {
  const la = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
  const p = r.parallel;
  const out = [
    `what one CLI call costs (median of ${r.runs} alternating runs, spawn to exit, ${r.node}; cli.js ${(r.bundleBytes / 1024).toFixed(0)} KiB)`,
    ...r.calls.map(
      (c) => `  ${c.label.padEnd(28)} ${c.median.toFixed(0).padStart(5)} ms  ${c.ratio.toFixed(2)}× node -e 0` + (c.target !== null ? `  (${verdict(c.ratio, c.target)})` : ''),
    ),
    `  ${p.agents} agents × ${p.perAgent} enqueues at once: live owner ${median(p.liveOwnerMs).toFixed(0)} ms, no owner ${median(p.noOwnerMs).toFixed(0)} ms ` +
      `→ ${p.ratio.toFixed(2)}× (${verdict(p.ratio, p.target)}); owners per no-owner round: ${p.noOwnerOwners.join(', ')}`,
    `  per round, live: ${p.liveOwnerMs.map((x) => x.toFixed(0)).join(', ')} ms; no owner: ${p.noOwnerMs.map((x) => x.toFixed(0)).join(', ')} ms`,
    ...(p.serialNoOwnerMs.length > 0
      ? [
          `  for comparison, 1 agent × ${p.agents * p.perAgent} enqueues in a row, no owner: ${median(p.serialNoOwnerMs).toFixed(0)} ms ` +
            `(the ${p.agents} agents at once took ${p.parallelVsSerial.toFixed(2)}× that)`,
        ]
      : []),
    `  load average: start ${la(r.loadAvgStart)}, end ${la(r.loadAvgEnd)}, max 1-min ${r.loadAvgMax.toFixed(2)}`,
  ];
  return out.join('\n') + '\n';
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const arg = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (flag: string, dflt: number) => Number(arg(flag) ?? dflt);
  const bundle = arg('--bundle') ?? process.env['SPARKQ_BENCH_CLI'];
  measureCliCost({
    runs: num('--runs', 15),
    rounds: num('--rounds', 3),
    serialRounds: num('--serial-rounds', 1),
    agents: num('--agents', 8),
    perAgent: num('--per-agent', 10),
    ...(bundle ? { bundle } : {}),
    progress: (l) => process.stderr.write(l + '\n'),
  })
    .then((r) => process.stdout.write(renderCliCost(r)))
    .catch((e: unknown) => {
      process.stderr.write(`cli bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
}
