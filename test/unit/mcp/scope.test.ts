import { strict as assert } from 'node:assert';
import type { Claim, Task, TaskDetail, TaskPage } from '../../../src/core/model';
import { SCOPED_TOOL_NAMES } from '../../../src/mcp/scope';
import { callOk, callTool, connectSparkqMcp, mcpSandbox } from '../../support/mcpClient';

/*
 * `sparkq mcp --queue Q [--task T]`, the server an agent inside a task gets: every tool limited to one queue, a call on
 * another queue refused as a tool error that changes nothing, and with --task the agent's own task and lease as the
 * defaults of heartbeat/complete/fail. Driven over stdio by the SDK's client, with the CLI beside it.
 */

describe('sparkq mcp --queue: a server limited to one queue', function () {
  this.timeout(120_000);
  const { sb, workspace, track } = mcpSandbox('sparkq-mcp-scope-', ['q1', 'q2']);

  const scoped = async (ws: string, args: string[], env: Record<string, string> = {}) =>
    track(await connectSparkqMcp(sb.cli, { cwd: ws, args: ['--queue', ...args], env }));
  const tasksOf = async (ws: string, queue: string) => (await sb.cli.json<Task[]>(['tasks', '--queue', queue], { cwd: ws })).map((t) => t.id);

  it('lists the few tools an agent in a task needs, no resources, and instructions that name its queue', async () => {
    const ws = await workspace();
    const s = await scoped(ws, ['q1']);
    const { tools } = await s.client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      [...SCOPED_TOOL_NAMES],
    );
    assert.equal(s.client.getServerCapabilities()?.resources, undefined, 'no resources: they would read every queue');
    assert.match(s.client.getInstructions() ?? '', /limited to queue q1 \(que_\w+\)/);
    const enqueue = tools.find((t) => t.name === 'enqueue')!;
    assert.ok(!(enqueue.inputSchema.required ?? []).includes('queue'), 'queue is optional: it defaults to q1');
    assert.match(enqueue.description ?? '', /Only on queue q1/);
    const bytes = Buffer.byteLength(JSON.stringify({ tools }), 'utf8');
    console.log(`      scoped tools/list: ${tools.length} tools, ${bytes} bytes, ~${Math.ceil(bytes / 4)} tokens (bytes/4)`);
    assert.ok(bytes < 6_000, `scoped tools/list is ${bytes} bytes`);
  });

  it('enqueues on its queue only: another queue, or a task of another queue in after, is a tool error and nothing is added', async () => {
    const ws = await workspace();
    const other = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q2', '--prompt', 'elsewhere'], { cwd: ws })).id;
    const s = await scoped(ws, ['q1']);

    const byDefault = await callOk<Task>(s, 'enqueue', { tool: 'run-bash', prompt: 'follow-up' });
    assert.equal(byDefault.queue, 'q1');
    const byName = await callOk<Task>(s, 'enqueue', { queue: 'q1', tool: 'run-bash', prompt: 'named', after: [byDefault.id] });
    assert.deepEqual(byName.after, [byDefault.id]);
    const byId = await callOk<Task>(s, 'enqueue', { queue: byDefault.queueId, tool: 'run-bash', prompt: 'by id' });
    assert.equal(byId.queueId, byDefault.queueId);

    const elsewhere = await callTool(s, 'enqueue', { queue: 'q2', tool: 'run-bash', prompt: 'sneaky' });
    assert.equal(elsewhere.isError, true);
    assert.match(elsewhere.text, /^this SparkQ server is limited to queue q1 \(que_\w+\): enqueue on queue "q2" is refused; leave queue out, or give "q1"$/);
    assert.equal((elsewhere.structured['error'] as { code: string }).code, 'invalid-input');
    const waitsElsewhere = await callTool(s, 'enqueue', { tool: 'run-bash', prompt: 'sneaky', after: [other] });
    assert.equal(waitsElsewhere.isError, true);
    assert.match(waitsElsewhere.text, new RegExp(`enqueue after: task ${other} is not a task of this queue`));

    assert.deepEqual(await tasksOf(ws, 'q2'), [other], 'nothing was added to q2');
    assert.deepEqual((await tasksOf(ws, 'q1')).sort(), [byDefault.id, byName.id, byId.id].sort());
  });

  it('reads only its queue: list_tasks is limited to it, another queue or a task of it is a tool error', async () => {
    const ws = await workspace();
    const mine = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q1', '--prompt', 'mine'], { cwd: ws })).id;
    const theirs = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q2', '--prompt', 'theirs'], { cwd: ws })).id;
    const s = await scoped(ws, ['q1']);

    assert.deepEqual((await callOk<TaskPage>(s, 'list_tasks', {})).tasks.map((t) => t.id), [mine]);
    assert.deepEqual((await callOk<TaskPage>(s, 'list_tasks', { session: 's1', status: 'queued' })).tasks.map((t) => t.id), [mine]);
    const listElsewhere = await callTool(s, 'list_tasks', { queue: 'q2' });
    assert.equal(listElsewhere.isError, true);
    assert.match(listElsewhere.text, /list_tasks on queue "q2" is refused/);
    assert.equal((await callOk<TaskDetail>(s, 'get_task', { task: mine })).id, mine);
    const readElsewhere = await callTool(s, 'get_task', { task: theirs });
    assert.equal(readElsewhere.isError, true);
    assert.match(readElsewhere.text, new RegExp(`get_task: task ${theirs} is not a task of this queue`));
    assert.doesNotMatch(readElsewhere.text, /theirs/, 'nothing of the other task is told');
  });

  it('with --task: heartbeat and complete default to the own task and its lease from $SPARKQ_LEASE; other tasks are refused', async () => {
    const ws = await workspace();
    const own = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q1', '--prompt', 'own'], { cwd: ws })).id;
    const claim = await sb.cli.json<Claim>(['claim', '--queue', 'q1'], { cwd: ws });
    assert.equal(claim.task.id, own);
    const sibling = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q1', '--prompt', 'sibling'], { cwd: ws })).id;
    const s = await scoped(ws, ['q1', '--task', own], { SPARKQ_LEASE: claim.lease, SPARKQ_TASK_ID: own });
    const complete = (await s.client.listTools()).tools.find((t) => t.name === 'complete')!;
    assert.deepEqual(complete.inputSchema.required, ['summary'], 'task and lease are filled in');

    assert.deepEqual(await callOk(s, 'heartbeat', {}), { ok: true });
    const notMine = await callTool(s, 'complete', { task: sibling, summary: 'not mine' });
    assert.equal(notMine.isError, true);
    assert.match(notMine.text, new RegExp(`complete is for this agent's own task ${own} only, not "${sibling}"`));
    const done = await callOk<Task>(s, 'complete', { summary: 'Done through MCP', data: { files: ['a.ts'], ok: true } });
    assert.deepEqual([done.id, done.status, done.result], [own, 'succeeded', { summary: 'Done through MCP', data: { files: ['a.ts'], ok: true } }]);
    const stored = await sb.cli.json<Task>(['task', own], { cwd: ws });
    assert.deepEqual(stored.result, { summary: 'Done through MCP', data: { files: ['a.ts'], ok: true } });
    assert.equal((await sb.cli.json<Task>(['task', sibling], { cwd: ws })).status, 'queued');
  });

  it('with --task on a validation task: verdict defaults to it and its lease, and passes the checked task', async () => {
    const ws = await workspace();
    const checked = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q1', '--prompt', 'work', '--validate-with', 'llm-claude'], { cwd: ws })).id;
    const work = await sb.cli.json<Claim>(['claim', '--queue', 'q1'], { cwd: ws });
    await sb.cli.ok(['complete', checked, 'did the work', '--lease', work.lease], { cwd: ws });
    const v = await sb.cli.json<Claim>(['claim', '--queue', 'q1'], { cwd: ws });
    assert.equal(v.task.validates, checked);
    const s = await scoped(ws, ['q1', '--task', v.task.id], { SPARKQ_LEASE: v.lease, SPARKQ_TASK_ID: v.task.id });
    const verdict = (await s.client.listTools()).tools.find((t) => t.name === 'verdict')!;
    assert.deepEqual(verdict.inputSchema.required, ['verdict'], 'task and lease are filled in');
    await callOk<Task>(s, 'verdict', { verdict: 'pass', feedback: 'checked through MCP' });
    const stored = await sb.cli.json<Task>(['task', checked], { cwd: ws });
    assert.equal(stored.validation?.status, 'passed');
    assert.equal(stored.validation?.feedback, 'checked through MCP');
  });

  it('refuses a scope that does not exist or does not fit, before serving', async () => {
    const ws = await workspace();
    const inQ2 = (await sb.cli.json<Task>(['enqueue', 'run-bash', '--queue', 'q2', '--prompt', 'x'], { cwd: ws })).id;
    const noQueue = await sb.cli.run(['mcp', '--queue', 'nope'], { cwd: ws });
    assert.equal(noQueue.code, 1);
    assert.match(noQueue.stderr, /^error: .*nope/);
    const taskAlone = await sb.cli.run(['mcp', '--task', inQ2], { cwd: ws });
    assert.equal(taskAlone.code, 1);
    assert.match(taskAlone.stderr, /^error: --task needs --queue/);
    const wrongQueue = await sb.cli.run(['mcp', '--queue', 'q1', '--task', inQ2], { cwd: ws });
    assert.equal(wrongQueue.code, 1);
    assert.match(wrongQueue.stderr, new RegExp(`^error: task ${inQ2} is on queue q2, not on q1`));
    const printed = JSON.parse(await sb.cli.ok(['mcp', '--print-config', 'claude', '--queue', 'q1'], { cwd: ws })) as { mcpServers: { sparkq: { args: string[] } } };
    assert.deepEqual(printed.mcpServers.sparkq.args.slice(1), ['mcp', '--workspace', ws, '--queue', 'q1']);
  });
});
