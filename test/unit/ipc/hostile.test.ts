import { strict as assert } from 'node:assert';
import { LIMITS } from '../../../src/core/constants';
import { type ErrorCode, isSparkqError } from '../../../src/core/errors';
import type { QueueService } from '../../../src/core/queue/service';
import type { JsonValue } from '../../../src/core/model';
import { parsePlan } from '../../../src/core/plan';
import { wellFormedProblem } from '../../../src/core/wellFormed';
import { paramsProblem } from '../../../src/ipc/protocol';
import { type IpcOwner, type RawConnection, frame, rawConnect, startIpcOwner, within } from '../../support/ipcHarness';
import { eachTestQueue } from '../../support/queue';

async function rejectsWith(p: () => unknown, code: ErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(
    Promise.resolve().then(p),
    (e: unknown) => {
      assert.ok(isSparkqError(e, code), `expected a ${code} error, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

/** `[[[…]]]` `depth` levels deep, built without recursion so that a test can go far beyond the stack. */
function nestedArrays(depth: number, inner: JsonValue = 1): JsonValue {
  let v: JsonValue = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}
function nestedObjects(depth: number, inner: unknown = 1): unknown {
  let v: unknown = inner;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('wellFormedProblem: malformed Unicode and deep nesting, found without recursion', () => {
  it('passes well-formed values of every kind, surrogate pairs included', () => {
    for (const v of [null, undefined, true, 0, -1.5, '', 'plain', 'emoji 😀 and 𝄞', [], {}, [1, 'a', null, { b: ['😀'] }], { '😀': { k: [[]] } }]) {
      assert.equal(wellFormedProblem(v, 'payload', 64), null, JSON.stringify(v));
    }
  });

  it('refuses a lone surrogate anywhere in a string, naming the field, the unit and its position', () => {
    const cases: [string, number, string][] = [
      ['a\ud800b', 1, '\\ud800'],
      ['x\udbff', 1, '\\udbff'],
      ['\udc00', 0, '\\udc00'],
      ['😀\udc00\ud800', 2, '\\udc00'], // a low half before a high half is not a pair
    ];
    for (const [s, at, unit] of cases) {
      const p = wellFormedProblem(s, 'prompt', 64);
      assert.ok(p !== null, JSON.stringify(s));
      assert.ok(p.startsWith('prompt is not well-formed Unicode'), p);
      assert.ok(p.includes(`${unit} at character ${at}`), p);
    }
  });

  it('names the way down to a bad string or key inside arrays and objects', () => {
    assert.match(wellFormedProblem({ files: ['ok', 'b\ud800'] }, 'data', 64)!, /^data\.files\[1\] is not well-formed Unicode/);
    assert.match(wellFormedProblem({ 'odd key': { x: '\udfff' } }, 'payload', 64)!, /^payload\["odd key"\]\.x is not/);
    const badKey = wellFormedProblem({ ok: 1, ['k\ud800']: 2 }, 'payload', 64)!;
    assert.match(badKey, /^payload\["k\\ud800"\] \(a key\) is not well-formed Unicode/);
    assert.equal(wellFormedProblem(badKey, 'message', 1), null, 'the message itself is well-formed: the bad key is quoted escaped');
    assert.match(wellFormedProblem(['\ud800'], '', 64)!, /^\[0\] is not/);
  });

  it('allows exactly maxDepth levels and refuses one more, naming the limit and where', () => {
    for (const make of [nestedArrays, nestedObjects]) {
      assert.equal(wellFormedProblem(make(64), 'payload', 64), null);
      const p = wellFormedProblem(make(65), 'payload', 64);
      assert.ok(p !== null);
      assert.match(p, /^payload nests arrays and objects more than 64 levels deep \(at payload(\[0\]|\.a)+\); the limit is 64/);
    }
    assert.equal(wellFormedProblem([[], [[]], { a: [] }], 'x', 3), null, 'depth is the deepest branch, not the sum');
    assert.match(wellFormedProblem([[], [[[]]]], 'x', 3)!, /more than 3 levels/);
    assert.match(wellFormedProblem([], 'x', 0)!, /more than 0 levels/);
    assert.equal(wellFormedProblem('text', 'x', 0), null, 'a scalar is level 0');
  });

  it('walks 100,000 levels of arrays or objects without overflowing the stack, and quotes a short path', () => {
    for (const make of [nestedArrays, nestedObjects]) {
      const p = wellFormedProblem(make(100_000), 'data', 64);
      assert.ok(p !== null);
      assert.ok(p.length < 600, `one short line, not ${p.length} characters`);
      assert.match(p, /more than 64 levels/);
    }
    // The stack itself would fail long before: what the walker replaces.
    assert.throws(() => JSON.stringify(nestedArrays(100_000)), RangeError);
  });

  it('ends on objects that refer to themselves or share children (in-process callers)', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    assert.match(wellFormedProblem(cyclic, 'payload', 64)!, /more than 64 levels/);
    // 2^40 paths through 40 shared objects: bounded by the count of values looked at, not by memory.
    let shared: unknown = 'leaf';
    for (let i = 0; i < 40; i++) shared = [shared, shared];
    assert.match(wellFormedProblem(shared, 'payload', 64)!, /holds more than \d+ values/);
  });

  it('finds the first problem in document order', () => {
    assert.match(wellFormedProblem({ a: ['ok', nestedArrays(10)], b: '\ud800' }, 'p', 5)!, /^p nests .* \(at p\.a\[1\]/);
    assert.match(wellFormedProblem({ a: '\ud800', b: nestedArrays(10) }, 'p', 5)!, /^p\.a is not well-formed/);
  });
});

describe('the queue refuses malformed Unicode and over-deep JSON as invalid input, changing nothing', () => {
  let q: QueueService;
  eachTestQueue(
    (e) => (q = e.q),
    () => q,
  );

  it('refuses a lone surrogate in any text field, naming it, instead of storing U+FFFD', async () => {
    await rejectsWith(() => q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a\ud800b' }), 'invalid-input', /^invalid task: prompt is not well-formed Unicode: a lone UTF-16 surrogate \\ud800 at character 1/);
    await rejectsWith(() => q.enqueue({ queue: 'q', tool: 'run-bash', payload: { note: ['x\udfff'] } }), 'invalid-input', /^invalid task: payload\.note\[0\] is not well-formed/);
    await rejectsWith(() => q.enqueue({ queue: 'q', tool: 'run-bash', payload: { ['k\ud800']: 1 } }), 'invalid-input', /^invalid task: payload\["k\\ud800"\] \(a key\)/);
    await rejectsWith(() => q.createQueue({ name: 'b', session: 's', instructions: 'go \udbff' }), 'invalid-input', /^invalid queue: instructions is not well-formed/);
    assert.equal(q.listTasks().tasks.length, 0, 'nothing was enqueued');
  });

  it('refuses two session names that differ only in a lone surrogate, rather than calling the second a conflict', async () => {
    await rejectsWith(() => q.createSession({ name: 'x\udbff' }), 'invalid-input', /^invalid session: name is not well-formed/);
    await rejectsWith(() => q.createSession({ name: 'x\ud800' }), 'invalid-input', /^invalid session: name is not well-formed/);
    assert.deepEqual(q.listSessions().map((s) => s.name), ['s']);
  });

  it('refuses result data with a lone surrogate and leaves the task running', async () => {
    await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'p' });
    const claim = (await q.claim({ queue: 'q' }))!;
    await rejectsWith(() => q.complete({ task: claim.task.id, lease: claim.lease, summary: 'done', data: { files: ['a', '\ud800'] } }), 'invalid-input', /^invalid completion: data\.files\[1\]/);
    await rejectsWith(() => q.complete({ task: claim.task.id, lease: claim.lease, summary: 'done \udc00' }), 'invalid-input', /^invalid completion: summary is not well-formed/);
    await rejectsWith(() => q.fail({ task: claim.task.id, lease: claim.lease, error: 'bad \udc00' }), 'invalid-input', /^invalid failure: error is not well-formed/);
    assert.equal(q.getTask(claim.task.id).status, 'running');
  });

  it(`refuses payload and data nested deeper than ${LIMITS.jsonDepth} levels, naming the limit, and stores exactly ${LIMITS.jsonDepth}`, async () => {
    for (const deep of [nestedArrays(3_000), nestedObjects(3_000), nestedArrays(LIMITS.jsonDepth + 1)]) {
      await rejectsWith(() => q.enqueue({ queue: 'q', tool: 'run-bash', payload: deep }), 'invalid-input', new RegExp(`^invalid task: payload nests arrays and objects more than ${LIMITS.jsonDepth} levels deep`));
    }
    const atLimit = nestedObjects(LIMITS.jsonDepth, 'leaf');
    const t = await q.enqueue({ queue: 'q', tool: 'run-bash', payload: atLimit });
    assert.deepEqual(q.getTask(t.id).payload, atLimit);
    const claim = (await q.claim({ queue: 'q' }))!;
    await rejectsWith(() => q.complete({ task: claim.task.id, lease: claim.lease, summary: 'done', data: nestedArrays(100_000) }), 'invalid-input', /^invalid completion: data nests arrays and objects more than 64 levels deep/);
    await rejectsWith(() => q.fail({ task: claim.task.id, lease: claim.lease, error: 'e', data: nestedObjects(3_000) }), 'invalid-input', /^invalid failure: data nests/);
    const done = await q.complete({ task: claim.task.id, lease: claim.lease, summary: 'done', data: nestedArrays(LIMITS.jsonDepth) });
    assert.deepEqual(q.getTask(done.id).result?.data, nestedArrays(LIMITS.jsonDepth));
  });

  it(`lets a plan's payloads nest exactly as deep as an enqueue's (${LIMITS.jsonDepth} levels), at the boundary and in the queue`, async () => {
    const plan = (depth: number) => ({
      plan: { id: `deep-${depth}`, description: null, tasks: [{ key: 'a', queue: 'q', tool: 'run-bash', payload: nestedArrays(depth), after: [] }] },
    });
    assert.equal(paramsProblem('applyPlan', [plan(LIMITS.jsonDepth)]), null);
    assert.match(paramsProblem('applyPlan', [plan(LIMITS.jsonDepth + 1)]) ?? '', new RegExp(`more than ${LIMITS.jsonDepth} levels deep`));
    assert.equal((await q.applyPlan(plan(LIMITS.jsonDepth))).created.length, 1);
    await rejectsWith(() => q.applyPlan(plan(LIMITS.jsonDepth + 1)), 'invalid-input', new RegExp(`more than ${LIMITS.jsonDepth} levels deep`));
    // A plan file says the same before anything is sent.
    const yaml = `id: f\ntasks:\n  - { name: a, queue: q, tool: run-bash, payload: ${JSON.stringify(nestedArrays(LIMITS.jsonDepth + 1))} }\n`;
    assert.throws(() => parsePlan(yaml, 'plan.yml', { tools: ['run-bash'] }), new RegExp(`nested more than ${LIMITS.jsonDepth} levels deep`));
    assert.doesNotThrow(() => parsePlan(yaml.replace(JSON.stringify(nestedArrays(LIMITS.jsonDepth + 1)), JSON.stringify(nestedArrays(LIMITS.jsonDepth))), 'plan.yml', { tools: ['run-bash'] }));
  });
});

describe('through IPC: raw frames with lone surrogates and deep JSON get invalid-input, never internal', function () {
  this.timeout(60_000);
  let o: IpcOwner;
  beforeEach(async () => (o = await startIpcOwner()));
  afterEach(() => o.stop());

  async function ask(json: string): Promise<Record<string, unknown>> {
    const c = await rawConnect(o.socketPath);
    try {
      c.write(frame(JSON.stringify({ t: 'hello', token: o.token, client: 'hostile' })));
      assert.equal((await c.next())['t'], 'welcome');
      c.write(frame(json));
      return await c.next();
    } finally {
      c.socket.destroy();
    }
  }

  it('refuses "a\\ud800b" as a prompt (a JSON escape, as a hostile client writes it) and stores nothing', async () => {
    const res = await ask(String.raw`{"t":"req","id":1,"method":"enqueue","params":[{"queue":"q","tool":"run-bash","prompt":"a\ud800b"}]}`);
    assert.equal(res['ok'], false);
    const error = res['error'] as { code: string; message: string };
    assert.equal(error.code, 'invalid-input', error.message);
    assert.match(error.message, /prompt is not well-formed Unicode/);
    assert.equal(o.q.listTasks().tasks.length, 0);
  });

  it('refuses 3,000 nested arrays or objects in a payload as invalid-input naming the limit', async () => {
    for (const [open, close] of [['[', ']'], ['{"a":', '}']] as const) {
      const payload = `${open.repeat(3_000)}1${close.repeat(3_000)}`;
      const res = await ask(`{"t":"req","id":2,"method":"enqueue","params":[{"queue":"q","tool":"run-bash","payload":${payload}}]}`);
      const error = res['error'] as { code: string; message: string };
      assert.equal(error.code, 'invalid-input', error.message);
      assert.match(error.message, /more than 64 levels deep/);
    }
    assert.equal(o.q.listTasks().tasks.length, 0);
  });
});

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('through IPC: a peer without the token gets a tiny budget', function () {
  this.timeout(60_000);
  let o: IpcOwner;
  afterEach(() => o.stop());

  const hello = (token: string) => frame(JSON.stringify({ t: 'hello', token, client: 'hostile' }));
  const header = (length: number) => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(length, 0);
    return h;
  };

  it('closes a connection whose first frame declares more than 4 KiB, before reading its body', async () => {
    o = await startIpcOwner();
    const c = await rawConnect(o.socketPath);
    c.write(header(8 * 1024 * 1024));
    c.write(Buffer.alloc(64 * 1024, '['));
    assert.ok(await within(c.closed, 5_000), 'closed at once, not after the hello timeout');
    assert.ok(o.logs.some((l) => /over the 4096-byte limit for the first frame \(the hello\)/.test(l)), o.logs.join('\n'));
    assert.equal(o.server.connections, 0);
  });

  it('accepts a hello followed at once by a large request in the same write', async () => {
    o = await startIpcOwner();
    const c = await rawConnect(o.socketPath);
    const prompt = 'p'.repeat(200 * 1024);
    c.write(Buffer.concat([hello(o.token), frame(JSON.stringify({ t: 'req', id: 1, method: 'enqueue', params: [{ queue: 'q', tool: 'run-bash', prompt }] }))]));
    assert.equal((await c.next())['t'], 'welcome');
    const res = await c.next();
    assert.equal(res['ok'], true, JSON.stringify(res).slice(0, 300));
    assert.equal(o.q.listTasks().tasks[0]?.prompt, prompt);
    c.socket.destroy();
  });

  it('keeps at most 32 connections waiting for their hello; the next is closed on arrival, and room comes back', async () => {
    o = await startIpcOwner({ helloTimeoutMs: 60_000 });
    const waiting: RawConnection[] = [];
    for (let i = 0; i < 32; i++) waiting.push(await rawConnect(o.socketPath));
    await waitFor(() => o.server.connections === 32, '32 connections');
    const extra = await rawConnect(o.socketPath);
    assert.ok(await within(extra.closed, 5_000), 'the 33rd is closed');
    assert.ok(o.logs.some((l) => /already 32 connections waiting for their hello \(the limit\)/.test(l)), o.logs.join('\n'));
    // One of them authenticates: it stays, and makes room for one more newcomer.
    waiting[0]!.write(hello(o.token));
    assert.equal((await waiting[0]!.next())['t'], 'welcome');
    const next = await rawConnect(o.socketPath);
    next.write(hello(o.token));
    assert.equal((await next.next())['t'], 'welcome');
    // Those that leave give their place back too.
    for (const c of waiting.slice(1, 11)) c.socket.destroy();
    await waitFor(() => o.server.connections === 32 - 10 + 1, 'the closed ones forgotten');
    const more = await Promise.all(Array.from({ length: 10 }, () => rawConnect(o.socketPath)));
    await waitFor(() => o.server.connections === 33, 'ten more waiting');
    assert.ok(more.every((c) => !c.isClosed()));
    for (const c of [...waiting, next, ...more]) c.socket.destroy();
  });

  it('survives 32 connections that each send 8 MiB of nested brackets before any hello, and keeps serving', async () => {
    o = await startIpcOwner();
    const body = Buffer.alloc(8 * 1024 * 1024, '[');
    const conns = await Promise.all(Array.from({ length: 32 }, () => rawConnect(o.socketPath)));
    for (const c of conns) {
      c.write(header(body.length));
      c.write(body);
    }
    for (const c of conns) assert.ok(await within(c.closed, 10_000), 'each is closed');
    // Each was refused on its 4-byte header, so none of the 8 MiB was kept or parsed (parsing it cost the owner
    // 15-20 MB of memory per connection). The owner's RSS, measured with a real `sparkq serve`, is in issue 22.
    assert.equal(o.logs.filter((l) => /over the 4096-byte limit for the first frame/.test(l)).length, 32, o.logs.join('\n'));
    const c = await rawConnect(o.socketPath);
    c.write(hello(o.token));
    assert.equal((await c.next())['t'], 'welcome');
    c.socket.destroy();
  });
});
