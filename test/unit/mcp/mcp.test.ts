import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QUEUE_API, paramsOf } from '../../../src/api/contract';
import type { Claim, Queue, Task, TaskPage } from '../../../src/core/model';
import { TOOLS } from '../../../src/mcp/tools';
import { type ToolResult, callOk, callTool, connectMcp, mcpSandbox } from '../../support/mcpClient';

/*
 * `sparkq mcp` as agents reach it: the bundled CLI started over stdio and driven by the MCP SDK's own client. Other
 * processes (the CLI, `sparkq serve`) share the workspace queue with it, as they would beside an agent.
 */

const EXPECTED_TOOLS = [
  'status',
  'list_sessions',
  'list_queues',
  'create_session',
  'create_queue',
  'enqueue',
  'apply_plan',
  'list_tasks',
  'get_task',
  'claim',
  'heartbeat',
  'complete',
  'fail',
  'verdict',
  'requeue',
  'requeue_failed',
  'pause_queue',
  'resume_queue',
  'report',
];

describe('sparkq mcp: the MCP server', function () {
  this.timeout(120_000);
  const { sb, workspace, connect, track } = mcpSandbox('sparkq-mcp-', ['q1']);

  it('registers itself exactly as --print-config says, for claude, codex and vscode', async () => {
    const ws = await workspace();
    const elsewhere = path.join(sb.dir, 'elsewhere');
    fs.mkdirSync(elsewhere, { recursive: true });
    const claude = JSON.parse(await sb.cli.ok(['mcp', '--print-config', 'claude', '--workspace', ws], { cwd: elsewhere })) as {
      mcpServers: { sparkq: { type: string; command: string; args: string[]; env: Record<string, string> } };
    };
    const entry = claude.mcpServers.sparkq;
    assert.equal(entry.type, 'stdio');
    assert.deepEqual(entry.args.slice(1), ['mcp', '--workspace', ws]);
    assert.equal(entry.args[0], fs.realpathSync(sb.cli.bundle));
    // Started from another folder with nothing in its environment, as a host does: it serves this workspace.
    const s = await connectMcp(entry.command, entry.args, { cwd: elsewhere });
    track(s);
    const status = await callOk<{ project: string }>(s, 'status');
    assert.equal(status.project, path.basename(ws));

    const vscode = JSON.parse(await sb.cli.ok(['mcp', '--print-config', 'vscode'], { cwd: ws })) as { servers: { sparkq: unknown } };
    assert.deepEqual(vscode.servers.sparkq, { type: 'stdio', command: entry.command, args: entry.args });
    const codex = await sb.cli.ok(['mcp', '--print-config', 'codex'], { cwd: ws });
    assert.match(codex, /^\[mcp_servers\.sparkq\]$/m);
    assert.ok(codex.includes(`command = ${JSON.stringify(entry.command)}\n`));
    assert.ok(codex.includes(`args = [${entry.args.map((a) => JSON.stringify(a)).join(', ')}]\n`));
    assert.match(codex, /^default_tools_approval_mode = "approve"$/m);
    const bad = await sb.cli.run(['mcp', '--print-config', 'cursor'], { cwd: ws });
    assert.equal(bad.code, 2, 'an unknown host is a usage error');
  });

  it('lists a small set of tools whose schemas and hints come from the contract, and prints its size', async () => {
    const s = await connect(await workspace());
    const { tools } = await s.client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      EXPECTED_TOOLS,
    );
    for (const t of tools) {
      const spec = TOOLS.find((x) => x.name === t.name)!;
      const entry = QUEUE_API[spec.method];
      assert.ok(t.description?.startsWith(entry.doc), `${t.name}: described by its contract entry`);
      assert.deepEqual(
        t.annotations,
        { readOnlyHint: !entry.changesState, destructiveHint: spec.destructive, idempotentHint: entry.safeToRepeat, openWorldHint: false },
        `${t.name}: all four hints, from the contract`,
      );
      assert.equal(t.inputSchema.type, 'object');
    }
    const props = (name: string) => Object.keys(tools.find((t) => t.name === name)!.inputSchema.properties ?? {}).sort();
    // The contract's own fields, with nothing typed twice: the schema of enqueue is EnqueueInput's.
    const shape = (method: 'enqueue' | 'listTasks') => Object.keys((paramsOf(method)[0]!.schema as unknown as { shape: object }).shape).sort();
    assert.deepEqual(props('enqueue'), shape('enqueue').filter((k) => k !== 'pattern' && k !== 'mergeGroup' && k !== 'validate'));
    assert.deepEqual(props('list_tasks'), shape('listTasks'));
    assert.deepEqual(props('get_task'), ['task']);
    assert.deepEqual(props('requeue'), ['idempotencyKey', 'task']);
    assert.deepEqual(props('claim'), ['queue', 'waitSeconds', 'worker']);
    assert.deepEqual(props('complete'), ['data', 'lease', 'summary', 'task'], 'what the worker runner reports is not offered to agents');
    assert.deepEqual(tools.filter((t) => t.annotations?.destructiveHint).map((t) => t.name), ['requeue_failed', 'pause_queue']);
    // The whole surface as agents see it, so that any change of a name, description, schema or hint is a visible diff.
    const snapshot = path.join(__dirname, 'tools.snapshot.json');
    const surface = `${JSON.stringify(tools, null, 2)}\n`;
    if (process.env['SPARKQ_UPDATE_SNAPSHOTS'] === '1') fs.writeFileSync(snapshot, surface);
    assert.equal(surface, fs.readFileSync(snapshot, 'utf8'), 'tools/list differs from tools.snapshot.json: review, then rerun with SPARKQ_UPDATE_SNAPSHOTS=1');
    assert.doesNotMatch(surface, /"\$ref"|"\$defs"|"\$schema"/, 'self-contained schemas: hosts resolve no references');
    const bytes = Buffer.byteLength(JSON.stringify({ tools }), 'utf8');
    const tokens = Math.ceil(bytes / 4);
    console.log(`      tools/list: ${tools.length} tools, ${bytes} bytes, ~${tokens} tokens (bytes/4)`);
    // A budget, so that growing the surface is a decision: 18 tools took ~9k bytes when this was written.
    assert.ok(bytes < 14_000, `tools/list is ${bytes} bytes`);
  });

  it('runs every tool once, with structured results and a short text', async () => {
    const ws = await workspace();
    const s = await connect(ws);
    const session = await callOk<{ name: string }>(s, 'create_session', { name: 'agents', description: 'via MCP' });
    assert.equal(session.name, 'agents');
    const queue = await callOk<Queue>(s, 'create_queue', { name: 'work', session: 'agents', instructions: 'be brief' });
    assert.equal(queue.session, 'agents');
    assert.deepEqual(
      (await callOk<{ sessions: { name: string }[] }>(s, 'list_sessions')).sessions.map((x) => x.name).sort(),
      ['agents', 's1'],
    );
    assert.deepEqual((await callOk<{ queues: Queue[] }>(s, 'list_queues', { session: 'agents' })).queues.map((q) => q.name), ['work']);

    const first = await callOk<Task>(s, 'enqueue', { queue: 'work', tool: 'run-bash', prompt: 'first', idempotencyKey: 'k1' });
    const again = await callOk<Task>(s, 'enqueue', { queue: 'work', tool: 'run-bash', prompt: 'first', idempotencyKey: 'k1' });
    assert.equal(again.id, first.id, 'a repeat with the same idempotency key returns the first task');
    const second = await callOk<Task>(s, 'enqueue', { queue: 'work', tool: 'run-bash', payload: { n: 2 }, after: [first.id] });
    assert.deepEqual(second.after, [first.id]);
    assert.deepEqual(second.waitingOn, [first.id]);

    const yaml = 'id: p1\ntasks:\n  - name: a\n    queue: work\n    tool: run-bash\n    prompt: plan a\n  - name: b\n    queue: work\n    tool: run-bash\n    prompt: plan b\n    after: [a]\n';
    const dry = await callTool(s, 'apply_plan', { yaml, dryRun: true });
    assert.equal(dry.isError, false, dry.text);
    assert.deepEqual(dry.structured['levels'], [['a'], ['b']]);
    assert.match(dry.text, /dry run, nothing enqueued/);
    fs.writeFileSync(path.join(ws, 'plan.yml'), yaml);
    const applied = await callOk<{ plan: string; created: { key: string; task: Task }[] }>(s, 'apply_plan', { file: 'plan.yml' });
    assert.deepEqual(applied.created.map((c) => c.key), ['a', 'b']);
    const reapplied = await callOk<{ created: unknown[]; existing: { key: string }[] }>(s, 'apply_plan', { yaml });
    assert.deepEqual([reapplied.created.length, reapplied.existing.map((e) => e.key)], [0, ['a', 'b']], 'applied once');

    const page1 = await callOk<TaskPage>(s, 'list_tasks', { queue: 'work', limit: 3 });
    assert.equal(page1.tasks.length, 3);
    assert.ok(page1.next !== null);
    const page2 = await callOk<TaskPage>(s, 'list_tasks', { queue: 'work', limit: 3, before: page1.next });
    assert.equal(page2.tasks.length, 1);
    assert.equal((await callOk<TaskPage>(s, 'list_tasks', { plan: 'p1', status: ['queued'] })).tasks.length, 2);
    const detail = await callTool(s, 'get_task', { task: first.id });
    assert.equal(detail.structured['instructions'], 'be brief');
    assert.match(detail.text, new RegExp(`^${first.id} queued`));

    const claimed = await callTool(s, 'claim', { queue: 'work', worker: 'chat' });
    const claim = claimed.structured as unknown as Claim & { claimed: boolean };
    assert.equal(claim.claimed, true);
    assert.equal(claim.task.id, first.id);
    assert.ok(claimed.text.includes(`lease: ${claim.lease}`), 'the text form carries the lease');
    assert.deepEqual(await callOk(s, 'heartbeat', { task: first.id, lease: claim.lease }), { ok: true });
    const done = await callOk<Task>(s, 'complete', { task: first.id, lease: claim.lease, summary: 'did it', data: { files: 2 } });
    assert.deepEqual([done.status, done.result], ['succeeded', { summary: 'did it', data: { files: 2 } }]);

    const c2 = (await callOk<Claim & { claimed: boolean }>(s, 'claim', { queue: 'work' })).task;
    assert.equal(c2.id, second.id, 'the task that waited on the first is claimable now');
    const lease2 = (await callOk<TaskPage>(s, 'list_tasks', { status: 'running' })).tasks.length;
    assert.equal(lease2, 1);
    const failed = await callOk<Task>(s, 'fail', { task: c2.id, error: 'broke' });
    assert.equal(failed.status, 'failed');
    const retried = await callOk<Task>(s, 'requeue', { task: c2.id, idempotencyKey: 'r1' });
    assert.equal(retried.retryOf, c2.id);
    const c3 = (await callOk<Claim & { claimed: boolean }>(s, 'claim', { queue: 'work' })).task;
    await callOk(s, 'fail', { task: c3.id, error: 'broke again' });
    const all = await callOk<{ tasks: Task[] }>(s, 'requeue_failed', { queue: 'work' });
    assert.deepEqual(all.tasks.map((t) => t.retryOf), [c3.id]);

    const paused = await callOk<Queue>(s, 'pause_queue', { queue: 'work', reason: 'lunch' });
    assert.equal(paused.paused, true);
    assert.equal((await callOk<{ claimed: boolean }>(s, 'claim', { queue: 'work' })).claimed, false, 'a paused queue hands out nothing');
    assert.equal((await callOk<Queue>(s, 'resume_queue', { queue: 'work' })).paused, false);
    const status = await callOk<{ counts: { succeeded: number } }>(s, 'status');
    assert.equal(status.counts.succeeded, 1);
    const report = await callTool(s, 'report', { by: 'queue' });
    assert.equal(report.isError, false, report.text);
    assert.match(report.text, /^by queue/);
  });

  it('answers bad input with an error result carrying the message the CLI prints, and keeps serving', async () => {
    const ws = await workspace();
    const s = await connect(ws);
    const cliError = async (args: string[]) => {
      const r = await sb.cli.run(args, { cwd: ws });
      assert.equal(r.code, 1, r.stderr);
      return r.stderr.replace(/^error: /, '').trimEnd();
    };
    const unknownQueue = await callTool(s, 'enqueue', { queue: 'nope', tool: 'run-bash', prompt: 'x' });
    assert.equal(unknownQueue.isError, true);
    assert.equal(unknownQueue.text, await cliError(['enqueue', 'run-bash', '--queue', 'nope', '--prompt', 'x']));
    assert.equal((unknownQueue.structured['error'] as { code: string }).code, 'not-found');

    const t = await callOk<Task>(s, 'enqueue', { queue: 'q1', tool: 'run-bash', prompt: 'x' });
    const c = await callOk<Claim>(s, 'claim', { queue: 'q1' });
    const blank = await callTool(s, 'complete', { task: t.id, lease: c.lease, summary: '   ' });
    assert.equal(blank.isError, true);
    assert.equal(blank.text, await cliError(['complete', t.id, '   ', '--lease', c.lease]));
    assert.match(blank.text, /summary is required/);

    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['enqueue', { queue: 5, tool: 'run-bash', prompt: 'x' }, /^invalid task: queue: /],
      ['enqueue', { queue: 'q1', tool: 'run-bash' }, /a task needs a prompt or a payload/],
      ['list_tasks', { limit: 'ten' }, /^invalid task filter: limit: /],
      ['get_task', {}, /^invalid task: /],
      ['get_task', { task: 'tsk_nothere' }, /tsk_nothere/],
      ['enqueue', { queue: 'q1', tool: 'run-bash', prompt: 'x', colour: 'y' }, /invalid arguments for enqueue: it takes no "colour"; its arguments are queue, tool, /],
      ['complete', { task: t.id, summary: 'ok', stdout: 'runner only' }, /invalid arguments for complete: it takes no "stdout"/],
      ['claim', { queue: 'q1', waitSeconds: 301 }, /waitSeconds: expected a whole number of seconds from 0 to 300/],
      ['apply_plan', {}, /give the plan as yaml/],
      ['apply_plan', { yaml: 'id: p\ntasks:\n  - name: a\n    queue: nope\n    tool: run-bash\n    prompt: x\n' }, /nope/],
      ['apply_plan', { file: '../outside.yml' }, /outside the workspace/],
      ['pause_queue', { queue: 'q1', forSeconds: -1 }, /^invalid pause: forSeconds/],
    ];
    fs.writeFileSync(path.join(sb.dir, 'outside.yml'), 'id: p\ntasks: []\n');
    for (const [tool, args, message] of cases) {
      const r = await callTool(s, tool, args);
      assert.equal(r.isError, true, `${tool} ${JSON.stringify(args)}: ${r.text}`);
      assert.match(r.text, message, `${tool} ${JSON.stringify(args)}`);
      assert.doesNotMatch(r.text, /unexpected failure|internal/, 'an input problem, not a crash');
    }
    assert.equal((await callOk<{ counts: { queued: number } }>(s, 'status')).counts.queued, 0, 'nothing bad was enqueued');
    assert.equal(s.stderr(), '', 'no unexpected failure was logged');
  });

  it('takes 200 concurrent calls', async () => {
    const s = await connect(await workspace());
    const calls = Array.from({ length: 200 }, (_, i) =>
      i % 4 === 3 ? callTool(s, 'list_tasks', { queue: 'q1', limit: 5 }) : callTool(s, 'enqueue', { queue: 'q1', tool: 'run-bash', prompt: `task ${i}` }),
    );
    const results = await Promise.all(calls);
    for (const r of results) assert.equal(r.isError, false, r.text);
    const ids = results.filter((_, i) => i % 4 !== 3).map((r) => (r.structured as unknown as Task).id);
    assert.equal(new Set(ids).size, 150);
    assert.equal((await callOk<{ counts: { queued: number } }>(s, 'status')).counts.queued, 150);
  });

  it('claim with waitSeconds returns as soon as another process enqueues, and a cancelled wait claims nothing', async () => {
    const ws = await workspace();
    const s = await connect(ws);
    const started = Date.now();
    const waiting = callTool(s, 'claim', { queue: 'q1', waitSeconds: 120 }, { timeout: 200_000 });
    const id = (await sb.cli.ok(['enqueue', 'run-bash', '--queue', 'q1', '--prompt', 'wake up'], { cwd: ws })).trim();
    const woke = await waiting;
    assert.equal(woke.isError, false, woke.text);
    assert.equal((woke.structured as unknown as Claim).task.id, id);
    assert.ok(Date.now() - started < 60_000, 'returned on the enqueue, not at the end of the wait');

    const abort = new AbortController();
    const cancelled = callTool(s, 'claim', { queue: 'q1', waitSeconds: 120 }, { signal: abort.signal, timeout: 200_000 });
    // The claim is waiting once a later request on the same stream has been answered (requests are read in order).
    await callOk(s, 'status');
    abort.abort();
    await assert.rejects(cancelled, 'the client gives the cancelled call up');
    await callOk(s, 'status'); // the cancellation has reached the server
    const later = (await sb.cli.ok(['enqueue', 'run-bash', '--queue', 'q1', '--prompt', 'for someone else'], { cwd: ws })).trim();
    const task = await callOk<Task>(s, 'get_task', { task: later });
    assert.equal(task.status, 'queued', 'the cancelled wait did not take the task');
    const next = await callOk<Claim>(s, 'claim', { queue: 'q1', waitSeconds: 5 });
    assert.equal(next.task.id, later);
  });

  it('a killed owner mid-call: each call fails clearly or succeeds once, never twice', async () => {
    const ws = await workspace();
    const serving = await sb.serve({ cwd: ws });
    const s = await connect(ws);
    assert.equal((await callOk<{ owner: { pid: number } }>(s, 'status')).owner.pid, serving.child.pid, 'the server is a client of serve');
    // Claims (not repeatable: no key) in flight beside the enqueues, on a queue of their own.
    await callOk(s, 'create_queue', { name: 'q2', session: 's1' });
    for (let i = 0; i < 20; i++) await callOk(s, 'enqueue', { queue: 'q2', tool: 'run-bash', prompt: `w${i}` });
    const keys = Array.from({ length: 60 }, (_, i) => `key-${i}`);
    let answered = 0;
    let killed = false;
    const answer = (r: ToolResult) => {
      // Killed while most calls are still in flight.
      if (++answered === 5 && !killed) {
        killed = true;
        serving.child.kill('SIGKILL');
      }
      return r;
    };
    const claims: Promise<ToolResult>[] = [];
    const calls = keys.map(async (key, i) => {
      if (i % 3 === 0) claims.push(callTool(s, 'claim', { queue: 'q2', worker: 'w' }).then(answer));
      return answer(await callTool(s, 'enqueue', { queue: 'q1', tool: 'run-bash', prompt: `p${i}`, idempotencyKey: key }));
    });
    const results = await Promise.all(calls);
    assert.ok(killed);
    const claimed = await Promise.all(claims);
    for (const r of claimed.filter((x) => x.isError)) {
      assert.match(r.text, /went away while claim was in flight, so it may or may not have taken effect/, `a clear failure: ${r.text}`);
    }
    const claimedIds = claimed.filter((r) => !r.isError && r.structured['claimed'] === true).map((r) => (r.structured as unknown as Claim).task.id);
    assert.equal(new Set(claimedIds).size, claimedIds.length, 'no task was handed to two claims');
    const ok = results.filter((r) => !r.isError);
    for (const r of results.filter((x) => x.isError)) {
      assert.match(r.text, /owner|went away|unavailable|reach/i, `a clear failure: ${r.text}`);
    }
    // Repeating every call with its key: the ones that succeeded return their task, the others make theirs once.
    const again = await Promise.all(keys.map((key, i) => callOk<Task>(s, 'enqueue', { queue: 'q1', tool: 'run-bash', prompt: `p${i}`, idempotencyKey: key })));
    for (const r of ok) {
      const t = r.structured as unknown as Task;
      assert.equal(again[keys.indexOf(t.idempotencyKey!)]!.id, t.id, 'a call that succeeded made the one task its key names');
    }
    const owner = (await callOk<{ owner: { pid: number } }>(s, 'status')).owner.pid;
    assert.notEqual(owner, serving.child.pid, 'the calls after the kill were served by the next owner');
    const page = await callOk<TaskPage>(s, 'list_tasks', { queue: 'q1', limit: 1000 });
    assert.equal(page.tasks.length, keys.length, 'one task per key: none doubled, none lost');
    assert.deepEqual(new Set(page.tasks.map((t) => t.idempotencyKey)), new Set(keys));
    const running = (await callOk<TaskPage>(s, 'list_tasks', { queue: 'q2', status: 'running', limit: 100 })).tasks.map((t) => t.id);
    for (const id of claimedIds) assert.ok(running.includes(id), `${id}, claimed, is running`);
    console.log(
      `      owner killed after 5 answers: enqueues ${ok.length}/${keys.length} succeeded, claims ${claimedIds.length}/${claims.length} succeeded, ` +
        `${claimed.filter((r) => r.isError).length} failed clearly (may have run)`,
    );
  });
});
