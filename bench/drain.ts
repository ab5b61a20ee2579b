/*
 * A worker draining N trivial script tasks against the same script run N times by a bare bash loop (issue 14 §4).
 *
 *   node --import tsx bench/drain.ts [--tasks 300] [--runs 5] [--no-serve] [--bundle path/to/cli.js]
 *
 * The real CLI bundle (built the way `npm run build` ships it) runs `sparkq run --queue Q` (drain mode) as a child
 * process, timed from spawn to exit, so the figure includes the worker's start-up, its store or IPC connection and
 * its goodbye; the same worker on an empty queue, timed in every round too, tells that start-up and goodbye apart
 * from what each task costs once it runs. Two cases: nobody owns the queue (the worker becomes the owner, as in a
 * plain terminal) and a `sparkq serve` owns it (the usual VS Code case: the extension owns, the worker is a client
 * over IPC). Bare and drain runs alternate; the ratio is median(drain) / median(bare). Both send the script's output to /dev/null (the
 * worker also captures it into the database and `.sparkq/runs/<task>/output.log`, which is part of what it costs).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Target } from './lib/results';
import { openQueue } from '../src/client/open';
import { bundleCli, cliEnv } from '../test/support/cli';

/** What a drain may cost at most, as a multiple of the bare loop. */
export const DRAIN_TARGET_RATIO = 1.3;

export interface DrainCase {
  /** Spawn-to-exit of `sparkq run --queue Q`, ms, one per run. */
  drainMs: number[];
  /** The bare loop runs that alternated with these drains, ms. */
  bareMs: number[];
  /** median(drainMs) / median(bareMs). */
  ratio: number;
  /** (median drain − median bare) / tasks: what the worker adds per task, ms (start-up spread over the tasks). */
  overheadPerTaskMs: number;
  /** Spawn-to-exit of `sparkq run` on an empty queue, ms, one per run: the worker's start-up and goodbye. */
  startMs: number[];
  /** (median drain − median start-up) / tasks: a task's time once the worker runs, ms, against bareTaskMs. */
  taskMs: number;
  /** median bare / tasks, ms. */
  bareTaskMs: number;
}

export interface DrainResult {
  tasks: number;
  runs: number;
  /** Every bare loop timed (both cases), ms. */
  bareMs: number[];
  /** The headline case: no owner running, the worker becomes the owner. */
  drainMs: number[];
  ratio: number;
  target: number;
  noOwner: DrainCase;
  /** With a `sparkq serve` owning the queue (the worker is an IPC client); absent when skipped. */
  withServe?: DrainCase;
  loadAvgStart: number[];
  loadAvgEnd: number[];
}

export interface DrainOptions {
  tasks: number;
  runs: number;
  /** Also measure with a `sparkq serve` owner (default true). */
  serve?: boolean;
  /** A prebuilt cli.js to measure instead of bundling the sources (e.g. an older build, for before/after). */
  bundle?: string;
  progress?: (line: string) => void;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
}

/** `for i in $(seq N); do bash script >/dev/null; done`, timed from spawn to exit. */
async function bareLoop(cwd: string, script: string, n: number): Promise<number> {
  const t0 = performance.now();
  const child = spawn('bash', ['-c', `for i in $(seq ${n}); do bash "$1" >/dev/null; done`, 'bare', script], { cwd, stdio: 'ignore' });
  const r = await exitOf(child);
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`the bare loop exited ${String(r.code ?? r.signal)}`);
  return ms;
}

/** Fills a fresh queue with `n` run-bash tasks naming the script (through the owner, or as one for a moment). */
async function fillQueue(cwd: string, queue: string, n: number): Promise<void> {
  const q = await openQueue(cwd, { role: 'bench', watchConfig: false });
  try {
    await q.createQueue({ name: queue, session: 'bench' });
    for (let i = 0; i < n; i++) await q.enqueue({ queue, tool: 'run-bash', prompt: 'hello.sh' });
  } finally {
    await q.close();
  }
}

/** Times `sparkq run --queue Q` over `n` fresh tasks (0: an empty queue, the worker's start-up and goodbye alone). */
async function drainOnce(bundle: string, cwd: string, queue: string, n: number): Promise<number> {
  await fillQueue(cwd, queue, n);
  const devnull = fs.openSync('/dev/null', 'w');
  try {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bundle, 'run', '--queue', queue, '--json'], { cwd, env: cliEnv(), stdio: ['ignore', 'pipe', devnull] });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    const r = await exitOf(child);
    const ms = performance.now() - t0;
    if (r.code !== 0) throw new Error(`sparkq run exited ${String(r.code ?? r.signal)}: ${stdout}`);
    const summary = JSON.parse(stdout) as { ran: number; succeeded: number };
    if (summary.ran !== n || summary.succeeded !== n) throw new Error(`sparkq run ran ${summary.ran} task(s), ${summary.succeeded} succeeded; expected ${n}`);
    return ms;
  } finally {
    fs.closeSync(devnull);
  }
}

async function startServe(bundle: string, cwd: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bundle, 'serve', '--json'], { cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) resolve();
    });
    child.on('error', reject);
    child.on('close', (code) => reject(new Error(`sparkq serve exited ${String(code)} before serving: ${out}`)));
  });
  return child;
}

async function measureCase(bundle: string, cwd: string, script: string, o: DrainOptions, label: string, tag: string): Promise<DrainCase> {
  const bareMs: number[] = [];
  const drainMs: number[] = [];
  const startMs: number[] = [];
  // One untimed warm-up of each, so the page cache and the CPU governor are the same for every timed run.
  await bareLoop(cwd, script, Math.min(o.tasks, 30));
  await drainOnce(bundle, cwd, `${tag}-warm`, Math.min(o.tasks, 30));
  for (let i = 0; i < o.runs; i++) {
    const bare = await bareLoop(cwd, script, o.tasks);
    const drain = await drainOnce(bundle, cwd, `${tag}-${i}`, o.tasks);
    const start = await drainOnce(bundle, cwd, `${tag}-${i}-empty`, 0);
    bareMs.push(bare);
    drainMs.push(drain);
    startMs.push(start);
    o.progress?.(`${label} ${i + 1}/${o.runs}: bare ${bare.toFixed(0)} ms, drain ${drain.toFixed(0)} ms (${(drain / bare).toFixed(2)}×), empty queue ${start.toFixed(0)} ms, load ${os.loadavg()[0]!.toFixed(2)}`);
  }
  const b = median(bareMs);
  const d = median(drainMs);
  return { bareMs, drainMs, ratio: d / b, overheadPerTaskMs: (d - b) / o.tasks, startMs, taskMs: (d - median(startMs)) / o.tasks, bareTaskMs: b / o.tasks };
}

/** Builds the CLI, makes a temp workspace with a trivial bash script, and times drains against bare loops. */
export async function measureDrain(opts: DrainOptions): Promise<DrainResult> {
  const loadAvgStart = os.loadavg();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-drain-'));
  let serve: ChildProcess | null = null;
  try {
    const bundle = opts.bundle ?? bundleCli(path.join(tmp, 'bundle'));
    const cwd = path.join(tmp, 'ws');
    fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
    const script = path.join(cwd, 'scripts', 'hello.sh');
    fs.writeFileSync(script, '#!/usr/bin/env bash\necho hello\n');
    const init = spawn(process.execPath, [bundle, 'init'], { cwd, env: cliEnv(), stdio: 'ignore' });
    if ((await exitOf(init)).code !== 0) throw new Error('sparkq init failed');
    const q = await openQueue(cwd, { role: 'bench', watchConfig: false });
    try {
      await q.createSession({ name: 'bench' });
    } finally {
      await q.close();
    }

    const noOwner = await measureCase(bundle, cwd, script, opts, 'no owner', 'solo');
    let withServe: DrainCase | undefined;
    if (opts.serve !== false) {
      serve = await startServe(bundle, cwd);
      withServe = await measureCase(bundle, cwd, script, opts, 'serve owns', 'served');
    }
    return {
      tasks: opts.tasks,
      runs: opts.runs,
      bareMs: [...noOwner.bareMs, ...(withServe?.bareMs ?? [])],
      drainMs: noOwner.drainMs,
      ratio: noOwner.ratio,
      target: DRAIN_TARGET_RATIO,
      noOwner,
      ...(withServe ? { withServe } : {}),
      loadAvgStart,
      loadAvgEnd: os.loadavg(),
    };
  } finally {
    if (serve && serve.exitCode === null) {
      const gone = exitOf(serve).catch(() => undefined);
      serve.kill('SIGTERM');
      await gone;
    }
    if (!process.env['SPARKQ_KEEP_TMP']) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The target lines for `npm run bench`'s table: the no-owner drain against 1.3× (headline), and the served drain. */
export function drainTargets(r: DrainResult): Target[] {
  const one = (label: string, c: DrainCase): Target => ({
    name: `drain ${r.tasks} trivial script tasks vs bare bash loop, ${label}`,
    measured: `${median(c.drainMs).toFixed(0)} vs ${median(c.bareMs).toFixed(0)} ms = ${c.ratio.toFixed(2)}× (+${c.overheadPerTaskMs.toFixed(2)} ms/task, median of ${c.drainMs.length})`,
    target: `≤ ${DRAIN_TARGET_RATIO}×`,
    result: c.ratio <= DRAIN_TARGET_RATIO ? 'PASS' : 'FAIL',
  });
  return [one('no owner (worker owns)', r.noOwner), ...(r.withServe ? [one('sparkq serve owns', r.withServe)] : [])];
}

/** One line per case, as `npm run bench` and the standalone run print it. */
export function renderDrain(r: DrainResult): string {
  const line = (label: string, c: DrainCase) =>
    `${label}: drain ${median(c.drainMs).toFixed(0)} ms vs bare loop ${median(c.bareMs).toFixed(0)} ms → ${c.ratio.toFixed(2)}× ` +
    `(target ≤ ${DRAIN_TARGET_RATIO}×: ${c.ratio <= DRAIN_TARGET_RATIO ? 'met' : 'NOT met'}); +${c.overheadPerTaskMs.toFixed(2)} ms per task\n` +
    `    of which start-up and goodbye (an empty queue): ${median(c.startMs).toFixed(0)} ms; then ${c.taskMs.toFixed(2)} ms a task against the bare loop's ${c.bareTaskMs.toFixed(2)} ms`;
  const out = [
    `drain of ${r.tasks} trivial run-bash tasks, median of ${r.runs} alternating runs`,
    line('  no owner (the worker owns)', r.noOwner),
    ...(r.withServe ? [line('  sparkq serve owns (worker is a client)', r.withServe)] : []),
    `  drain ms (no owner): ${r.noOwner.drainMs.map((x) => x.toFixed(0)).join(', ')}; bare: ${r.noOwner.bareMs.map((x) => x.toFixed(0)).join(', ')}`,
    ...(r.withServe ? [`  drain ms (serve): ${r.withServe.drainMs.map((x) => x.toFixed(0)).join(', ')}; bare: ${r.withServe.bareMs.map((x) => x.toFixed(0)).join(', ')}`] : []),
    `  load average: start ${r.loadAvgStart.map((x) => x.toFixed(2)).join(' ')}, end ${r.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')}`,
  ];
  return out.join('\n') + '\n';
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const bundle = argv.includes('--bundle') ? path.resolve(argv[argv.indexOf('--bundle') + 1]!) : undefined;
  measureDrain({ tasks: num('--tasks', 300), runs: num('--runs', 5), serve: !argv.includes('--no-serve'), ...(bundle ? { bundle } : {}), progress: (l) => process.stderr.write(l + '\n') })
    .then((r) => process.stdout.write(renderDrain(r)))
    .catch((e: unknown) => {
      process.stderr.write(`drain bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
}
