import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openQueue } from '../../../src/client/open';
import { assertError, bundleCli, Cli, cliEnv } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * Worktree queues end to end: the bundled CLI and its workers as real processes, real git, real scripts, real kill -9.
 * No git identity is set in these repositories (CI has none): the commits of tasks use SparkQ's fallback.
 */
describe('worktree queues: a git worktree per task (real git, real workers)', function () {
  this.timeout(120_000);
  const tmp = tempDir('sparkq-wt-');
  let cli: Cli;
  let n = 0;

  before(() => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
  });
  after(() => tmp.cleanup());

  const gitIn = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd, encoding: 'utf8' });

  /** A repository with sparkq.yml, scripts and one commit, and a session `s`. */
  async function repo(yml = ''): Promise<{ cwd: string }> {
    const cwd = path.join(tmp.dir, `ws${++n}`);
    fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
    gitIn(cwd, 'init', '-q', '-b', 'main');
    const o = { cwd };
    await cli.ok(['init'], o);
    if (yml) fs.appendFileSync(path.join(cwd, 'sparkq.yml'), yml);
    // Rewrites shared.txt, then waits until the other task has started too (both run at once, or the test fails).
    fs.writeFileSync(
      path.join(cwd, 'scripts', 'rewrite.sh'),
      '#!/usr/bin/env bash\necho "$1" > shared.txt\ntouch "$SPARKQ_WORKSPACE/.sparkq/started-$1"\nfor i in $(seq 100); do [ "$(ls "$SPARKQ_WORKSPACE"/.sparkq/started-* | wc -l)" -ge 2 ] && break; sleep 0.1; done\necho "wrote $1 in $(basename "$PWD")"\n',
    );
    fs.writeFileSync(path.join(cwd, 'shared.txt'), 'base\n');
    fs.writeFileSync(path.join(cwd, '.gitignore'), '.env\nnode_modules/\n');
    gitIn(cwd, 'add', '-A');
    gitIn(cwd, 'commit', '-qm', 'base');
    await cli.ok(['session', 'create', 's'], o);
    return o;
  }

  const head = (cwd: string, ref = 'main') => gitIn(cwd, 'rev-parse', ref).trim();
  const status = (cwd: string) => gitIn(cwd, 'status', '--porcelain');

  interface TaskJson {
    id: string;
    status: string;
    error: string | null;
    result: { summary: string } | null;
    change: { worktree: string; branch: string; baseRef: string; baseCommit: string; commit: string | null; files: { path: string; status: string }[]; filesChanged: number } | null;
  }

  it('two workers rewrite one file at once: two branches, two commits, the base untouched; merging both reports the second as a conflict and leaves the base clean', async () => {
    const o = await repo();
    const base = head(o.cwd);
    const created = await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree', '--max-workers', '2'], o);
    assert.match(created, /worktree under \.sparkq\/worktrees\/ on its own branch from [0-9a-f]{12} \(main\)/);
    const queue = await cli.json<{ isolation: unknown }>(['queue', 'list'], o).then((qs) => (qs as unknown as { name: string; isolation: unknown }[]).find((q) => q.name === 'wt')!);
    assert.deepEqual(queue.isolation, { kind: 'worktree', baseRef: 'main', baseCommit: base, follow: false });
    const one = (await cli.ok(['enqueue', 'run-bash', '--queue', 'wt', '--prompt', 'rewrite.sh one'], o)).trim();
    const two = (await cli.ok(['enqueue', 'run-bash', '--queue', 'wt', '--prompt', 'rewrite.sh two'], o)).trim();
    const runs = await Promise.all(['w1', 'w2'].map((w) => cli.run(['run', '--queue', 'wt', '--once', '--worker', w], o)));
    for (const r of runs) assert.equal(r.code, 0, r.stdout + r.stderr);

    const tasks = await Promise.all([one, two].map((id) => cli.json<TaskJson>(['task', id], o)));
    for (const [t, word] of [[tasks[0]!, 'one'], [tasks[1]!, 'two']] as const) {
      assert.equal(t.status, 'succeeded', t.error ?? '');
      assert.match(t.result!.summary, new RegExp(`^wrote ${word} in ${t.id.slice(4)}$`), 'each ran in a worktree of its own');
      const c = t.change!;
      assert.equal(c.branch, `sparkq/wt/${t.id}`);
      assert.equal(c.baseCommit, base);
      assert.deepEqual(c.files, [{ path: 'shared.txt', status: 'M' }]);
      assert.equal(gitIn(o.cwd, 'show', `${c.commit!}:shared.txt`), `${word}\n`, 'the commit holds what the task wrote');
      assert.equal(head(o.cwd, c.branch), c.commit);
      assert.equal(gitIn(o.cwd, 'log', '-1', '--format=%s', c.commit!).trim(), t.result!.summary, 'the summary is the commit message');
    }
    assert.equal(head(o.cwd), base, 'the base is untouched until a merge');
    assert.equal(fs.readFileSync(path.join(o.cwd, 'shared.txt'), 'utf8'), 'base\n');

    const listed = await cli.json<{ task: string; state: string }[]>(['worktree', 'list'], o);
    assert.deepEqual(listed.map((e) => e.state).sort(), ['unmerged', 'unmerged']);

    assert.match(await cli.ok(['merge', one], o), new RegExp(`Merged sparkq/wt/${one} into main`));
    assert.equal(fs.readFileSync(path.join(o.cwd, 'shared.txt'), 'utf8'), 'one\n');
    const merged = head(o.cwd);
    const conflict = await cli.run(['merge', two], o);
    assertError(conflict, 1, new RegExp(`merging sparkq/wt/${two} into main conflicts in shared\\.txt; nothing was merged`));
    assert.equal(head(o.cwd), merged, 'the base did not move');
    assert.equal(status(o.cwd), '', 'the base worktree is clean: no half-merge');
    assert.ok(!fs.existsSync(path.join(o.cwd, '.git', 'MERGE_HEAD')));

    // Prune removes the merged task's branch; the unmerged one stays unless asked, and asking needs --yes.
    const pruned = await cli.json<{ removed: { task: string }[]; kept: { task: string; state: string }[] }>(['worktree', 'prune'], o);
    assert.deepEqual(pruned.removed.map((e) => e.task), [one]);
    assert.deepEqual(pruned.kept.map((e) => [e.task, e.state]), [[two, 'unmerged']]);
    assertError(await cli.run(['worktree', 'prune', '--unmerged'], o), 1, new RegExp(`never merged \\(sparkq/wt/${two}\\).*add --yes`));
    assert.equal(gitIn(o.cwd, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/sparkq/').trim(), `sparkq/wt/${two}`);
  });

  it('copies and links ignored files into each new worktree, runs the setup once, reuses the worktree for the next task, and never commits what it placed', async () => {
    const o = await repo('worktree:\n  copy: [.env]\n  link: [node_modules]\n  setup: setup.sh\n');
    fs.writeFileSync(path.join(o.cwd, '.env'), 'TOKEN=abc\n');
    fs.mkdirSync(path.join(o.cwd, 'node_modules', 'dep'), { recursive: true });
    fs.writeFileSync(path.join(o.cwd, 'node_modules', 'dep', 'index.js'), 'module.exports = 1;\n');
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'setup.sh'), '#!/usr/bin/env bash\necho "setup in $(basename "$PWD")" >> "$SPARKQ_WORKSPACE/setup.log"\n');
    fs.writeFileSync(
      path.join(o.cwd, 'scripts', 'uses.sh'),
      '#!/usr/bin/env bash\nset -e\ngrep -q TOKEN=abc .env\ntest -f node_modules/dep/index.js\necho "$1" > "out-$1.txt"\necho "used deps for $1"\n',
    );
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    const ids = [];
    for (const k of ['a', 'b']) ids.push((await cli.ok(['enqueue', 'run-bash', '--queue', 'wt', '--prompt', `uses.sh ${k}`], o)).trim());
    const r = await cli.run(['run', '--queue', 'wt'], o);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /: new, setup ran, \d+ ms/);
    assert.match(r.stdout, /: reused, \d+ ms/);
    assert.equal(fs.readFileSync(path.join(o.cwd, 'setup.log'), 'utf8').trim().split('\n').length, 1, 'the setup ran once, for the one new worktree');
    for (const [id, k] of [[ids[0]!, 'a'], [ids[1]!, 'b']] as const) {
      const t = await cli.json<TaskJson>(['task', id], o);
      assert.equal(t.status, 'succeeded', t.error ?? '');
      assert.deepEqual(t.change!.files, [{ path: `out-${k}.txt`, status: 'A' }], 'neither .env nor node_modules is part of the change');
      const tree = gitIn(o.cwd, 'ls-tree', '-r', '--name-only', t.change!.commit!).trim().split('\n');
      assert.ok(tree.includes(`out-${k}.txt`) && !tree.some((f) => f.startsWith('node_modules') || f === '.env'), tree.join(', '));
    }
    // A worker that starts later takes the clean worktree the last one left, instead of checking out the tree anew.
    const third = (await cli.ok(['enqueue', 'run-bash', '--queue', 'wt', '--prompt', 'uses.sh c'], o)).trim();
    const again = await cli.run(['run', '--queue', 'wt'], o);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /: reused, \d+ ms/);
    assert.equal(fs.readFileSync(path.join(o.cwd, 'setup.log'), 'utf8').trim().split('\n').length, 1, 'no setup for a worktree taken over');
    assert.deepEqual((await cli.json<TaskJson>(['task', third], o)).change!.files, [{ path: 'out-c.txt', status: 'A' }]);
    // The second task's branch starts from the base, not from the first task's work.
    const second = await cli.json<TaskJson>(['task', ids[1]!], o);
    assert.equal(gitIn(o.cwd, 'ls-tree', '--name-only', second.change!.commit!).includes('out-a.txt'), false);
    // The worktree moved on to the second task: the first one's is gone from disk, its branch stays.
    const detail = await cli.ok(['task', ids[0]!], o);
    assert.match(detail, new RegExp(`branch +sparkq/wt/${ids[0]!} from [0-9a-f]{12} \\(main\\)`));
    assert.match(detail, /commit +[0-9a-f]{12}: 1 file changed, \+1 −0/);
    const opened = await cli.json<{ dir: string; created: boolean }>(['worktree', 'open', ids[0]!], o);
    assert.equal(opened.created, true, 'checked out again from its branch');
    assert.equal(fs.readFileSync(path.join(opened.dir, 'out-a.txt'), 'utf8'), 'a\n');
  });

  it('a worker killed mid-task leaves its worktree, which prune lists and keeps, and removes only when asked', async () => {
    const o = await repo();
    const yml = path.join(o.cwd, 'sparkq.yml');
    fs.writeFileSync(yml, fs.readFileSync(yml, 'utf8').replace(/leaseSeconds: \d+/, 'leaseSeconds: 2'));
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'slow.sh'), '#!/usr/bin/env bash\necho half > half-done.txt\necho started\nsleep 60\n');
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    const before = status(o.cwd);
    const q = await openQueue(o.cwd, { role: 'test-owner', sweepIntervalMs: 100, watchConfig: false });
    try {
      const t = await q.enqueue({ queue: 'wt', tool: 'run-bash', prompt: 'slow.sh' });
      const child = spawn(process.execPath, [cli.bundle, 'run', '--queue', 'wt'], { cwd: o.cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      await new Promise<void>((resolve) =>
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          if (out.includes('started\n')) resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGKILL');
      for (;;) {
        if ((await q.getTask(t.id)).status === 'failed') break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await q.close();
    }
    const [entry] = await cli.json<{ task: string; state: string; dirty: boolean; worktree: string }[]>(['worktree', 'list'], o);
    assert.equal(entry!.state, 'failed');
    assert.equal(entry!.dirty, true, 'the half-done work is there');
    assert.equal(fs.readFileSync(path.join(o.cwd, entry!.worktree, 'half-done.txt'), 'utf8'), 'half\n');
    const kept = await cli.json<{ removed: unknown[]; kept: { state: string }[] }>(['worktree', 'prune'], o);
    assert.deepEqual(kept.removed, []);
    assert.ok(fs.existsSync(path.join(o.cwd, entry!.worktree)), 'kept for inspection');
    const removed = await cli.json<{ removed: { task: string }[] }>(['worktree', 'prune', '--failed'], o);
    assert.deepEqual(removed.removed.map((e) => e.task), [entry!.task]);
    assert.ok(!fs.existsSync(path.join(o.cwd, entry!.worktree)));
    assert.equal(gitIn(o.cwd, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/sparkq/').trim(), '');
    assert.equal(status(o.cwd), before, 'the main worktree never saw any of it');
  });

  it("lists and prunes one queue's work with --queue, an ended queue's too; other queues' work stays", async () => {
    const o = await repo();
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'put.sh'), '#!/usr/bin/env bash\necho "$2" > "$1"\n');
    for (const name of ['one', 'two']) {
      await cli.ok(['queue', 'create', name, '--session', 's', '--isolation', 'worktree'], o);
      await cli.ok(['enqueue', 'run-bash', '--queue', name, '--prompt', `put.sh ${name}.txt ${name}`], o);
      const r = await cli.run(['run', '--queue', name], o);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const [one] = await cli.json<{ id: string; name: string }[]>(['queue', 'list'], o).then((qs) => qs.filter((x) => x.name === 'one'));
    const listed = await cli.json<{ task: string }[]>(['worktree', 'list', '--queue', 'one'], o);
    const oneTasks = (await cli.json<{ id: string }[]>(['tasks', '--queue', 'one'], o)).map((t) => t.id);
    assert.deepEqual(listed.map((e) => e.task), oneTasks);
    // Merge one's work, end the queue, prune it by the id `queue end` names: two's stays.
    await cli.ok(['merge', oneTasks[0]!], o);
    const ended = await cli.ok(['queue', 'end', 'one'], o);
    assert.match(ended, new RegExp(`sparkq worktree prune --queue ${one!.id}`));
    const pruned = await cli.json<{ removed: { task: string }[] }>(['worktree', 'prune', '--queue', one!.id], o);
    assert.deepEqual(pruned.removed.map((e) => e.task), oneTasks);
    const left = await cli.json<{ task: string }[]>(['worktree', 'list'], o);
    assert.deepEqual(left.map((e) => e.task), (await cli.json<{ id: string }[]>(['tasks', '--queue', 'two'], o)).map((t) => t.id));
  });

  it('a plan batch with merge: auto merges when its last task succeeded, in plan order, and stops at the first conflict with the queue paused', async () => {
    const o = await repo();
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'put.sh'), '#!/usr/bin/env bash\necho "$2" > "$1"\necho "put $2 in $1"\n');
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    const plan = [
      'id: build',
      'defaults: { queue: wt, tool: run-bash }',
      'batches:',
      '  - name: parts',
      '    merge: auto',
      '    tasks:',
      '      - { name: a, prompt: put.sh a.txt A }',
      '      - { name: b, prompt: put.sh b.txt B }',
      '  - name: clash',
      '    after: [parts]',
      '    merge: auto',
      '    tasks:',
      '      - { name: c, prompt: put.sh shared.txt C }',
      '      - { name: d, prompt: put.sh shared.txt D }',
    ].join('\n');
    fs.writeFileSync(path.join(o.cwd, 'plan.yml'), plan);
    await cli.ok(['plan', 'apply', 'plan.yml'], o);
    const before = status(o.cwd);
    const r = await cli.run(['run', '--queue', 'wt'], o);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /merge group build\/parts: 2 tasks merged into the base/);
    assert.equal(fs.readFileSync(path.join(o.cwd, 'a.txt'), 'utf8'), 'A\n');
    assert.equal(fs.readFileSync(path.join(o.cwd, 'b.txt'), 'utf8'), 'B\n');
    // The second batch: c merges, d conflicts with it; the base holds c's change and nothing of d, and is clean.
    assert.match(r.stdout, /auto-merge of build\/clash stopped at tsk_\w+: conflicts in shared\.txt/);
    assert.equal(fs.readFileSync(path.join(o.cwd, 'shared.txt'), 'utf8'), 'C\n');
    assert.equal(status(o.cwd), before, 'merged cleanly or not at all: nothing half-merged');
    const queue = (await cli.json<{ name: string; paused: boolean; pauseReason: string }[]>(['queue', 'list'], o)).find((q) => q.name === 'wt')!;
    assert.equal(queue.paused, true);
    assert.match(queue.pauseReason, /^auto-merge of build\/clash stopped at tsk_\w+: conflicts in shared\.txt/);
    const tasks = await cli.json<{ planKey: string; mergeGroup: string; status: string }[]>(['tasks', '--plan', 'build'], o);
    assert.deepEqual(tasks.map((t) => [t.planKey, t.mergeGroup, t.status]).sort(), [
      ['a', 'build/parts', 'succeeded'],
      ['b', 'build/parts', 'succeeded'],
      ['c', 'build/clash', 'succeeded'],
      ['d', 'build/clash', 'succeeded'],
    ]);
  });

  it("a task starts with the work of the tasks it waits on, merged in where the base lacks it; theirs conflicting fails it with the files", async () => {
    const o = await repo();
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'put.sh'), '#!/usr/bin/env bash\necho "$2" > "$1"\necho "put $2 in $1"\n');
    // Writes its file only when the files it builds on are there, with what they wrote.
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'use.sh'), '#!/usr/bin/env bash\ngrep -qx A a.txt && grep -qx B b.txt || { echo "a.txt, b.txt: $(cat a.txt b.txt 2>&1)" >&2; exit 1; }\necho "AB" > ab.txt\necho used\n');
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    const plan = [
      'id: stack',
      'defaults: { queue: wt, tool: run-bash }',
      'tasks:',
      '  - { name: a, prompt: put.sh a.txt A }',
      '  - { name: b, prompt: put.sh b.txt B }',
      '  - { name: ab, prompt: use.sh, after: [a, b] }',
      '  - { name: c, prompt: put.sh shared.txt C }',
      '  - { name: d, prompt: put.sh shared.txt D }',
      '  - { name: cd, prompt: put.sh cd.txt CD, after: [c, d] }',
    ].join('\n');
    fs.writeFileSync(path.join(o.cwd, 'plan.yml'), plan);
    await cli.ok(['plan', 'apply', 'plan.yml'], o);
    const base = head(o.cwd);
    const r = await cli.run(['run', '--queue', 'wt'], o);
    const byKey = new Map((await cli.json<{ id: string; planKey: string; status: string; error: string | null; change: { commit: string | null; baseCommit: string; files: { path: string }[] } | null }[]>(['tasks', '--plan', 'stack'], o)).map((t) => [t.planKey, t]));
    const ab = byKey.get('ab')!;
    assert.equal(ab.status, 'succeeded', r.stdout + r.stderr);
    // Its change is its own work, against a start that holds a and b; its branch holds all three.
    assert.deepEqual(ab.change!.files.map((f) => f.path), ['ab.txt']);
    assert.notEqual(ab.change!.baseCommit, base);
    for (const f of ['a.txt', 'b.txt', 'ab.txt']) assert.ok(gitIn(o.cwd, 'ls-tree', '--name-only', ab.change!.commit!, f).trim() === f, `${f} is on ab's commit`);
    const said = new RegExp(`from ${ab.change!.baseCommit.slice(0, 12)} \\(main with the work of (tsk_\\w+), (tsk_\\w+)\\)`).exec(r.stdout);
    assert.ok(said, r.stdout);
    assert.deepEqual([said[1], said[2]].sort(), [byKey.get('a')!.id, byKey.get('b')!.id].sort());
    // The base is untouched: nothing was merged into it (no merge: auto).
    assert.equal(head(o.cwd), base);
    // c and d rewrote shared.txt each: cd cannot start from both, and says why.
    const cd = byKey.get('cd')!;
    assert.equal(cd.status, 'failed');
    assert.match(cd.error!, new RegExp(`the work of the tasks it waits on does not merge: (${byKey.get('c')!.id}|${byKey.get('d')!.id}) conflicts with the others in shared\\.txt; merge them into main by hand`));
  });

  it("a fix round starts from the work its check failed, and its merge brings both rounds", async () => {
    const o = await repo();
    // Each round adds its own file; the check passes only work that holds round 1's and round 2's.
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'round.sh'), '#!/usr/bin/env bash\necho "$SPARKQ_VALIDATION_ROUND" > "r$SPARKQ_VALIDATION_ROUND.txt"\necho "wrote r$SPARKQ_VALIDATION_ROUND.txt"\n');
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'both.sh'), '#!/usr/bin/env bash\nif [ -e r1.txt ] && [ -e r2.txt ]; then echo both; else echo "only $(ls r*.txt | tr \'\\n\' \' \')" >&2; exit 1; fi\n');
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    await cli.ok(['enqueue', 'run-bash', '--queue', 'wt', '--prompt', 'round.sh', '--validate-with', 'run-bash', '--validate-prompt', 'both.sh'], o);
    const r = await cli.run(['run', '--queue', 'wt'], o);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const all = await cli.json<{ id: string; status: string; retryOf: string | null; validates: string | null; validation: { status: string; round: number } | null; change: { commit: string; baseCommit: string } | null }[]>(['tasks', '--queue', 'wt', '--all'], o);
    const first = all.find((t) => t.validates === null && t.retryOf === null)!;
    const second = all.find((t) => t.retryOf === first.id)!;
    assert.equal(first.validation!.status, 'failed', r.stdout);
    assert.equal(second.status, 'succeeded', r.stdout);
    assert.deepEqual([second.validation!.status, second.validation!.round], ['passed', 2], r.stdout);
    // Round 2 started on round 1's commit: its own change is r2.txt, its commit holds both.
    assert.equal(second.change!.baseCommit, first.change!.commit);
    assert.deepEqual(gitIn(o.cwd, 'ls-tree', '--name-only', second.change!.commit, 'r1.txt', 'r2.txt').trim().split('\n'), ['r1.txt', 'r2.txt']);
    await cli.ok(['merge', second.id], o);
    assert.equal(fs.readFileSync(path.join(o.cwd, 'r1.txt'), 'utf8'), '1\n');
    assert.equal(fs.readFileSync(path.join(o.cwd, 'r2.txt'), 'utf8'), '2\n');
  });

  it('a validated batch with merge: auto merges only once every task passed its check, and not at all when one failed it', async () => {
    const o = await repo();
    fs.writeFileSync(path.join(o.cwd, 'scripts', 'put.sh'), '#!/usr/bin/env bash\necho "$2" > "$1"\necho "put $2 in $1"\n');
    // The check runs on what it checks (the checked task's commit, in a worktree of its own): it fails the task
    // that wrote FORBIDDEN.txt and passes the others, each of which wrote exactly one good-*.txt.
    fs.writeFileSync(
      path.join(o.cwd, 'scripts', 'check.sh'),
      '#!/usr/bin/env bash\nif [ -e FORBIDDEN.txt ]; then echo "forbidden file" >&2; exit 1; fi\nn=$(ls good-*.txt 2>/dev/null | wc -l)\nif [ "$n" != 1 ]; then echo "sees $n good files, not the change" >&2; exit 1; fi\necho checked\n',
    );
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    const plan = [
      'id: checked',
      'defaults: { queue: wt, tool: run-bash, validate: { tool: run-bash, prompt: check.sh, maxRounds: 1 } }',
      'batches:',
      '  - name: ok',
      '    merge: auto',
      '    tasks:',
      '      - { name: a, prompt: put.sh good-a.txt A }',
      '      - { name: b, prompt: put.sh good-b.txt B }',
      '  - name: nok',
      '    merge: auto',
      '    tasks:',
      '      - { name: c, prompt: put.sh good-c.txt C }',
      '      - { name: d, prompt: put.sh FORBIDDEN.txt D }',
    ].join('\n');
    fs.writeFileSync(path.join(o.cwd, 'plan.yml'), plan);
    await cli.ok(['plan', 'apply', 'plan.yml'], o);
    const r = await cli.run(['run', '--queue', 'wt'], o);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.stdout;
    const merged = out.indexOf('merge group checked/ok: 2 tasks merged');
    assert.ok(merged > 0, out);
    // Both checks of the ok batch (validation tasks, whose summary is the script's "checked") ran before its merge.
    const checksBefore = (out.slice(0, merged).match(/succeeded in [\d.]+ s: checked/g) ?? []).length;
    assert.equal(checksBefore, 2, out);
    assert.equal(fs.readFileSync(path.join(o.cwd, 'good-a.txt'), 'utf8'), 'A\n');
    assert.equal(fs.readFileSync(path.join(o.cwd, 'good-b.txt'), 'utf8'), 'B\n');
    // The nok batch: d failed its check, so nothing of the batch merged, c's good work included.
    assert.doesNotMatch(out, /merge group checked\/nok/);
    assert.ok(!fs.existsSync(path.join(o.cwd, 'good-c.txt')));
    assert.ok(!fs.existsSync(path.join(o.cwd, 'FORBIDDEN.txt')));
  });

  it('a claim by hand from a worktree queue says that a worker makes the worktrees, and how to work through one', async () => {
    const o = await repo();
    await cli.ok(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], o);
    await cli.ok(['queue', 'create', 'plain', '--session', 's'], o);
    for (const q of ['wt', 'plain']) await cli.ok(['enqueue', 'llm-sonnet', '--queue', q, '--prompt', 'by hand'], o);
    const claimed = await cli.ok(['claim', '--queue', 'wt'], o);
    assert.match(claimed, /Queue wt runs each task in a git worktree of its own, which a worker makes: .* run `sparkq run --queue "wt"`/);
    assert.doesNotMatch(await cli.ok(['claim', '--queue', 'plain'], o), /worktree/);
  });

  it('refuses a worktree queue outside a git repository, an unknown base, and following a base that is no branch', async () => {
    const plain = { cwd: path.join(tmp.dir, `ws${++n}`) };
    fs.mkdirSync(plain.cwd, { recursive: true });
    await cli.ok(['init'], plain);
    await cli.ok(['session', 'create', 's'], plain);
    assertError(await cli.run(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree'], plain), 1, /is not inside a git repository: run `git init` there/);
    const o = await repo();
    assertError(await cli.run(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree', '--base', 'nope'], o), 1, /--base nope: git knows no branch, tag or commit by that name/);
    gitIn(o.cwd, 'tag', 'v1');
    assertError(await cli.run(['queue', 'create', 'wt', '--session', 's', '--isolation', 'worktree', '--base', 'v1', '--base-follow'], o), 1, /--base-follow needs a branch to follow; v1 is not one/);
    assertError(await cli.run(['queue', 'create', 'wt', '--session', 's', '--isolation', 'container'], o), 1, /--isolation must be worktree or none/);
    assertError(await cli.run(['queue', 'create', 'wt', '--session', 's', '--base', 'main'], o), 1, /apply only with --isolation worktree/);
    const names = (await cli.json<{ name: string }[]>(['queue', 'list'], o)).map((q) => q.name);
    assert.deepEqual(names, [], 'nothing was created');
    // A task that is no worktree task has no branch to merge.
    await cli.ok(['queue', 'create', 'plain', '--session', 's'], o);
    const id = (await cli.ok(['enqueue', 'run-bash', '--queue', 'plain', '--prompt', 'rewrite.sh x'], o)).trim();
    assertError(await cli.run(['merge', id], o), 1, /did not run in a worktree/);
  });
});
