/*
 * What a worktree queue costs a worker (issue 18): a worker drains N script tasks that each write one file, once on
 * a plain queue and once on a worktree queue, in the same repository of F committed files. Each figure is the
 * worker's overhead per task: (drain time − the same scripts run by a bare bash loop) / N. On the worktree queue it
 * includes making or reusing each task's worktree, committing the file on the task's branch and recording it.
 * Target: the worktree queue's overhead ≤ 2× the plain queue's.
 *
 *   node --import tsx bench/worktreeDrain.ts [--files 10000] [--tasks 30] [--runs 3]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Target } from './lib/results';
import { openQueue } from '../src/client/open';
import { bundleCli, cliEnv } from '../test/support/cli';

export const WORKTREE_OVERHEAD_TARGET = 2;

export interface WorktreeDrainResult {
  files: number;
  tasks: number;
  runs: number;
  bareMs: number[];
  plainMs: number[];
  worktreeMs: number[];
  /** Per task, ms: median drain minus median bare loop, over the tasks. */
  plainOverheadMs: number;
  worktreeOverheadMs: number;
  ratio: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
}

async function timed(command: string, args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const code = await exitOf(spawn(command, args, { cwd, env: cliEnv(), stdio: 'ignore' }));
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(code)}`);
  return performance.now() - t0;
}

export async function measureWorktreeDrain(opts: { files: number; tasks: number; runs: number; progress?: (s: string) => void }): Promise<WorktreeDrainResult> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-wtdrain-'));
  try {
    const bundle = bundleCli(path.join(tmp, 'bundle'));
    const cwd = path.join(tmp, 'repo');
    fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
    const g = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Bench', '-c', 'user.email=bench@example.com', ...args], { cwd, stdio: 'ignore' });
    g('init', '-q', '-b', 'main');
    for (let d = 0; d < Math.ceil(opts.files / 100); d++) {
      const dir = path.join(cwd, 'src', `d${d}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 100 && d * 100 + i < opts.files; i++) fs.writeFileSync(path.join(dir, `f${i}.ts`), `export const v${i} = ${d * 100 + i};\n`);
    }
    const script = path.join(cwd, 'scripts', 'touch.sh');
    fs.writeFileSync(script, '#!/usr/bin/env bash\necho "$RANDOM" > "out-$RANDOM$RANDOM.txt"\necho wrote\n');
    if ((await exitOf(spawn(process.execPath, [bundle, 'init'], { cwd, env: cliEnv(), stdio: 'ignore' }))) !== 0) throw new Error('sparkq init failed');
    g('add', '-A');
    g('commit', '-qm', 'base');
    const base = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const q = await openQueue(cwd, { role: 'bench', watchConfig: false });
    try {
      await q.createSession({ name: 'bench' });
    } finally {
      await q.close();
    }
    let n = 0;
    const drain = async (worktree: boolean): Promise<number> => {
      const name = `${worktree ? 'wt' : 'plain'}-${++n}`;
      const qq = await openQueue(cwd, { role: 'bench', watchConfig: false });
      try {
        await qq.createQueue({ name, session: 'bench', ...(worktree ? { isolation: { kind: 'worktree' as const, baseRef: 'main', baseCommit: base, follow: false } } : {}) });
        for (let i = 0; i < opts.tasks; i++) await qq.enqueue({ queue: name, tool: 'run-bash', prompt: 'touch.sh' });
      } finally {
        await qq.close();
      }
      return timed(process.execPath, [bundle, 'run', '--queue', name], cwd);
    };
    // The bare loop runs in a scratch folder, so that it leaves the repository as it was.
    const scratch = path.join(tmp, 'scratch');
    fs.mkdirSync(scratch);
    const bare = () => timed('bash', ['-c', `for i in $(seq ${opts.tasks}); do bash "$1" >/dev/null; done`, 'bare', script], scratch);
    await drain(false);
    await drain(true);
    const bareMs: number[] = [];
    const plainMs: number[] = [];
    const worktreeMs: number[] = [];
    for (let r = 0; r < opts.runs; r++) {
      bareMs.push(await bare());
      plainMs.push(await drain(false));
      worktreeMs.push(await drain(true));
      opts.progress?.(`worktree drain ${r + 1}/${opts.runs}: bare ${bareMs.at(-1)!.toFixed(0)} ms, plain ${plainMs.at(-1)!.toFixed(0)} ms, worktree ${worktreeMs.at(-1)!.toFixed(0)} ms, load ${os.loadavg()[0]!.toFixed(2)}`);
    }
    const b = median(bareMs);
    const plainOverheadMs = (median(plainMs) - b) / opts.tasks;
    const worktreeOverheadMs = (median(worktreeMs) - b) / opts.tasks;
    return { files: opts.files, tasks: opts.tasks, runs: opts.runs, bareMs, plainMs, worktreeMs, plainOverheadMs, worktreeOverheadMs, ratio: worktreeOverheadMs / plainOverheadMs };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function worktreeDrainTargets(r: WorktreeDrainResult): Target[] {
  return [
    {
      name: `worker overhead per task, worktree queue vs plain queue (${r.tasks} script tasks, ${r.files} files)`,
      measured: `${r.worktreeOverheadMs.toFixed(1)} vs ${r.plainOverheadMs.toFixed(1)} ms = ${r.ratio.toFixed(2)}× (median of ${r.runs})`,
      target: `≤ ${WORKTREE_OVERHEAD_TARGET}×`,
      result: r.ratio <= WORKTREE_OVERHEAD_TARGET ? 'PASS' : 'FAIL',
    },
  ];
}

/** For `npm run bench`: the figure and its target line, or INCOMPLETE with the reason. */
export async function worktreeDrainPhase(quick: boolean, progress: (line: string) => void): Promise<{ text: string; targets: Target[] }> {
  try {
    const r = await measureWorktreeDrain({ files: 10_000, tasks: quick ? 20 : 30, runs: quick ? 2 : 3, progress });
    const t = worktreeDrainTargets(r);
    return { text: t.map((x) => `${x.result}  ${x.name}: ${x.measured} (target ${x.target})\n`).join(''), targets: t };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    return { text: `worktree drain: not measured (${error})\n`, targets: [{ name: 'worker overhead per task, worktree queue vs plain queue', measured: 'not measured', target: `≤ ${WORKTREE_OVERHEAD_TARGET}×`, result: 'INCOMPLETE', note: error }] };
  }
}

if (require.main === module) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  measureWorktreeDrain({ files: arg('--files', 10_000), tasks: arg('--tasks', 30), runs: arg('--runs', 3), progress: (s) => process.stderr.write(s + '\n') }).then(
    (r) => {
      for (const t of worktreeDrainTargets(r)) process.stdout.write(`${t.result}  ${t.name}: ${t.measured} (target ${t.target})\n`);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
