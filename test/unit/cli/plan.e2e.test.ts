import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleCli, Cli, cliEnv } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * Issue 7's acceptance run, end to end with real processes: a 30-task plan over 3 queues, applied with `sparkq plan
 * apply`, worked by 6 parallel `sparkq run` workers on a real script tool, with injected failures that block their
 * dependents; then `sparkq requeue --failed --plan` and a second round of workers finish it. Every task must run
 * exactly once successfully, and never before the tasks it waits on.
 */

interface TaskJson {
  id: string;
  startedAt: string | null;
  finishedAt: string | null;
  status: string;
  planKey: string | null;
  queue: string;
  worker: string | null;
  after: string[];
  blockedBy: string[];
}

const QUEUES = ['build', 'test', 'docs'];
const TASKS = 30;
// One in each chain (the chains are independent), so each failure is reached and blocks the rest of its chain.
const FAIL = ['t04', 't11', 't15'];

/**
 * t00…t29: each waits on the task three before it and, every fifth, on the one six before (three chains, t_i in chain
 * i mod 3). Consecutive pairs share a queue, so every queue holds tasks of every chain and often two runnable at once.
 */
function planYaml(): { yaml: string; deps: Map<string, string[]> } {
  const deps = new Map<string, string[]>();
  const lines = ['id: release-1', 'description: thirty steps over three queues', 'defaults: { tool: run-bash }', 'tasks:'];
  for (let i = 0; i < TASKS; i++) {
    const key = `t${String(i).padStart(2, '0')}`;
    const after: string[] = [];
    if (i >= 3) after.push(`t${String(i - 3).padStart(2, '0')}`);
    if (i >= 6 && i % 5 === 0) after.push(`t${String(i - 6).padStart(2, '0')}`);
    deps.set(key, after);
    lines.push(`  - name: ${key}`, `    queue: ${QUEUES[Math.floor(i / 2) % 3]!}`, `    prompt: step.sh ${[key, ...after].join(' ')}`);
    if (after.length > 0) lines.push(`    after: [${after.join(', ')}]`);
  }
  return { yaml: lines.join('\n') + '\n', deps };
}

describe('a plan of 30 tasks over 3 queues, parallel workers, injected failures, requeue --failed (real processes)', function () {
  this.timeout(180_000);
  const tmp = tempDir('sparkq-plan-e2e-');
  let cli: Cli;
  before(() => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
  });
  after(() => tmp.cleanup());

  /** Runs two draining workers per queue at once; resolves with their exit codes and output once all have stopped. */
  async function workers(cwd: string, round: number): Promise<{ code: number | null; out: string; err: string }[]> {
    const runs = QUEUES.flatMap((queue) =>
      [1, 2].map(
        (n) =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = spawn(process.execPath, [cli.bundle, 'run', '--queue', queue, '--worker', `${queue}-${n}-r${round}`, '--poll', '1'], {
              cwd,
              env: cliEnv(),
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let out = '';
            let err = '';
            child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
            child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
            const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
            child.on('close', (code) => {
              clearTimeout(timer);
              resolve({ code, out, err });
            });
          }),
      ),
    );
    return Promise.all(runs);
  }

  it('runs every task exactly once, in dependency order, after recovering the failures', async () => {
    const cwd = path.join(tmp.dir, 'ws');
    fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
    fs.mkdirSync(path.join(cwd, 'fail'));
    // The step records itself in a ledger; it refuses to run before what it waits on, and fails while a marker exists.
    fs.writeFileSync(
      path.join(cwd, 'scripts', 'step.sh'),
      [
        '#!/usr/bin/env bash',
        '# name: step',
        'name="$1"; shift',
        'for dep in "$@"; do grep -qx "$dep" ledger.txt 2>/dev/null || { echo "$name ran before $dep" >&2; exit 3; }; done',
        'sleep 0.3',
        'if [ -e "fail/$name" ]; then echo "injected failure in $name" >&2; exit 1; fi',
        'echo "$name" >> ledger.txt',
        'echo "step $name done"',
        '',
      ].join('\n'),
    );
    for (const f of FAIL) fs.writeFileSync(path.join(cwd, 'fail', f), '');
    const o = { cwd };
    await cli.ok(['init'], o);
    await cli.ok(['session', 'create', 'release'], o);
    for (const q of QUEUES) await cli.ok(['queue', 'create', q, '--session', 'release', '--max-workers', '2'], o);
    const { yaml, deps } = planYaml();
    fs.writeFileSync(path.join(cwd, 'plan.yml'), yaml);

    const dry = await cli.json<{ levels: string[][]; widths: number[]; parallelShare: number; criticalPath: string[] }>(['plan', 'apply', 'plan.yml', '--dry-run'], o);
    assert.equal(dry.levels.flat().length, TASKS);
    assert.equal(dry.levels.length, 10, 'each level holds one task per queue');
    assert.ok(dry.widths.every((w) => w === 3));
    assert.equal(dry.parallelShare, 1);
    assert.equal(dry.criticalPath.length, 10);
    const listed = await cli.json<TaskJson[]>(['tasks', '--limit', '100'], o);
    assert.equal(listed.length, 0, 'a dry run enqueues nothing');

    const applied = await cli.json<{ created: { key: string; id: string }[] }>(['plan', 'apply', 'plan.yml'], o);
    assert.equal(applied.created.length, TASKS);
    const again = await cli.json<{ created: unknown[]; existing: unknown[] }>(['plan', 'apply', 'plan.yml'], o);
    assert.equal(again.created.length, 0, 'applying twice does not enqueue twice');
    assert.equal(again.existing.length, TASKS);

    // The owner lives for the whole run (it sweeps and serves); the workers are its clients.
    const serving = await cli.serve(o);
    try {
      const round1 = await workers(cwd, 1);
      for (const w of round1) assert.equal(w.code, 0, `a worker failed: ${w.err}\n${w.out}`);
      assert.ok(round1.some((w) => /blocked by failed tasks/.test(w.out)), 'the workers say why they stop');
      let tasks = await cli.json<TaskJson[]>(['tasks', '--plan', 'release-1', '--limit', '1000'], o);
      const failed = tasks.filter((t) => t.status === 'failed').map((t) => t.planKey).sort();
      assert.deepEqual(failed, FAIL, 'exactly the injected failures failed');
      const t07 = tasks.find((t) => t.planKey === 't07')!;
      assert.deepEqual(t07.blockedBy, [applied.created.find((c) => c.key === 't04')!.id], 'a waiter shows what blocks it');
      const blocked = await cli.run(['tasks', '--plan', 'release-1', '--status', 'queued'], o);
      assert.match(blocked.stdout, /queued \(blocked\)/);
      // The workers ran in parallel: several workers per queue did work.
      const workersSeen = new Set(tasks.filter((t) => t.status === 'succeeded').map((t) => t.worker));
      assert.ok(workersSeen.size >= 4, `work spread over the workers: ${[...workersSeen].join(', ')}`);

      for (const f of FAIL) fs.rmSync(path.join(cwd, 'fail', f));
      const requeued = await cli.json<TaskJson[]>(['requeue', '--failed', '--plan', 'release-1'], o);
      assert.deepEqual(requeued.map((t) => t.planKey).sort(), FAIL);
      assert.deepEqual(await cli.json<TaskJson[]>(['requeue', '--failed', '--plan', 'release-1'], o), [], 'requeued once');

      const round2 = await workers(cwd, 2);
      for (const w of round2) assert.equal(w.code, 0, `a worker failed: ${w.err}\n${w.out}`);

      tasks = await cli.json<TaskJson[]>(['tasks', '--plan', 'release-1', '--limit', '1000'], o);
      const succeeded = tasks.filter((t) => t.status === 'succeeded').map((t) => t.planKey!);
      assert.equal(succeeded.length, TASKS, 'every task succeeded');
      assert.deepEqual([...new Set(succeeded)].sort(), [...deps.keys()].sort(), 'each plan task exactly once');
      assert.equal(tasks.filter((t) => t.status === 'queued' || t.status === 'running').length, 0);
      // Two workers of one queue ran tasks at the same time.
      const ran = tasks.filter((t) => t.status === 'succeeded');
      const overlap = ran.some((a) => ran.some((b) => a !== b && a.queue === b.queue && a.worker !== b.worker && a.startedAt! < b.finishedAt! && b.startedAt! < a.finishedAt!));
      assert.ok(overlap, 'some queue had two tasks running at once');
      // The ledger: each step ran to success exactly once, and after everything it waits on.
      const ledger = fs.readFileSync(path.join(cwd, 'ledger.txt'), 'utf8').trim().split('\n');
      assert.equal(ledger.length, TASKS);
      assert.deepEqual([...ledger].sort(), [...deps.keys()].sort());
      for (const [key, after] of deps) for (const d of after) assert.ok(ledger.indexOf(d) < ledger.indexOf(key), `${key} ran before ${d}`);
    } finally {
      serving.child.kill('SIGTERM');
      await serving.exited;
    }
  });
});
