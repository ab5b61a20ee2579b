/*
 * Worktree set-up per task on a repository of 10,000 files (issue 18): a new worktree (`git worktree add`, then the
 * copy and link of sparkq.yml's `worktree:` globs) against the reuse of the worker's previous clean worktree (a move
 * and a branch switch). Target: ≤ 150 ms reused.
 *
 *   node --import tsx bench/worktree.ts [--files 10000] [--runs 9] [--quick]
 *
 * Each run makes a task's worktree from scratch, commits a one-file change in it (untimed), then prepares the next
 * task by reusing that worktree, and removes it (untimed). Created and reused alternate, so they share the machine's
 * moments. Times are prepareWorktree's own wall time, as the worker logs it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Target } from './lib/results';
import { type WorktreeSettings, branchFor, commitWorktree, prepareWorktree, removeWorktree, worktreeDirFor } from '../src/git/worktrees';

/** The target for a reused worktree, ms. */
export const WORKTREE_REUSED_TARGET_MS = 150;

export interface WorktreeBenchResult {
  files: number;
  runs: number;
  /** Wall time of preparing a new worktree, ms, one per run. */
  createdMs: number[];
  /** Wall time of preparing a reused worktree, ms, one per run. */
  reusedMs: number[];
  /**
   * A later reuse, as a worker makes it from its second task on: the worktree was reused before (so git's index holds
   * fresh stat data for its files) and the worker knows it clean (no status first). The first reuse right after a
   * checkout pays for the files git wrote in the same clock tick as its index ("racily clean": their content is read
   * again once); a worker pays that once per worktree.
   */
  laterMs: number[];
  laterMedian: number;
  createdMedian: number;
  reusedMedian: number;
  target: number;
  /** Building and committing the repository, ms (not part of any figure). */
  buildMs: number;
  git: string;
}

export interface WorktreeBenchOptions {
  files: number;
  runs: number;
  progress?: (line: string) => void;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Bench', '-c', 'user.email=bench@localhost', ...args], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim();
}

/** A repository of `files` committed source files in 100 folders, an ignored node_modules and a .env. */
function buildRepo(top: string, files: number): void {
  fs.mkdirSync(top, { recursive: true });
  sh(top, 'init', '-q', '-b', 'main');
  const perDir = 100;
  for (let i = 0; i < files; i++) {
    const dir = path.join(top, 'src', `mod${String(Math.floor(i / perDir)).padStart(3, '0')}`);
    if (i % perDir === 0) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `file${i}.ts`), `export const value${i} = ${i};\n// ${'x'.repeat(200)}\n`);
  }
  fs.writeFileSync(path.join(top, '.gitignore'), 'node_modules/\n.env\n.sparkq/\n');
  for (let i = 0; i < 50; i++) {
    const dir = path.join(top, 'node_modules', `pkg${i}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'index.js'), `module.exports = ${i};\n`);
  }
  fs.writeFileSync(path.join(top, '.env'), 'API_KEY=bench\n');
  sh(top, 'add', '-A');
  sh(top, 'commit', '-q', '-m', 'bench: 10k files');
}

export async function measureWorktree(o: WorktreeBenchOptions): Promise<WorktreeBenchResult> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-worktree-'));
  try {
    const top = path.join(tmp, 'repo');
    const t0 = performance.now();
    o.progress?.(`worktree: building a repository of ${o.files} committed files`);
    buildRepo(top, o.files);
    const buildMs = performance.now() - t0;
    const base = sh(top, 'rev-parse', 'HEAD');
    const sparkq = path.join(top, '.sparkq');
    let setups = 0;
    const settings: WorktreeSettings = {
      copy: ['.env'],
      link: ['node_modules'],
      setup: () => {
        setups++;
        return Promise.resolve();
      },
    };
    const createdMs: number[] = [];
    const reusedMs: number[] = [];
    const laterMs: number[] = [];
    // One untimed round first, so the page cache and git's own files are warm for every timed run.
    for (let i = -1; i < o.runs; i++) {
      const first = `tsk_c${i + 1}`;
      const a = await prepareWorktree({ repoTop: top, dir: worktreeDirFor(sparkq, first), branch: branchFor('bench', first), startCommit: base, reuse: null, settings });
      if (!a.created) throw new Error('bench: a worktree meant to be new was reused');
      const file = path.join(a.dir, 'src', 'mod000', 'file0.ts');
      fs.writeFileSync(file, `export const value0 = ${i};\n`);
      const c = await commitWorktree({ dir: a.dir, branch: branchFor('bench', first), baseCommit: base, message: `task ${first}`, exclude: a.placed });
      if (!c.commit || c.filesChanged !== 1) throw new Error(`bench: the task's commit recorded ${c.filesChanged} files`);
      const second = `tsk_r${i + 1}`;
      const b = await prepareWorktree({ repoTop: top, dir: worktreeDirFor(sparkq, second), branch: branchFor('bench', second), startCommit: base, reuse: a.dir, settings });
      if (b.created) throw new Error('bench: the clean worktree was not reused');
      if (fs.readFileSync(path.join(b.dir, 'src', 'mod000', 'file0.ts'), 'utf8') !== 'export const value0 = 0;\n// ' + 'x'.repeat(200) + '\n') {
        throw new Error("bench: the reused worktree still has the previous task's change");
      }
      const bFile = path.join(b.dir, 'src', 'mod000', 'file1.ts');
      fs.writeFileSync(bFile, `export const value1 = ${i};\n`);
      await commitWorktree({ dir: b.dir, branch: branchFor('bench', second), baseCommit: base, message: `task ${second}`, exclude: b.placed });
      const third = `tsk_l${i + 1}`;
      const c2 = await prepareWorktree({ repoTop: top, dir: worktreeDirFor(sparkq, third), branch: branchFor('bench', third), startCommit: base, reuse: b.dir, reuseClean: true, mayExist: false, settings });
      if (c2.created) throw new Error('bench: the worktree was not reused a second time');
      await removeWorktree({ repoTop: top, dir: c2.dir, branch: null, deleteBranch: false, force: true });
      if (i >= 0) {
        createdMs.push(a.ms);
        reusedMs.push(b.ms);
        laterMs.push(c2.ms);
        o.progress?.(`worktree ${i + 1}/${o.runs}: created ${a.ms.toFixed(0)} ms, first reuse ${b.ms.toFixed(0)} ms, later reuse ${c2.ms.toFixed(0)} ms`);
      }
    }
    if (setups !== o.runs + 1) throw new Error(`bench: the setup ran ${setups} times for ${o.runs + 1} new worktrees`);
    return {
      files: o.files,
      runs: o.runs,
      createdMs,
      reusedMs,
      createdMedian: median(createdMs),
      reusedMedian: median(reusedMs),
      laterMs,
      laterMedian: median(laterMs),
      target: WORKTREE_REUSED_TARGET_MS,
      buildMs,
      git: execFileSync('git', ['--version'], { encoding: 'utf8' }).trim(),
    };
  } finally {
    if (!process.env['SPARKQ_KEEP_TMP']) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The target line for `npm run bench`'s table. */
export function worktreeTargets(r: WorktreeBenchResult): Target[] {
  return [
    {
      name: `worktree set-up per task, ${r.files.toLocaleString('en-US')} files, reused (created: ${r.createdMedian.toFixed(0)} ms; first reuse after a checkout: ${r.reusedMedian.toFixed(0)} ms)`,
      measured: `${r.laterMedian.toFixed(0)} ms (median of ${r.runs})`,
      target: `≤ ${r.target} ms reused`,
      result: r.laterMedian <= r.target ? 'PASS' : 'FAIL',
    },
  ];
}

export function renderWorktree(r: WorktreeBenchResult): string {
  return (
    [
      `worktree set-up per task on a repository of ${r.files.toLocaleString('en-US')} files (${r.git}), median of ${r.runs} alternating runs`,
      `  created (git worktree add + copy/link + setup): ${r.createdMedian.toFixed(0)} ms`,
      `  first reuse right after its checkout (move + status + switch): ${r.reusedMedian.toFixed(0)} ms`,
      `  later reuse, as a worker's every next task (move + switch): ${r.laterMedian.toFixed(0)} ms (target ≤ ${r.target} ms reused: ${r.laterMedian <= r.target ? 'met' : 'NOT met'})`,
      `  created ms: ${r.createdMs.map((x) => x.toFixed(0)).join(', ')}; first reuse ms: ${r.reusedMs.map((x) => x.toFixed(0)).join(', ')}; later reuse ms: ${r.laterMs.map((x) => x.toFixed(0)).join(', ')}`,
    ].join('\n') + '\n'
  );
}

/** One phase of `npm run bench`: measures (a failure is reported, not fatal) and returns the lines and the target. */
export async function worktreePhase(quick: boolean, progress: (line: string) => void): Promise<{ text: string; targets: Target[] }> {
  try {
    const r = await measureWorktree({ files: 10_000, runs: quick ? 5 : 11, progress });
    return { text: renderWorktree(r), targets: worktreeTargets(r) };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    return {
      text: `worktree set-up: not measured (${error})\n`,
      targets: [{ name: 'worktree set-up per task, 10,000 files, reused', measured: 'not measured', target: `≤ ${WORKTREE_REUSED_TARGET_MS} ms reused`, result: 'INCOMPLETE', note: error }],
    };
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const quick = argv.includes('--quick');
  measureWorktree({ files: num('--files', 10_000), runs: num('--runs', quick ? 5 : 11), progress: (l) => process.stderr.write(l + '\n') })
    .then((r) => process.stdout.write(renderWorktree(r)))
    .catch((e: unknown) => {
      process.stderr.write(`worktree bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
}
