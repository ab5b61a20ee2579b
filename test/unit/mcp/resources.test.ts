import { strict as assert } from 'node:assert';
import type { ClaimJson } from '../../../src/cli/json';
import type { Queue, Task } from '../../../src/core/model';
import { queueUri, taskUri } from '../../../src/mcp/resources';
import { callOk, mcpSandbox, readJson, resourceUpdates } from '../../support/mcpClient';

/*
 * Queues and tasks as MCP resources, through the SDK's own client over stdio: read as the tools give them, and
 * subscribed to, with the changes made by other processes (the CLI) as an orchestrator's workers would make them.
 * Nothing here sleeps: "no notice for X" is shown by a later notice for Y, since notices go out in the order of the
 * changes (a notice for X would have come first).
 */

describe('sparkq mcp: queues and tasks as resources', function () {
  this.timeout(120_000);
  const { sb, workspace, connect } = mcpSandbox('sparkq-mcp-res-', ['q1', 'q2']);

  const enqueue = async (ws: string, queue: string, prompt: string) => (await sb.cli.ok(['enqueue', 'run-bash', '--queue', queue, '--prompt', prompt], { cwd: ws })).trim();
  const claim = (ws: string, queue: string) => sb.cli.json<ClaimJson>(['claim', '--queue', queue], { cwd: ws });

  it('advertises subscriptions, lists the active queues (not the tasks) and reads both as the tools give them', async () => {
    const ws = await workspace();
    const s = await connect(ws);
    assert.deepEqual(s.client.getServerCapabilities()?.resources, { subscribe: true, listChanged: false });
    assert.deepEqual((await s.client.listTools()).tools.length, 19, 'the tools are as they were');

    const { resources } = await s.client.listResources();
    assert.deepEqual(resources.map((r) => r.uri).sort(), ['sparkq://queue/q1', 'sparkq://queue/q2']);
    for (const r of resources) assert.equal(r.mimeType, 'application/json');
    const { resourceTemplates } = await s.client.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), ['sparkq://queue/{queue}', 'sparkq://task/{task}']);

    const task = await callOk<Task>(s, 'enqueue', { queue: 'q1', tool: 'run-bash', prompt: 'read me' });
    assert.ok(!(await s.client.listResources()).resources.some((r) => r.uri.startsWith('sparkq://task/')), 'tasks are not listed');
    assert.deepEqual(await readJson(s, taskUri(task.id)), await callOk(s, 'get_task', { task: task.id }));
    const listed = (await callOk<{ queues: Queue[] }>(s, 'list_queues')).queues.find((q) => q.name === 'q1')!;
    assert.deepEqual(await readJson(s, queueUri('q1')), listed);
    assert.deepEqual(await readJson(s, queueUri(listed.id)), listed, 'a queue by id reads the same');
    assert.equal(listed.counts.queued, 1);

    await callOk(s, 'create_queue', { name: 'Back End', session: 's1' });
    assert.equal((await readJson<Queue>(s, queueUri('Back End'))).name, 'Back End', 'a name with a space, percent-encoded');
    assert.ok((await s.client.listResources()).resources.some((r) => r.uri === 'sparkq://queue/Back%20End'));
  });

  it('answers a missing task or queue with a clear error, for a read and for a subscription', async () => {
    const s = await connect(await workspace());
    await assert.rejects(s.client.readResource({ uri: 'sparkq://task/tsk_nothere' }), (e: Error & { code?: number }) => {
      assert.equal(e.code, -32602, 'resource not found, as the SDK answers it');
      assert.match(e.message, /tsk_nothere/);
      assert.doesNotMatch(e.message, /internal|unexpected/i);
      return true;
    });
    await assert.rejects(s.client.readResource({ uri: queueUri('nope') }), /nope/);
    await assert.rejects(s.client.subscribeResource({ uri: 'sparkq://task/tsk_nothere' }), /tsk_nothere/);
    await assert.rejects(s.client.readResource({ uri: 'sparkq://session/s1' }), /not found/i);
    assert.equal(s.stderr(), '', 'no unexpected failure was logged');
  });

  it('tells a subscriber that its task finished when another process completes it, and nothing about other tasks', async () => {
    const ws = await workspace();
    const mine = await enqueue(ws, 'q1', 'mine');
    const other = await enqueue(ws, 'q1', 'other');
    const [c1, c2] = [await claim(ws, 'q1'), await claim(ws, 'q1')];
    assert.deepEqual([c1.task.id, c2.task.id], [mine, other]);
    const s = await connect(ws);
    const updates = resourceUpdates(s);
    await s.client.subscribeResource({ uri: taskUri(mine) });

    await sb.cli.ok(['complete', other, 'not watched', '--lease', c2.lease], { cwd: ws });
    await sb.cli.ok(['complete', mine, 'done', '--lease', c1.lease], { cwd: ws });
    await updates.until(taskUri(mine));
    assert.deepEqual(updates.uris, [taskUri(mine)], 'exactly the update for the subscribed task');
    const read = await readJson<Task>(s, taskUri(mine));
    assert.deepEqual([read.status, read.result?.summary], ['succeeded', 'done']);

    // Unsubscribed: a change of that task says nothing, while a subscribed queue hears of the same change.
    const third = await enqueue(ws, 'q2', 'third');
    await s.client.subscribeResource({ uri: taskUri(third) });
    await s.client.unsubscribeResource({ uri: taskUri(third) });
    await s.client.subscribeResource({ uri: queueUri('q2') });
    await claim(ws, 'q2');
    await updates.until(queueUri('q2'));
    assert.deepEqual(updates.uris, [taskUri(mine), queueUri('q2')]);
  });

  it('hears of changes the same way when another process owns the queue, and says "read again" when that owner dies', async () => {
    const ws = await workspace();
    const serving = await sb.serve({ cwd: ws });
    const s = await connect(ws);
    assert.equal((await callOk<{ owner: { pid: number } }>(s, 'status')).owner.pid, serving.child.pid, 'the server is a client of serve');
    const updates = resourceUpdates(s);
    const id = await enqueue(ws, 'q1', 'watched');
    await s.client.subscribeResource({ uri: taskUri(id) });
    const c = await claim(ws, 'q1');
    await updates.until(taskUri(id));
    await sb.cli.ok(['complete', id, 'done', '--lease', c.lease], { cwd: ws });
    await updates.until(taskUri(id), 2);
    assert.deepEqual(updates.uris, [taskUri(id), taskUri(id)], 'claimed, then completed');
    assert.equal((await readJson<Task>(s, taskUri(id))).status, 'succeeded');

    // What changed between the owner's death and the next owner reached no event: subscribers are told to read again.
    serving.child.kill('SIGKILL');
    await updates.until(taskUri(id), 3);
    assert.notEqual((await callOk<{ owner: { pid: number } }>(s, 'status')).owner.pid, serving.child.pid);
  });

  it('tells a queue subscriber when a task is enqueued on it, once for a burst, and nothing about other queues', async () => {
    const ws = await workspace();
    const s = await connect(ws);
    const updates = resourceUpdates(s);
    const q1 = queueUri('q1');
    await s.client.subscribeResource({ uri: q1 });

    await enqueue(ws, 'q2', 'elsewhere');
    await enqueue(ws, 'q1', 'here');
    await updates.until(q1);
    assert.deepEqual(updates.uris, [q1], 'q2 was not subscribed');
    assert.equal((await readJson<Queue>(s, q1)).counts.queued, 1);

    // A plan of 20 tasks is one change of the queue: one notice, not twenty.
    const tasks = Array.from({ length: 20 }, (_, i) => `  - name: t${i}\n    queue: q1\n    tool: run-bash\n    prompt: p${i}\n`).join('');
    await callOk(s, 'apply_plan', { yaml: `id: burst\ntasks:\n${tasks}` });
    await updates.until(q1, 2);
    // The next change is a notice of its own: had the plan sent more than one, they would have come before it.
    await enqueue(ws, 'q1', 'after the burst');
    await updates.until(q1, 3);
    assert.deepEqual(updates.uris, [q1, q1, q1]);
    assert.equal((await readJson<Queue>(s, q1)).counts.queued, 22);
  });
});
