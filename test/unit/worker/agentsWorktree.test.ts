import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import type { Task } from '../../../src/core/model';
import { EXECUTORS } from '../../../src/worker/executors';
import { runWorker } from '../../../src/worker/runner';
import { API, type Agent, bodyText, mockAgentTool } from '../../support/agentRig';
import { MockModelServer, type RecordedRequest } from '../../support/mockModel';
import { tempDir } from '../../support/tmp';

/*
 * Issue 18's test point for the agents: the real `codex` and `claude` binaries (devDependencies, as in agents.test.ts),
 * driven by the loopback mock model, run two tasks of a worktree queue through the real worker (runWorker, drain).
 * Each agent's file edit must land in a commit on its own task's branch (and nowhere else: not on main, not in the
 * main working tree), and the queue's Codex thread / Claude session must go on in the second task's worktree.
 */

/** git with argv, in `cwd`, with an identity of its own (CI has none); its stdout. */
function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.email=sparkq@test', '-c', 'user.name=SparkQ test', ...args], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ${args.join(' ')} in ${cwd}: ${r.stderr}`);
  return r.stdout;
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

/** Every path below `dir` (files and symlinks; folders only when empty), relative, `.git` aside, sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    const entries = fs.readdirSync(d, { withFileTypes: true });
    if (entries.length === 0 && d !== dir) out.push(path.relative(dir, d) + '/');
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (d === dir && e.name === '.git') continue;
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

interface Run {
  ws: string;
  base: string;
  /** `git status --porcelain --ignored` of the main working tree before the worker ran. */
  mainStatus: string;
  tasks: [Task, Task];
  threadOfQueue: string | null;
  requests: RecordedRequest[];
  out: string;
}

describe('agents in worktrees: the real codex and claude through the worker on a worktree queue', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let mock: MockModelServer;
  let q: QueueHandle | null;

  beforeEach(async () => {
    tmp = tempDir('sparkq-agents-wt-');
    mock = await MockModelServer.start();
    q = null;
  });
  afterEach(async () => {
    await q?.close();
    await mock.close();
    tmp.cleanup();
  });

  /**
   * A git repository (branch main, one commit) that is a SparkQ workspace with the agent's tool, a worktree queue `wt`
   * from main's HEAD, two tasks, and a worker draining it; the mock makes the first task write made-by-task-1.txt and
   * the second made-by-task-2.txt.
   */
  async function run(agent: Agent): Promise<Run> {
    const dir = fs.realpathSync(tmp.dir);
    const ws = path.join(dir, 'ws');
    fs.mkdirSync(ws);
    git(ws, 'init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(ws, 'README.md'), 'hello\n');
    // JSON is YAML: the tool exactly as built, with no quoting to get wrong.
    fs.writeFileSync(path.join(ws, 'sparkq.yml'), `version: 1\nproject: "agents-worktree"\ntools: ${JSON.stringify({ agent: mockAgentTool(agent, mock, { homes: dir, home: dir }) })}\n`);
    git(ws, 'add', 'README.md', 'sparkq.yml');
    git(ws, 'commit', '-q', '-m', 'base');
    const base = git(ws, 'rev-parse', 'HEAD').trim();

    q = await openQueue(ws, { role: 'test', watchConfig: false });
    await q.createSession({ name: 's' });
    await q.createQueue({ name: 'wt', session: 's', isolation: { kind: 'worktree', baseRef: 'main', baseCommit: base, follow: false } });
    const one = await q.enqueue({ queue: 'wt', tool: 'agent', prompt: 'First task BRAVO: write made-by-task-1.txt' });
    const two = await q.enqueue({ queue: 'wt', tool: 'agent', prompt: 'Second task CHARLIE: write made-by-task-2.txt', after: [one.id] });
    // A relative path, as the model may give it: each agent resolves it against its cwd, the task's worktree.
    mock.script(
      API[agent],
      { kind: 'write-file', path: 'made-by-task-1.txt', content: 'from the first task\n' },
      { kind: 'text', text: 'Wrote made-by-task-1.txt ALPHA' },
      { kind: 'write-file', path: 'made-by-task-2.txt', content: 'from the second task\n' },
      { kind: 'text', text: 'Wrote made-by-task-2.txt DELTA' },
    );
    const mainStatus = git(ws, 'status', '--porcelain', '--ignored');
    let out = '';
    const summary = await runWorker({ q, workspaceDir: ws, queue: 'wt', mode: 'drain', write: (s) => (out += s), signal: new AbortController().signal, executors: EXECUTORS });
    assert.deepEqual(summary, { ran: 2, succeeded: 2, failed: 0, released: 0, interrupted: false }, out);
    assert.equal(mock.pending(API[agent]), 0, 'every scripted reply was asked for');
    const tasks: [Task, Task] = [await q.getTask(one.id), await q.getTask(two.id)];
    const queue = await q.getQueue('wt');
    return {
      ws,
      base,
      mainStatus,
      tasks,
      threadOfQueue: agent === 'codex' ? queue.codexThreadId : queue.claudeSessionId,
      requests: mock.modelRequests(API[agent]),
      out,
    };
  }

  for (const agent of ['codex', 'claude'] as const) {
    it(`${agent}: each edit is committed on its own task's branch, main untouched, and the thread goes on in the next task's worktree`, async () => {
      const r = await run(agent);
      const { ws, base, tasks, requests, out } = r;
      const [t1, t2] = tasks;
      const written = ['made-by-task-1.txt', 'made-by-task-2.txt'] as const;
      const contents = ['from the first task\n', 'from the second task\n'] as const;

      // Each task succeeded, with its own branch and a commit on it holding exactly its file: the first made from
      // main's commit, the second (which waits on the first) from the first's commit, so it builds on that work.
      for (const [i, t] of tasks.entries()) {
        const start = i === 0 ? base : tasks[0].change!.commit!;
        assert.equal(t.status, 'succeeded', `${t.id}: ${t.error ?? ''}\n${out}`);
        assert.equal(t.result?.summary, i === 0 ? 'Wrote made-by-task-1.txt ALPHA' : 'Wrote made-by-task-2.txt DELTA');
        const c = t.change;
        assert.ok(c && c.commit, `${t.id} has a committed change: ${JSON.stringify(c)}`);
        assert.equal(c.branch, `sparkq/wt/${t.id}`);
        assert.equal(c.baseRef, 'main');
        assert.equal(c.baseCommit, start);
        assert.deepEqual(c.files, [{ path: written[i], status: 'A' }]);
        assert.deepEqual([c.filesChanged, c.insertions, c.deletions], [1, 1, 0]);
        // Real git: the branch's tip is that commit, one commit on top of its start, with the summary as message.
        assert.equal(git(ws, 'rev-parse', c.branch).trim(), c.commit);
        assert.equal(git(ws, 'rev-parse', `${c.commit}^`).trim(), start);
        assert.equal(git(ws, 'log', '-1', '--format=%s', c.commit).trim(), t.result?.summary);
        // The commit holds the agent's file and nothing else the run left (no .codex/, .claude/ or the like).
        assert.deepEqual(lines(git(ws, 'diff', '--name-only', start, c.commit)), [written[i]], `${agent} task ${i + 1}: the commit's files`);
        assert.deepEqual(lines(git(ws, 'ls-tree', '-r', '--name-only', c.commit)), ['README.md', 'sparkq.yml', ...written.slice(0, i + 1)].sort());
        assert.equal(git(ws, 'show', `${c.commit}:${written[i]}`), contents[i]);
      }
      // The first task's branch holds nothing of the second.
      assert.equal(spawnSync('git', ['cat-file', '-e', `${t1.change!.commit!}:${written[1]}`], { cwd: ws }).status, 128);

      // main is where it was, and the main working tree got neither file (nor anything else).
      assert.equal(git(ws, 'rev-parse', 'main').trim(), base);
      assert.equal(git(ws, 'symbolic-ref', '--short', 'HEAD').trim(), 'main');
      for (const f of written) assert.ok(!fs.existsSync(path.join(ws, f)), `${f} is not in the main working tree`);
      assert.equal(git(ws, 'status', '--porcelain', '--ignored'), r.mainStatus, 'the main working tree is as it was');
      assert.deepEqual(lines(git(ws, 'branch', '--format=%(refname:short)')).sort(), ['main', t1.change!.branch, t2.change!.branch].sort());

      // Where the tasks ran: each in .sparkq/worktrees/<its id>; this worker moved the first task's clean worktree on
      // to the second task (git worktree move + a new branch) rather than checking out a new one.
      const dirs = tasks.map((t) => path.join(ws, t.change!.worktree));
      assert.deepEqual(
        tasks.map((t) => t.change!.worktree),
        tasks.map((t) => `.sparkq/worktrees/${t.id.replace(/^tsk_/, '')}`),
      );
      assert.notEqual(dirs[0], dirs[1]);
      assert.equal((out.match(/ {2}worktree .*: new, /g) ?? []).length, 1, out);
      assert.equal((out.match(/ {2}worktree .*: reused, /g) ?? []).length, 1, out);
      assert.ok(!fs.existsSync(dirs[0]!), 'the first worktree was moved on to the second task');
      const listed = lines(git(ws, 'worktree', 'list', '--porcelain')).filter((l) => l.startsWith('worktree ') || l.startsWith('branch '));
      assert.deepEqual(listed, [`worktree ${ws}`, 'branch refs/heads/main', `worktree ${dirs[1]!}`, `branch refs/heads/${t2.change!.branch}`]);
      // The worktree the second task left: its file, the first task's it built on, the base's files, and nothing the
      // agent runtime wrote on its own (not even ignored files); clean.
      assert.deepEqual(filesUnder(dirs[1]!), ['README.md', 'sparkq.yml', ...written].sort(), `${agent} left in its worktree`);
      assert.equal(git(dirs[1]!, 'status', '--porcelain', '--ignored'), '');

      // The agent ran in each task's worktree: the model was told so (codex's environment context, claude's system prompt).
      assert.equal(requests.length, 4, 'two model requests per task: the write, then the final answer');
      const cwdMark = (d: string) => (agent === 'codex' ? `<cwd>${d}</cwd>` : d);
      assert.ok(bodyText(requests[0]).includes(cwdMark(dirs[0]!)), `the first task's request names ${dirs[0]!}`);
      assert.ok(bodyText(requests[2]).includes(cwdMark(dirs[1]!)), `the second task's request names ${dirs[1]!}`);

      // The thread/session resumed: the second task's first request carries the whole first task's turn.
      for (const marker of ['First task BRAVO', 'made-by-task-1.txt', 'from the first task', 'Wrote made-by-task-1.txt ALPHA', 'Second task CHARLIE']) {
        assert.ok(bodyText(requests[2]).includes(marker), `the second task's request holds ${JSON.stringify(marker)}`);
      }
      assert.ok(!bodyText(requests[1]).includes('Second task CHARLIE'));
      // One thread/session for the queue: both tasks ran in it, and the queue still names it.
      const key = agent === 'codex' ? 'threadId' : 'sessionId';
      const ids = tasks.map((t) => (t.result?.data as Record<string, unknown> | null | undefined)?.[key]);
      assert.match(String(ids[0]), /^[0-9a-f-]{36}$/);
      assert.equal(ids[1], ids[0], 'the second task ran in the first task\'s thread/session');
      assert.equal(r.threadOfQueue, ids[0], "the queue's thread/session is the one both tasks ran in");
      assert.doesNotMatch(out, /note: /, 'no fallback was needed to resume');
    });
  }
});
