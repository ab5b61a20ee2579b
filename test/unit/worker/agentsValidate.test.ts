import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import type { Task } from '../../../src/core/model';
import { NO_VERDICT } from '../../../src/core/queue/validation';
import { EXECUTORS } from '../../../src/worker/executors';
import { scriptExecutor } from '../../../src/worker/executors/script';
import { runWorker, type WorkerSummary } from '../../../src/worker/runner';
import { API, type Agent, bodyText, mockAgentTool } from '../../support/agentRig';
import { bundleCli } from '../../support/cli';
import { MockModelServer, type MockReply } from '../../support/mockModel';
import { tempDir } from '../../support/tmp';

/*
 * Issue 19's test point for agent validators: the real `claude` and `codex` binaries (devDependencies, as in
 * agents.test.ts), driven by the loopback mock model, check a script task's result through the real worker
 * (runWorker, drain, the real executors). An agent's own completion data is its final message and the like, never a
 * verdict, so an agent gives its verdict the ways it really has: claude runs `sparkq verdict "$SPARKQ_TASK_ID" …` with
 * its Bash tool (the worker puts its `sparkq` first on the tool's PATH and gives the task's id and lease in the
 * environment); codex, whose shell runs sandboxed, completes its task with data {verdict, feedback} through SparkQ's
 * MCP server (mcp: true). A validator that ends without a verdict, or completes with a verdict that is neither pass nor
 * fail, fails the round with the reason, never a pass. Everything is asserted on the stored tasks.
 */

/** The validator tool of each agent in sparkq.yml, pointed at the mock: throwaway homes, nothing outside 127.0.0.1. */
function toolYaml(agent: Agent, mock: MockModelServer, homes: string) {
  // codex gives its verdict through SparkQ's MCP server.
  if (agent === 'codex') return mockAgentTool('codex', mock, { homes, home: homes, mcp: true });
  // claude -p (acceptEdits) refuses a Bash command it has not been allowed, `sparkq verdict` included; a prefix rule
  // such as Bash(sparkq verdict:*) still refuses `sparkq verdict "$SPARKQ_TASK_ID" …` ("a variable in this command
  // can't be checked before it runs"). A claude validator that gives its verdict from its shell is allowed Bash.
  return mockAgentTool('claude', mock, { homes, args: ['--allowedTools', 'Bash'] });
}

/** The model's replies that make the agent give this verdict on the validation task it runs, then end its turn. */
function verdictReplies(agent: Agent, verdict: 'pass' | 'fail', feedback: string): MockReply[] {
  if (agent === 'claude') {
    return [
      { kind: 'shell', command: `sparkq verdict "$SPARKQ_TASK_ID" ${verdict} '${feedback}'` },
      { kind: 'text', text: `Gave ${verdict}.` },
    ];
  }
  // The task's own MCP server offers complete (not verdict): the verdict goes in the completion data.
  return [
    { kind: 'tool-search', server: 'sparkq', tools: ['complete'], query: 'complete task' },
    // No task and no lease: the server is the validation task's own and fills both in.
    { kind: 'mcp-call', server: 'sparkq', tool: 'complete', arguments: { summary: `${verdict}: ${feedback}`, data: { verdict, feedback } } },
    { kind: 'text', text: `Gave ${verdict}.` },
  ];
}

describe('validators: the real claude and codex give the verdict, through the worker', function () {
  this.timeout(60_000);
  let bundle: string;
  let shared: { dir: string; cleanup: () => void };
  let tmp: { dir: string; cleanup: () => void };
  let mock: MockModelServer;
  let q: QueueHandle | null;

  before(() => {
    shared = tempDir('sparkq-agents-validate-cli-');
    // The `sparkq` the worker's launcher runs for its tools (the agent's shell, codex's MCP server).
    bundle = bundleCli(path.join(shared.dir, 'bundle'));
  });
  after(() => shared.cleanup());
  beforeEach(async () => {
    tmp = tempDir('sparkq-agents-validate-');
    mock = await MockModelServer.start();
    q = null;
  });
  afterEach(async () => {
    await q?.close();
    await mock.close();
    tmp.cleanup();
  });

  interface Ws {
    ws: string;
    q: QueueHandle;
    /** Where build.sh writes the feedback each round of it saw (SPARKQ_VALIDATOR_FEEDBACK), by task id. */
    seen: string;
  }

  /**
   * A workspace with the agent's validator tool `check`, a queue `v`, and two scripts: build.sh (the checked task: it
   * records the validator feedback it was given) and next.sh (its dependent).
   */
  async function workspace(agent: Agent): Promise<Ws> {
    const dir = fs.realpathSync(tmp.dir);
    const ws = path.join(dir, 'ws');
    const seen = path.join(dir, 'seen');
    fs.mkdirSync(path.join(ws, 'scripts'), { recursive: true });
    fs.mkdirSync(seen);
    // JSON is YAML: the tool exactly as built, with no quoting to get wrong.
    fs.writeFileSync(path.join(ws, 'sparkq.yml'), `version: 1\nproject: "agents-validate"\ntools: ${JSON.stringify({ check: toolYaml(agent, mock, dir) })}\n`);
    fs.writeFileSync(
      path.join(ws, 'scripts', 'build.sh'),
      `#!/usr/bin/env bash\nprintf '%s' "\${SPARKQ_VALIDATOR_FEEDBACK-(none)}" > ${JSON.stringify(seen)}/"$SPARKQ_TASK_ID"\necho "built round \${SPARKQ_VALIDATION_ROUND:-1}"\n`,
    );
    fs.writeFileSync(path.join(ws, 'scripts', 'next.sh'), '#!/usr/bin/env bash\necho "next ran"\n');
    const handle = await openQueue(ws, { role: 'test', watchConfig: false });
    q = handle;
    await handle.createSession({ name: 's' });
    await handle.createQueue({ name: 'v', session: 's' });
    return { ws, q: handle, seen };
  }

  /** A validated build task (check, up to `maxRounds`) and next.sh after it. */
  async function enqueuePair(w: Ws, maxRounds: number): Promise<{ build: Task; next: Task }> {
    const build = await w.q.enqueue({ queue: 'v', tool: 'run-bash', prompt: 'build.sh', validate: { tool: 'check', maxRounds } });
    const next = await w.q.enqueue({ queue: 'v', tool: 'run-bash', prompt: 'next.sh', after: [build.id] });
    return { build, next };
  }

  async function drain(w: Ws): Promise<{ summary: WorkerSummary; out: string }> {
    let out = '';
    const summary = await runWorker({
      q: w.q,
      workspaceDir: w.ws,
      queue: 'v',
      mode: 'drain',
      write: (s) => (out += s),
      signal: new AbortController().signal,
      executors: EXECUTORS,
      sparkqCommand: [process.execPath, bundle],
    });
    return { summary, out };
  }

  /** Every task of queue v, oldest first. */
  async function allTasks(w: Ws): Promise<Task[]> {
    const { tasks } = await w.q.listTasks({ queue: 'v', limit: 100 });
    return [...tasks].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  const seenBy = (w: Ws, id: string) => fs.readFileSync(path.join(w.seen, id), 'utf8');

  for (const agent of ['claude', 'codex'] as const) {
    it(`${agent} as validator passes the checked task in round 1; its dependent runs then`, async () => {
      const w = await workspace(agent);
      const { build, next } = await enqueuePair(w, 2);
      mock.script(API[agent], ...verdictReplies(agent, 'pass', 'looks right'));
      const { summary, out } = await drain(w);
      assert.deepEqual(summary, { ran: 3, succeeded: 3, failed: 0, released: 0, interrupted: false }, out);
      assert.equal(mock.pending(API[agent]), 0, `every scripted reply was asked for\n${out}`);

      const b = await w.q.getTask(build.id);
      assert.equal(b.status, 'succeeded', out);
      assert.equal(b.validation?.status, 'passed', out);
      assert.equal(b.validation.round, 1);
      assert.equal(b.validation.maxRounds, 2);
      assert.equal(b.validation.feedback, 'looks right');
      assert.equal(b.validation.by.length, 1);
      const v = await w.q.getTask(b.validation.by[0]!);
      assert.equal(v.validates, build.id);
      assert.equal(v.tool, 'check');
      assert.equal(v.status, 'succeeded');
      assert.deepEqual(v.result, { summary: 'pass: looks right', data: { verdict: 'pass', feedback: 'looks right' } });
      // It finished its task itself, which carried no tokens: its worker recorded the agent's after the run.
      assert.ok((v.usage?.inputTokens ?? 0) > 0 && (v.usage?.outputTokens ?? 0) > 0, `the validator's tokens are recorded: ${JSON.stringify(v.usage)}`);
      // The agent ran in the validation task: its prompt carries what it checks and how to give the verdict.
      assert.match(v.prompt ?? '', new RegExp(`## The task \\(${build.id}, round 1 of 2\\)\\n\\nbuild\\.sh`));
      assert.match(v.prompt ?? '', /## Its summary\n\nbuilt round 1/);
      assert.deepEqual(v.payload, {
        validates: build.id,
        round: 1,
        summary: 'built round 1',
        data: { exitCode: 0, script: 'scripts/build.sh', args: [], output: 'built round 1' },
        change: null,
      });
      assert.ok(bodyText(mock.modelRequests(API[agent])[0]).includes(`round 1 of 2`), 'the model was shown the round');
      assert.ok(bodyText(mock.modelRequests(API[agent])[0]).includes('sparkq verdict'), 'the model was told how to give the verdict');

      // The dependent ran only after the verdict.
      const n = await w.q.getTask(next.id);
      assert.equal(n.status, 'succeeded', out);
      assert.equal(n.result?.summary, 'next ran');
      assert.ok(n.startedAt! >= v.finishedAt!, `next started ${n.startedAt}, the verdict came ${v.finishedAt}`);
      assert.equal(seenBy(w, build.id), '(none)', 'round 1 had no feedback');
      assert.equal((await allTasks(w)).length, 3);
    });

    it(`${agent} as validator fails round 1 with feedback; round 2 gets it under the heading and passes`, async () => {
      const w = await workspace(agent);
      const { build, next } = await enqueuePair(w, 2);
      mock.script(API[agent], ...verdictReplies(agent, 'fail', 'missing tests'), ...verdictReplies(agent, 'pass', 'tests are there now'));
      const { summary, out } = await drain(w);
      // build, validation 1, build round 2, validation 2, next: the first build's round failed after the verdict.
      assert.equal(summary.ran, 5, out);
      assert.equal(mock.pending(API[agent]), 0, `every scripted reply was asked for\n${out}`);

      const first = await w.q.getTask(build.id);
      assert.equal(first.status, 'failed', out);
      assert.equal(first.error, 'validation round 1 of 2 failed: missing tests');
      assert.equal(first.validation?.status, 'failed');
      assert.equal(first.validation.round, 1);
      assert.equal(first.validation.feedback, 'missing tests');
      const v1 = await w.q.getTask(first.validation.by[0]!);
      assert.deepEqual(v1.result?.data, { verdict: 'fail', feedback: 'missing tests' });

      const tasks = await allTasks(w);
      const copies = tasks.filter((t) => t.retryOf === build.id);
      assert.equal(copies.length, 1, JSON.stringify(tasks.map((t) => [t.id, t.prompt, t.retryOf])));
      const second = copies[0]!;
      assert.equal(second.status, 'succeeded', out);
      assert.equal(second.prompt, 'build.sh\n\n## Validator feedback (round 1 of 2)\n\nmissing tests');
      assert.equal(second.validation?.status, 'passed');
      assert.equal(second.validation.round, 2);
      assert.equal(second.validation.feedback, 'tests are there now');
      assert.equal(second.validation.by.length, 2);
      assert.equal(second.validation.by[0], v1.id);
      const v2 = await w.q.getTask(second.validation.by[1]!);
      assert.equal(v2.validates, second.id);
      assert.deepEqual(v2.result?.data, { verdict: 'pass', feedback: 'tests are there now' });
      // The script of round 2 read the feedback from its environment (never as arguments), and ran as round 2.
      assert.equal(seenBy(w, second.id), 'missing tests');
      assert.equal(second.result?.summary, 'built round 2');
      // Round 2's validator was shown round 2, and the feedback in the prompt it checks.
      assert.match(v2.prompt ?? '', new RegExp(`## The task \\(${second.id}, round 2 of 2\\)\\n\\nbuild\\.sh\\n\\n## Validator feedback \\(round 1 of 2\\)\\n\\nmissing tests`));

      // The dependent waited for round 2's pass.
      const n = await w.q.getTask(next.id);
      assert.equal(n.status, 'succeeded', out);
      assert.deepEqual(n.after, [second.id]);
      assert.ok(n.startedAt! >= v2.finishedAt!, `next started ${n.startedAt}, the pass came ${v2.finishedAt}`);
      assert.equal(tasks.length, 5);
    });
  }

  for (const agent of ['codex', 'claude'] as const) {
    it(`${agent}'s fix round continues the conversation of the round it fixes, even when the queue's moved on`, async () => {
      const w = await workspace(agent);
      // A script check that fails round 1 and passes round 2 (it reads the round it checks from its file).
      fs.writeFileSync(path.join(w.ws, 'scripts', 'once.sh'), '#!/usr/bin/env bash\nif grep -Eq \'"round": ?1[,}]\' "$SPARKQ_VALIDATE_FILE"; then echo "say ZULU too" >&2; exit 1; fi\necho fine\n');
      const build = await w.q.enqueue({ queue: 'v', tool: 'check', prompt: 'Build the ALPHA module', validate: { tool: 'run-bash', prompt: 'once.sh' } });
      mock.script(API[agent], { kind: 'text', text: 'Built it, marker YANKEE' }, { kind: 'text', text: 'Fixed it, ZULU' });
      let out = '';
      // After each check, the queue's conversation is forgotten, as when another task of the queue started a new one.
      const forgetting = {
        async run(ctx: Parameters<typeof scriptExecutor.run>[0]) {
          const r = await scriptExecutor.run(ctx);
          await w.q.setAgentSession('v', { codexThreadId: null, claudeSessionId: null });
          return r;
        },
      };
      const summary = await runWorker({ q: w.q, workspaceDir: w.ws, queue: 'v', mode: 'drain', write: (x) => (out += x), signal: new AbortController().signal, executors: { ...EXECUTORS, script: forgetting }, sparkqCommand: [process.execPath, bundle] });
      assert.equal(summary.ran, 4, out);
      assert.equal(mock.pending(API[agent]), 0, `every scripted reply was asked for\n${out}`);
      const first = await w.q.getTask(build.id);
      const second = (await allTasks(w)).find((t) => t.retryOf === build.id)!;
      assert.equal(second.validation?.status, 'passed', out);
      const key = agent === 'codex' ? 'threadId' : 'sessionId';
      const thread = (first.result?.data as Record<string, unknown>)[key];
      assert.equal(typeof thread, 'string');
      assert.equal((second.result?.data as Record<string, unknown>)[key], thread, 'round 2 ran in round 1\'s conversation');
      // The model saw round 1's answer in round 2's request: the conversation went on.
      const requests = mock.modelRequests(API[agent]);
      assert.ok(bodyText(requests[requests.length - 1]).includes('marker YANKEE'), 'round 2 was sent round 1\'s conversation');
    });
  }

  for (const agent of ['codex', 'claude'] as const) {
    it(`${agent} finishing its own task on a worktree queue: its summary is the commit message`, async () => {
      const w = await workspace(agent);
      const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@e', ...args], { cwd: w.ws, encoding: 'utf8' }).trim();
      git('init', '-q', '-b', 'main');
      fs.writeFileSync(path.join(w.ws, '.gitignore'), '.sparkq/\n');
      git('add', '-A');
      git('commit', '-q', '-m', 'base');
      await w.q.createQueue({ name: 'wt', session: 's', isolation: { kind: 'worktree', baseRef: 'main', baseCommit: git('rev-parse', 'HEAD'), follow: false } });
      const t = await w.q.enqueue({ queue: 'wt', tool: 'check', prompt: 'Write notes.txt' });
      const summary = 'Wrote notes.txt, as the agent says';
      const finish: MockReply[] =
        agent === 'claude'
          ? [{ kind: 'shell', command: `sparkq complete "$SPARKQ_TASK_ID" '${summary}'` }]
          : [
              { kind: 'tool-search', server: 'sparkq', tools: ['complete'], query: 'complete task' },
              { kind: 'mcp-call', server: 'sparkq', tool: 'complete', arguments: { summary } },
            ];
      mock.script(API[agent], { kind: 'write-file', path: 'notes.txt', content: 'notes\n' }, ...finish, { kind: 'text', text: 'All done here.' });
      let out = '';
      await runWorker({ q: w.q, workspaceDir: w.ws, queue: 'wt', mode: 'drain', write: (x) => (out += x), signal: new AbortController().signal, executors: EXECUTORS, sparkqCommand: [process.execPath, bundle] });
      assert.equal(mock.pending(API[agent]), 0, `every scripted reply was asked for\n${out}`);
      const done = await w.q.getTask(t.id);
      assert.equal(done.status, 'succeeded', out);
      assert.equal(done.result?.summary, summary);
      assert.ok(done.change?.commit, out);
      assert.deepEqual(done.change.files, [{ path: 'notes.txt', status: 'A' }]);
      assert.equal(git('log', '-1', '--format=%s', done.change.commit), summary);
      assert.ok((done.usage?.inputTokens ?? 0) > 0, 'its tokens are recorded too');
    });
  }

  /** A validator whose round has one attempt and maxRounds 1: a round it fails fails the task for good. */
  async function malformed(agent: Agent, replies: MockReply[]): Promise<{ build: Task; next: Task; v: Task; out: string }> {
    const w = await workspace(agent);
    const { build, next } = await enqueuePair(w, 1);
    mock.script(API[agent], ...replies);
    const { summary, out } = await drain(w);
    assert.equal(mock.pending(API[agent]), 0, `every scripted reply was asked for\n${out}`);
    // build and its validator ran (both succeeded as tasks); next never started.
    assert.deepEqual(summary, { ran: 2, succeeded: 2, failed: 0, released: 0, interrupted: false }, out);
    const b = await w.q.getTask(build.id);
    assert.equal(b.validation?.by.length, 1, out);
    const v = await w.q.getTask(b.validation.by[0]!);
    assert.equal(v.status, 'succeeded', out);
    assert.equal((await allTasks(w)).length, 3, 'no next round: maxRounds is 1');
    return { build: b, next: await w.q.getTask(next.id), v, out };
  }

  function assertFailedForGood(r: { build: Task; next: Task }): void {
    const { build, next } = r;
    assert.equal(build.status, 'failed');
    assert.equal(build.validation?.status, 'failed');
    assert.equal(build.validation.round, 1);
    assert.equal(build.validation.feedback, NO_VERDICT);
    assert.equal(build.error, `validation failed after 1 rounds: ${NO_VERDICT}`);
    assert.equal(next.status, 'queued');
    assert.equal(next.startedAt, null, 'the dependent never started');
    assert.deepEqual(next.blockedBy, [build.id]);
  }

  it('claude as validator that ends its turn without a verdict (even one that reads "pass") fails the round, with the reason', async () => {
    // A final message is no verdict: the agent's completion data is its message and the like.
    const r = await malformed('claude', [{ kind: 'text', text: 'pass: everything looks right' }]);
    assert.equal(r.v.result?.summary, 'pass: everything looks right');
    assert.equal((r.v.result?.data as { message?: string } | null)?.message, 'pass: everything looks right');
    assertFailedForGood(r);
  });

  it('claude as validator that completes with {verdict: "maybe"} fails the round, with the reason', async () => {
    const r = await malformed('claude', [
      { kind: 'shell', command: `sparkq complete "$SPARKQ_TASK_ID" "checked it" --data '{"verdict": "maybe", "feedback": "not sure"}'` },
      { kind: 'text', text: 'Completed with maybe.' },
    ]);
    // The completion the agent gave stands (the worker reports it as finished by its agent).
    assert.deepEqual(r.v.result, { summary: 'checked it', data: { verdict: 'maybe', feedback: 'not sure' } });
    assert.match(r.out, /finished by its agent through SparkQ's tools/);
    assertFailedForGood(r);
  });

  it('codex as validator whose final message is a verdict in JSON gives none: the round fails, with the reason', async () => {
    // The completion data of an agent is its message, changed files and thread, whatever the message says: a verdict
    // goes through `sparkq verdict` or SparkQ's tools, so a message that merely looks like one passes nothing.
    const r = await malformed('codex', [{ kind: 'text', text: '{"verdict": "pass", "feedback": "fine"}' }]);
    assert.equal((r.v.result?.data as { message?: string } | null)?.message, '{"verdict": "pass", "feedback": "fine"}');
    assertFailedForGood(r);
  });

  it('codex as validator that completes with {verdict: "maybe"} through SparkQ\'s tools fails the round, with the reason', async () => {
    const r = await malformed('codex', [
      { kind: 'tool-search', server: 'sparkq', tools: ['complete'], query: 'complete task' },
      { kind: 'mcp-call', server: 'sparkq', tool: 'complete', arguments: { summary: 'checked it', data: { verdict: 'maybe', feedback: 'not sure' } } },
      { kind: 'text', text: 'Completed with maybe.' },
    ]);
    assert.deepEqual(r.v.result, { summary: 'checked it', data: { verdict: 'maybe', feedback: 'not sure' } });
    assertFailedForGood(r);
  });

  it('claude as validator whose `sparkq verdict maybe` is refused, then ends its turn, fails the round, with the reason', async () => {
    const r = await malformed('claude', [
      { kind: 'shell', command: `sparkq verdict "$SPARKQ_TASK_ID" maybe 'not sure'; echo "exit $?"` },
      { kind: 'text', text: 'Could not decide.' },
    ]);
    const reqs = mock.modelRequests('messages');
    assert.match(bodyText(reqs[1]), /a verdict is pass or fail, not \\"maybe\\"/, 'the refusal came back to the model');
    assert.equal(r.v.result?.summary, 'Could not decide.');
    assertFailedForGood(r);
  });
});
