import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type { ApiMethod, OwnerInfo } from '../../../src/api/contract';
import { IpcClient } from '../../../src/client/ipcClient';
import { RemoteQueue } from '../../../src/client/remoteQueue';
import { type ErrorCode, isSparkqError } from '../../../src/core/errors';
import { LIMITS } from '../../../src/core/model';
import type { ChangeEvent } from '../../../src/api/contract';
import { ClientMessage, FrameDecoder, FrameError, MAX_FRAME_BYTES, encodeFrame, newIpcToken, parseClientMessage } from '../../../src/ipc/protocol';
import { API_METHODS } from '../../../src/api/contract';
import { MAX_SOCKET_PATH_BYTES, ensurePrivateDir, socketPathFor } from '../../../src/ipc/socketPath';
import { IpcServer } from '../../../src/owner/ipcServer';
import { type IpcOwner, frame, rawConnect, startIpcOwner, within } from '../../support/ipcHarness';
import { tempDir } from '../../support/tmp';

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isSparkqError(e, code), `expected a ${code} error, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

const owner: OwnerInfo = { pid: process.pid, generation: 7, role: 'test', since: '2025-01-01T00:00:00.000Z' };

/** A server with stand-in handler and event source, for tests about the transport rather than the queue. */
async function fakeServer(opts: { handle?: (m: ApiMethod, p: unknown[]) => Promise<unknown>; maxInFlight?: number; maxConnections?: number; helloTimeoutMs?: number; maxPendingEvents?: number } = {}) {
  const t = tempDir('sparkq-ipc-');
  const socketPath = path.join(t.dir, 'fake.sock');
  const token = newIpcToken();
  const listeners = new Set<(events: ChangeEvent[]) => void>();
  const logs: string[] = [];
  const server = await IpcServer.listen({
    socketPath,
    token,
    owner,
    handle: opts.handle ?? ((m, p) => Promise.resolve({ m, p })),
    subscribe: (cb) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    log: (m) => logs.push(m),
    ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    ...(opts.helloTimeoutMs !== undefined ? { helloTimeoutMs: opts.helloTimeoutMs } : {}),
    ...(opts.maxPendingEvents !== undefined ? { maxPendingEvents: opts.maxPendingEvents } : {}),
  });
  return {
    server,
    socketPath,
    token,
    logs,
    listeners,
    emit: (events: ChangeEvent[]) => listeners.forEach((l) => l(events)),
    stop: async () => {
      await server.close();
      t.cleanup();
    },
  };
}

const hello = (token: string) => frame(JSON.stringify({ t: 'hello', token }));
const req = (id: number, method: string, params: unknown[] = []) => frame(JSON.stringify({ t: 'req', id, method, params }));

async function waitFor(cond: () => boolean, ms = 2_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('IPC', function () {
  this.timeout(60_000);

  describe('frames', () => {
    it('decodes frames split at every byte and packed several to a chunk', () => {
      const bodies = ['{"a":1}', '"x"', JSON.stringify({ t: 'req', id: 1, method: 'status', params: [] }), '[' + '1,'.repeat(5000) + '1]'];
      const stream = Buffer.concat(bodies.map((b) => frame(b)));
      fc.assert(
        fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 40 }), (cuts) => {
          const points = [...new Set([0, ...cuts, stream.length])].sort((a, b) => a - b);
          const d = new FrameDecoder();
          const out: string[] = [];
          for (let i = 1; i < points.length; i++) for (const f of d.push(stream.subarray(points[i - 1], points[i]))) out.push(f.toString('utf8'));
          assert.deepEqual(out, bodies);
          assert.equal(d.pendingBytes, 0);
        }),
        { seed: 42, numRuns: 300 },
      );
      const d = new FrameDecoder();
      const got: string[] = [];
      for (const byte of stream) for (const f of d.push(Buffer.from([byte]))) got.push(f.toString('utf8'));
      assert.deepEqual(got, bodies, 'one byte at a time');
    });

    it('keeps nothing of a borrowed chunk: frames survive the read buffer being reused at once', () => {
      const bodies = ['{"a":1}', 'x'.repeat(5000), JSON.stringify({ t: 'res', id: 1, ok: true, result: 'y'.repeat(70_000) }), '"z"'];
      const stream = Buffer.concat(bodies.map((b) => frame(b)));
      fc.assert(
        fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 30 }), (cuts) => {
          const points = [...new Set([0, ...cuts, stream.length])].sort((a, b) => a - b);
          const d = new FrameDecoder();
          const readBuffer = Buffer.alloc(stream.length);
          const out: Buffer[] = [];
          for (let i = 1; i < points.length; i++) {
            const n = stream.copy(readBuffer, 0, points[i - 1], points[i]);
            for (const f of d.push(readBuffer.subarray(0, n), { borrowed: true })) out.push(f);
            readBuffer.fill(0x21); // the next read overwrites the buffer
          }
          assert.deepEqual(
            out.map((f) => f.toString('utf8')),
            bodies,
          );
        }),
        { seed: 11, numRuns: 200 },
      );
    });

    it('parseClientMessage accepts and refuses exactly what the ClientMessage schema does', () => {
      // Requests near the edge of valid: every key's type varied, a key missing or added, hello and sub mixed in.
      const request = fc.record(
        {
          t: fc.constantFrom<unknown>('req', 'hello', 'sub', 'res', 1),
          id: fc.oneof(fc.nat(), fc.constantFrom<unknown>(-1, 1.5, Number.MAX_SAFE_INTEGER, 2 ** 53, '1', null)),
          method: fc.oneof(fc.constantFrom<unknown>(...API_METHODS), fc.constantFrom<unknown>('nope', 'toString', '__proto__', 3)),
          params: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 6 }), fc.constantFrom<unknown>({}, 'x', null)),
          token: fc.constantFrom<unknown>('a'.repeat(64), 'short'),
          extra: fc.jsonValue(),
        },
        { requiredKeys: [] },
      );
      const values = fc.oneof(request, fc.jsonValue(), fc.constant({ t: 'sub' }), fc.constant({ t: 'hello', token: 'b'.repeat(64), client: 'cli' }));
      fc.assert(
        fc.property(values, (v) => {
          const expected = ClientMessage.safeParse(v);
          let got: unknown;
          let problem: unknown = null;
          try {
            got = parseClientMessage(v);
          } catch (e) {
            problem = e;
          }
          if (expected.success) assert.deepEqual(got, expected.data);
          else assert.ok(problem instanceof FrameError && /^invalid message: /.test(problem.message), `refused as a protocol error: ${JSON.stringify(v)}`);
        }),
        { seed: 7, numRuns: 3000 },
      );
      // A JSON key "__proto__" is an own key like any other: one more than a request has.
      assert.throws(() => parseClientMessage(JSON.parse('{"t":"req","id":1,"method":"status","params":[],"__proto__":{}}')), FrameError);
    });

    it('rejects an oversized or empty length as soon as the header is in, holding none of the body', () => {
      const d = new FrameDecoder();
      const header = Buffer.alloc(4);
      header.writeUInt32BE(2 ** 31, 0);
      assert.throws(() => d.push(header.subarray(0, 3)) && d.push(header.subarray(3)), FrameError);
      assert.equal(d.pendingBytes, 0);
      assert.throws(() => d.push(Buffer.from('more')), FrameError, 'a failed decoder stays failed');
      const over = Buffer.alloc(4);
      over.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
      assert.throws(() => new FrameDecoder().push(over), /over the 8388608-byte limit/);
      assert.throws(() => new FrameDecoder().push(Buffer.alloc(4)), /empty frame/);
      assert.equal(new FrameDecoder().push(frame('x'.repeat(10))).length, 1);
      assert.throws(() => encodeFrame({ big: 'x'.repeat(MAX_FRAME_BYTES) }), /limit per frame/);
    });
  });

  describe('socket path', () => {
    let saved: string | undefined;
    let t: { dir: string; cleanup: () => void };
    beforeEach(() => {
      saved = process.env['XDG_RUNTIME_DIR'];
      t = tempDir('sparkq-ipcpath-');
    });
    afterEach(() => {
      if (saved === undefined) delete process.env['XDG_RUNTIME_DIR'];
      else process.env['XDG_RUNTIME_DIR'] = saved;
      t.cleanup();
    });

    it('puts the socket in a private sparkq dir under XDG_RUNTIME_DIR, named by the real workspace path and generation', () => {
      const runtime = path.join(t.dir, 'run');
      fs.mkdirSync(runtime, { mode: 0o700 });
      const ws = path.join(t.dir, 'ws');
      fs.mkdirSync(ws);
      fs.symlinkSync(ws, path.join(t.dir, 'link'));
      process.env['XDG_RUNTIME_DIR'] = runtime;
      const p = socketPathFor(ws, 3);
      assert.equal(path.dirname(p), path.join(runtime, 'sparkq'));
      assert.match(path.basename(p), /^[0-9a-f]{16}-3\.sock$/);
      assert.ok(Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES);
      assert.equal(fs.statSync(path.dirname(p)).mode & 0o777, 0o700);
      assert.equal(socketPathFor(path.join(t.dir, 'link'), 3), p, 'a symlinked workspace gets the same socket');
      assert.notEqual(socketPathFor(ws, 4), p);
    });

    it('falls back to <tmpdir>/sparkq-<uid> when XDG_RUNTIME_DIR is unset or unusable', () => {
      delete process.env['XDG_RUNTIME_DIR'];
      const expected = path.join(os.tmpdir(), `sparkq-${process.getuid!()}`);
      assert.equal(path.dirname(socketPathFor(t.dir, 1)), expected);
      process.env['XDG_RUNTIME_DIR'] = path.join(t.dir, 'missing');
      assert.equal(path.dirname(socketPathFor(t.dir, 1)), expected);
      process.env['XDG_RUNTIME_DIR'] = 'relative/dir';
      assert.equal(path.dirname(socketPathFor(t.dir, 1)), expected);
      assert.equal(fs.statSync(expected).mode & 0o777, 0o700);
    });

    it('tightens a loose directory of ours, refuses symlinks, foreign directories and overlong paths', function () {
      const loose = path.join(t.dir, 'loose');
      fs.mkdirSync(loose, { mode: 0o755 });
      fs.chmodSync(loose, 0o755);
      ensurePrivateDir(loose);
      assert.equal(fs.statSync(loose).mode & 0o777, 0o700);

      const target = path.join(t.dir, 'elsewhere');
      fs.mkdirSync(target, { mode: 0o700 });
      fs.symlinkSync(target, path.join(t.dir, 'sym'));
      assert.throws(() => ensurePrivateDir(path.join(t.dir, 'sym')), /refusing to use .*sym for the IPC socket: it is a symlink/);
      fs.writeFileSync(path.join(t.dir, 'file'), '');
      assert.throws(() => ensurePrivateDir(path.join(t.dir, 'file')), /it is not a directory/);

      const deep = path.join(t.dir, 'd'.repeat(60), 'e'.repeat(30));
      fs.mkdirSync(deep, { recursive: true, mode: 0o700 });
      process.env['XDG_RUNTIME_DIR'] = deep;
      assert.throws(() => socketPathFor(t.dir, 1), (e: unknown) => isSparkqError(e, 'config') && /at most 100/.test((e as Error).message));

      if (process.getuid!() !== 0) return; // only root can make a directory that belongs to someone else
      const foreign = path.join(t.dir, 'foreign');
      fs.mkdirSync(foreign, { mode: 0o700 });
      fs.chownSync(foreign, 65534, 65534);
      assert.throws(() => ensurePrivateDir(foreign), /belongs to uid 65534, not to us \(uid 0\)/);
    });

    it('names a pipe on Windows', () => {
      const real = Object.getOwnPropertyDescriptor(process, 'platform')!;
      Object.defineProperty(process, 'platform', { value: 'win32' });
      try {
        assert.match(socketPathFor(t.dir, 2), /^\\\\\.\\pipe\\sparkq-[0-9a-f]{16}-2$/);
      } finally {
        Object.defineProperty(process, 'platform', real);
      }
    });
  });

  describe('against a real queue', () => {
    let o: IpcOwner;
    let client: IpcClient;
    let api: RemoteQueue;
    beforeEach(async () => {
      o = await startIpcOwner();
      client = await IpcClient.connect({ socketPath: o.socketPath, token: o.token, client: 'test' });
      api = new RemoteQueue(client);
    });
    afterEach(async () => {
      client.close();
      await o.stop();
    });

    it('listens on a 0600 socket in a 0700 directory, on a short path', () => {
      assert.equal(fs.statSync(path.dirname(o.socketPath)).mode & 0o777, 0o700);
      assert.equal(fs.statSync(o.socketPath).mode & 0o777, 0o600);
      assert.ok(fs.statSync(o.socketPath).isSocket());
      assert.ok(Buffer.byteLength(o.socketPath) <= 100, o.socketPath);
      assert.deepEqual(client.owner, o.owner);
    });

    it('round-trips sessions, queues and a task lifecycle', async () => {
      const s = await api.createSession({ name: 'api-v2', description: 'd' });
      assert.match(s.id, /^ses_/);
      assert.deepEqual(await api.getSession('api-v2'), s);
      assert.equal((await api.listSessions()).length, 2);
      assert.equal((await api.listSessions({ includeEnded: false })).length, 2);
      const queue = await api.createQueue({ name: 'Back End', session: 'api-v2', instructions: 'go' });
      assert.deepEqual((await api.listQueues({ session: 'api-v2' })).map((x) => x.id), [queue.id]);
      const prompt = 'p'.repeat(256 * 1024);
      const task = await api.enqueue({ queue: 'Back End', tool: 'run-bash', prompt });
      assert.equal((await api.peek('Back End'))?.id, task.id);
      const claim = await api.claim({ queue: 'Back End', worker: 'w1' });
      assert.ok(claim);
      assert.equal(claim.task.prompt, prompt, 'a 256 KiB prompt crosses intact');
      assert.equal(await api.heartbeat({ task: task.id, lease: claim.lease }), undefined);
      const data = { blob: 'd'.repeat(1_000_000) };
      const done = await api.complete({ task: task.id, lease: claim.lease, summary: 'did it', data });
      assert.equal(done.status, 'succeeded');
      const detail = await api.getTask(task.id);
      assert.deepEqual(detail.result?.data, data, '1 MB of result data crosses intact');
      assert.equal((await api.listTasks({ queue: 'Back End' })).tasks.length, 1);
      const status = await api.status();
      assert.deepEqual(status.owner, o.owner);
      assert.equal(status.counts.succeeded, 1);
      assert.deepEqual(await api.sweep(), { staled: [], failed: [] });
      assert.deepEqual(await api.scripts(), []);
      assert.deepEqual(await api.purge({ olderThanDays: 365 }), { purged: 0 });
    });

    it('returns the owner’s errors as SparkqErrors with the same code, message and details', async () => {
      await rejectsWith(api.createSession({ name: 's' }), 'conflict', /a session named "s" is already active/);
      let direct: unknown;
      await o.q.createSession({ name: 's' }).catch((e: unknown) => (direct = e));
      await assert.rejects(api.createSession({ name: 's' }), (e: unknown) => isSparkqError(e, 'conflict') && e.message === (direct as Error).message);
      await rejectsWith(api.getQueue('nope'), 'not-found', /no queue named "nope"; active queues: q/);
      await rejectsWith(client.call('createSession', [{ name: '' }]), 'invalid-input', /must not be empty/);
      const t = await api.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      await assert.rejects(api.requeue(t.id), (e: unknown) => isSparkqError(e, 'conflict') && (e.details as { status?: string }).status === 'queued');
      // Arguments of the wrong shape are answered before they reach the queue, naming the field, never as 'internal'.
      await rejectsWith(client.call('listQueues', [null]), 'invalid-input', /^invalid options: .*expected object, received null/);
      await rejectsWith(client.call('listQueues', [{}, {}]), 'invalid-input', /^invalid arguments for listQueues: it takes \(\[options\]\), not 2/);
      await rejectsWith(client.call('getTask', [5]), 'invalid-input', /^invalid task: .*expected string, received number/);
      await rejectsWith(client.call('sweep', ['x']), 'invalid-input', /^invalid arguments for sweep: it takes no arguments, not 1/);
      await rejectsWith(client.call('listQueues', [{ session: true }]), 'invalid-input', /^invalid options: session: .*expected string, received boolean/);
      for (const queue of [[], {}, true]) {
        await rejectsWith(client.call('joinQueue', [{ queue, worker: 'w', leaseSeconds: 30 }]), 'invalid-input', /^invalid worker: queue: .*expected string/);
        await rejectsWith(client.call('leaveQueue', [{ queue, worker: 'w' }]), 'invalid-input', /^invalid worker: queue: .*expected string/);
      }
      await rejectsWith(client.call('joinQueue', [{ queue: 'q', worker: 'w', leaseSeconds: 30, extra: 1 }]), 'invalid-input', /^invalid worker: .*extra/);
      // A request too large to send fails locally; the connection stays usable.
      await rejectsWith(client.call('enqueue', [{ queue: 'q', tool: 'run-bash', prompt: 'x'.repeat(MAX_FRAME_BYTES) }]), 'invalid-input', /limit per frame/);
      assert.equal((await api.getQueue('q')).counts.queued, 1);
    });

    it('refuses an input over a limit with the queue’s own message, however large: one too large to send is checked here', async () => {
      const t = await api.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const claim = await api.claim({ queue: 'q', worker: 'w' });
      assert.equal(claim?.task.id, t.id);
      const lease = claim.lease;
      const huge = 'x'.repeat(MAX_FRAME_BYTES + 1);
      // The owner's answer is its QueueService's: run each call on it directly, then through the client.
      type Checked = Pick<RemoteQueue, 'createSession' | 'createQueue' | 'pauseQueue' | 'enqueue' | 'complete' | 'fail' | 'release'>;
      const cases: [string, (q: Checked) => Promise<unknown>, RegExp][] = [
        ['a huge prompt', (q) => q.enqueue({ queue: 'q', tool: 'run-bash', prompt: huge }), /^invalid task: prompt: prompt is longer than 262144 bytes$/],
        ['a prompt just over the limit', (q) => q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x'.repeat(LIMITS.prompt + 1) }), /^invalid task: prompt: prompt is longer than/],
        ['a huge payload', (q) => q.enqueue({ queue: 'q', tool: 'run-bash', payload: { text: huge } }), /^payload is \d+ bytes as JSON; the limit is 262144\./],
        ['no prompt and no payload', (q) => q.enqueue({ queue: 'q', tool: 'run-bash' }), /^a task needs a prompt or a payload/],
        ['huge result data', (q) => q.complete({ task: t.id, lease, summary: 'done', data: { text: huge } }), /^data is \d+ bytes as JSON; the limit is 1048576\./],
        ['a huge summary', (q) => q.complete({ task: t.id, lease, summary: huge }), /^invalid completion: summary: summary is longer than 4000 characters/],
        ['huge data with a failure', (q) => q.fail({ task: t.id, lease, error: 'broke', data: [huge] }), /^data is \d+ bytes as JSON; the limit is 1048576\./],
        ['huge data with a hand-back', (q) => q.release({ task: t.id, lease, reason: 'limit', data: huge }), /^data is \d+ bytes as JSON/],
        ['huge instructions', (q) => q.createQueue({ name: 'big', session: 's', instructions: huge }), /^invalid queue: instructions: /],
        ['a huge session description', (q) => q.createSession({ name: 'big', description: huge }), /^invalid session: description: /],
        ['a huge pause reason', (q) => q.pauseQueue({ queue: 'q', reason: huge }), /^invalid pause: reason: /],
      ];
      for (const [what, call, pattern] of cases) {
        let direct: unknown;
        await call(o.q).then(
          () => assert.fail(`${what}: the owner accepted it`),
          (e: unknown) => (direct = e),
        );
        assert.ok(isSparkqError(direct, 'invalid-input'), `${what}: the owner says invalid-input, got ${String(direct)}`);
        assert.match((direct as Error).message, pattern, what);
        await assert.rejects(call(api), (e: unknown) => {
          assert.ok(isSparkqError(e, 'invalid-input'), `${what}: the client says invalid-input, got ${String(e)}`);
          assert.equal((e as Error).message, (direct as Error).message, `${what}: the client's message is the owner's`);
          return true;
        });
      }
      // Nothing was sent or changed: the task still runs, the queue holds what it held, and the connection works.
      assert.equal((await api.getTask(t.id)).status, 'running');
      assert.deepEqual((await api.listQueues()).map((x) => x.name), ['q']);
      assert.equal((await api.getQueue('q')).paused, false);
    });

    it('says how large an answer too large to send was, so that a client can ask for less', async () => {
      await o.q.enqueueMany(Array.from({ length: 40 }, () => ({ queue: 'q', tool: 'run-bash', prompt: 'p'.repeat(250_000) })));
      await assert.rejects(api.listTasks({ limit: 1000 }), (e: unknown) => {
        assert.ok(isSparkqError(e, 'internal'), String(e));
        assert.match(e.message, /^the owner could not send the answer to listTasks: the message is \d+ bytes as JSON; the limit per frame is 8388608$/);
        const { frameBytes, frameLimit } = e.details as { frameBytes: number; frameLimit: number };
        assert.equal(frameLimit, MAX_FRAME_BYTES);
        assert.ok(frameBytes > 10_000_000, String(frameBytes));
        return true;
      });
      assert.equal((await api.listTasks({ limit: 20 })).tasks.length, 20, 'a smaller page fits');
    });

    it('delivers change events to subscribers, and only to them', async () => {
      const seen: ChangeEvent[] = [];
      const off = api.onChange((events) => seen.push(...events));
      const other = await IpcClient.connect({ socketPath: o.socketPath, token: o.token });
      const otherSeen: ChangeEvent[] = [];
      other.subscribe((events) => otherSeen.push(...events));
      const quiet = await rawConnect(o.socketPath);
      quiet.write(hello(o.token));
      await quiet.next();
      try {
        const otherApi = new RemoteQueue(other);
        await waitFor(() => o.server.connections === 3);
        const t = await otherApi.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
        await waitFor(() => seen.length >= 1 && otherSeen.length >= 1);
        assert.deepEqual(seen[0], { kind: 'task', id: t.id, queueId: t.queueId, status: 'queued' });
        const c = await otherApi.claim({ queue: 'q' });
        await waitFor(() => seen.some((e) => e.kind === 'task' && e.status === 'running'));
        off();
        const before = seen.length;
        await otherApi.complete({ task: t.id, lease: c!.lease, summary: 'ok' });
        await waitFor(() => otherSeen.some((e) => e.kind === 'task' && e.status === 'succeeded'));
        assert.equal(seen.length, before, 'an unsubscribed listener hears nothing more');
        assert.deepEqual(quiet.received.map((m) => m['t']), ['welcome'], 'a connection that did not subscribe gets no events');
      } finally {
        other.close();
        quiet.socket.destroy();
      }
    });

    it('refuses a connection that sends a request before hello; the owner carries on', async () => {
      const c = await rawConnect(o.socketPath);
      c.write(req(1, 'status'));
      assert.ok(await within(c.closed, 2_000));
      assert.deepEqual(c.received, []);
      assert.ok(o.logs.some((l) => /first message was "req", not hello/.test(l)), o.logs.join('\n'));
      assert.equal((await api.getQueue('q')).name, 'q');
    });

    it('refuses a wrong token, a second hello, and a client that never says hello', async () => {
      await rejectsWith(IpcClient.connect({ socketPath: o.socketPath, token: newIpcToken() }), 'unavailable', /closed the connection during the handshake/);
      assert.ok(o.logs.some((l) => /wrong token/.test(l)));
      const c = await rawConnect(o.socketPath);
      c.write(hello(o.token));
      assert.equal((await c.next())['t'], 'welcome');
      c.write(hello(o.token));
      assert.ok(await within(c.closed, 2_000));
      assert.ok(o.logs.some((l) => /a second hello/.test(l)));
      await rejectsWith(IpcClient.connect({ socketPath: path.join(path.dirname(o.socketPath), 'nobody.sock'), token: o.token }), 'unavailable', /no queue owner is listening/);
      assert.equal((await api.status()).owner.pid, process.pid);
    });

    it('closes on an oversized length header without allocating it, before and after hello', async () => {
      for (const authed of [false, true]) {
        const c = await rawConnect(o.socketPath);
        if (authed) {
          c.write(hello(o.token));
          await c.next();
        }
        const before = process.memoryUsage().arrayBuffers;
        const header = Buffer.alloc(8);
        header.writeUInt32BE(2 ** 31, 0);
        c.write(header);
        assert.ok(await within(c.closed, 2_000), 'closed promptly, without waiting for 2 GiB');
        assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024);
      }
      assert.equal(o.logs.filter((l) => /over the 8388608-byte limit/.test(l)).length, 2);
      assert.equal((await api.listQueues()).length, 1);
    });

    it('closes on invalid JSON, invalid UTF-8, empty frames and schema-invalid messages', async () => {
      const bad: Buffer[] = [
        frame('{"t":"req",'),
        frame('not json'),
        frame(Buffer.from([0x22, 0xff, 0xfe, 0x22])),
        Buffer.alloc(4),
        frame('null'),
        frame('[]'),
        frame('{"t":"nope"}'),
        frame(JSON.stringify({ t: 'req', id: 1, method: 'dropTables', params: [] })),
        frame(JSON.stringify({ t: 'req', id: -1, method: 'status', params: [] })),
        frame(JSON.stringify({ t: 'req', id: 1.5, method: 'status', params: [] })),
        frame(JSON.stringify({ t: 'req', id: '1', method: 'status', params: [] })),
        frame(JSON.stringify({ t: 'req', id: 1, method: 'status', params: [1, 2, 3, 4, 5] })),
        frame(JSON.stringify({ t: 'req', id: 1, method: 'status', params: {} })),
        frame(JSON.stringify({ t: 'req', id: 1, method: 'status' })),
        frame(JSON.stringify({ t: 'req', id: 1, method: 'status', params: [], extra: true })),
        frame(JSON.stringify({ t: 'req', id: 1, method: 'onChange', params: [] })),
        frame(JSON.stringify({ t: 'req', id: 1, method: '__proto__', params: [] })),
        frame(JSON.stringify({ t: 'sub', x: 1 })),
        frame(JSON.stringify({ t: 'welcome', owner })),
      ];
      for (const [i, b] of bad.entries()) {
        const c = await rawConnect(o.socketPath);
        c.write(hello(o.token));
        await c.next();
        c.write(b);
        assert.ok(await within(c.closed, 2_000), `bad frame #${i} closed the connection`);
        assert.deepEqual(c.received.map((m) => m['t']), ['welcome'], `bad frame #${i} got no answer`);
      }
      for (const b of [frame(JSON.stringify({ t: 'hello', token: 'short' })), frame(JSON.stringify({ t: 'hello', token: o.token.toUpperCase() })), frame('{"t":"hello"}')]) {
        const c = await rawConnect(o.socketPath);
        c.write(b);
        assert.ok(await within(c.closed, 2_000));
        assert.deepEqual(c.received, []);
      }
      assert.equal((await api.getQueue('q')).name, 'q');
    });

    it('survives 10,000 fuzzed frames over many connections, then still answers correctly', async function () {
      const stats = await fuzz(o, 10_000, 0x5eed);
      assert.equal(stats.total, 10_000);
      assert.ok(stats.bad > 9_000, `most fuzzed frames are bad (${JSON.stringify(stats)})`);
      assert.ok(stats.good > 20, `some mutants stay valid and are answered (${JSON.stringify(stats)})`);
      await waitFor(() => o.server.connections === 1, 5_000);
      const refusals = o.logs.filter((l) => / closed: /.test(l)).length;
      assert.equal(refusals, stats.bad, 'exactly one refusal per bad connection');
      // Memory: no leak of buffers or connections from 10,000 refused peers — what is still held after a collection
      // (without it the figure is whatever garbage the collector has not reached yet, and varies from run to run).
      collectGarbage();
      const mem = process.memoryUsage();
      assert.ok(mem.arrayBuffers - stats.before.arrayBuffers < 64 * 1024 * 1024, `arrayBuffers grew by ${mem.arrayBuffers - stats.before.arrayBuffers}`);
      assert.ok(mem.heapUsed - stats.before.heapUsed < 256 * 1024 * 1024, `heap grew by ${mem.heapUsed - stats.before.heapUsed}`);
      assert.ok(mem.rss < 2 * 1024 * 1024 * 1024, `rss ${mem.rss}`);
      // A good client still gets correct answers.
      const fresh = new RemoteQueue(await IpcClient.connect({ socketPath: o.socketPath, token: o.token }));
      try {
        await fresh.createSession({ name: 'after-fuzz' });
        await fresh.createQueue({ name: 'after-fuzz-q', session: 'after-fuzz' });
        const t = await fresh.enqueue({ queue: 'after-fuzz-q', tool: 'run-bash', prompt: 'still here' });
        assert.equal((await fresh.getTask(t.id)).prompt, 'still here');
        assert.equal((await fresh.getQueue('after-fuzz-q')).counts.queued, 1);
        await rejectsWith(fresh.getQueue('no-such-queue'), 'not-found', /no queue named/);
      } finally {
        fresh.client.close();
      }
      console.log(`      fuzz: ${JSON.stringify({ total: stats.total, bad: stats.bad, good: stats.good, ms: stats.ms })}`);
    });

    it('takes 50 concurrent clients each enqueueing 100 tasks, acknowledging and keeping all 5,000', async () => {
      const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => IpcClient.connect({ socketPath: o.socketPath, token: o.token, client: `c${i}` })));
      try {
        const ids = await Promise.all(
          clients.map(async (c, i) => {
            const r = new RemoteQueue(c);
            const tasks = await Promise.all(Array.from({ length: 100 }, (_, j) => r.enqueue({ queue: 'q', tool: 'run-bash', prompt: `c${i} t${j}` })));
            return tasks.map((t) => t.id);
          }),
        );
        const all = ids.flat();
        assert.equal(new Set(all).size, 5_000);
        assert.equal(o.q.getQueue('q').counts.queued, 5_000);
        for (const id of [all[0]!, all[2_500]!, all[4_999]!]) assert.equal(o.q.getTask(id).status, 'queued');
      } finally {
        for (const c of clients) c.close();
      }
    });
  });

  describe('transport limits', () => {
    it('batches the events of one tick into one frame, and cuts off a subscriber that stops reading', async () => {
      const f = await fakeServer({ maxPendingEvents: 5_000 });
      try {
        const c = await IpcClient.connect({ socketPath: f.socketPath, token: f.token });
        const batches: ChangeEvent[][] = [];
        c.subscribe((e) => batches.push(e));
        await waitFor(() => f.listeners.size === 1);
        f.emit([{ kind: 'session', id: 'ses_a' }]);
        f.emit([{ kind: 'queue', id: 'que_b' }]);
        f.emit([{ kind: 'task', id: 'tsk_c', queueId: 'que_b', status: 'queued' }]);
        await waitFor(() => batches.length >= 1);
        await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(batches, [[{ kind: 'session', id: 'ses_a' }, { kind: 'queue', id: 'que_b' }, { kind: 'task', id: 'tsk_c', queueId: 'que_b', status: 'queued' }]]);
        c.close();

        const slow = await rawConnect(f.socketPath);
        slow.write(hello(f.token));
        await slow.next();
        slow.write(frame('{"t":"sub"}'));
        await waitFor(() => f.listeners.size === 1);
        slow.socket.pause();
        const big: ChangeEvent[] = Array.from({ length: 1_000 }, (_, i) => ({ kind: 'task', id: `tsk_${i}`, queueId: 'que_x'.repeat(20), status: 'running' }));
        for (let i = 0; i < 200 && f.server.connections > 0; i++) {
          f.emit(big);
          await new Promise((r) => setImmediate(r));
        }
        await waitFor(() => f.server.connections === 0);
        assert.ok(f.logs.some((l) => /fell behind by more than 5000 events/.test(l)), f.logs.join('\n'));
        assert.equal(f.listeners.size, 0, 'no subscriber left, so the server unsubscribed from the queue');
        slow.socket.destroy();
      } finally {
        await f.stop();
      }
    });

    it('caps requests in flight per connection; the client queues beyond the cap so its calls all succeed', async () => {
      const release: (() => void)[] = [];
      const f = await fakeServer({
        maxInFlight: 64,
        handle: (m, p) => new Promise((res) => release.push(() => res({ m, p }))),
      });
      try {
        const raw = await rawConnect(f.socketPath);
        raw.write(hello(f.token));
        await raw.next();
        raw.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => req(i, 'status'))));
        await waitFor(() => raw.received.length === 1 + 36);
        assert.ok(raw.received.slice(1).every((m) => m['ok'] === false && (m['error'] as { code: string }).code === 'unavailable'));
        assert.equal(release.length, 64);
        release.splice(0).forEach((r) => r());
        await waitFor(() => raw.received.length === 1 + 100);
        raw.socket.destroy();

        const c = await IpcClient.connect({ socketPath: f.socketPath, token: f.token });
        const calls = Array.from({ length: 200 }, (_, i) => c.call('getTask', [`tsk_${i}`]));
        const pump = setInterval(() => release.splice(0).forEach((r) => r()), 2);
        try {
          const results = (await Promise.all(calls)) as { p: string[] }[];
          assert.deepEqual(results.map((r) => r.p[0]), Array.from({ length: 200 }, (_, i) => `tsk_${i}`));
        } finally {
          clearInterval(pump);
        }
        c.close();
      } finally {
        await f.stop();
      }
    });

    it('answers a failure that is not a SparkqError as internal, with its message, and logs it', async () => {
      const f = await fakeServer({
        handle: (m) => {
          if (m === 'sweep') throw new TypeError('boom in sweep');
          return Promise.resolve(m === 'scripts' ? 10n : undefined); // a BigInt has no JSON form
        },
      });
      try {
        const c = await IpcClient.connect({ socketPath: f.socketPath, token: f.token });
        await rejectsWith(c.call('sweep', []), 'internal', /^boom in sweep$/);
        await rejectsWith(c.call('scripts', []), 'internal', /could not send the answer to scripts/);
        assert.equal(await c.call('status', []), undefined);
        assert.ok(f.logs.some((l) => /sweep failed unexpectedly: TypeError: boom in sweep/.test(l)), f.logs.join('\n'));
        assert.ok(f.logs.every((l) => !l.includes('\n')));
        c.close();
      } finally {
        await f.stop();
      }
    });

    it('caps connections, and closes one that sends no hello in time', async () => {
      const f = await fakeServer({ maxConnections: 2, helloTimeoutMs: 150 });
      try {
        const a = await IpcClient.connect({ socketPath: f.socketPath, token: f.token });
        const b = await IpcClient.connect({ socketPath: f.socketPath, token: f.token });
        await rejectsWith(IpcClient.connect({ socketPath: f.socketPath, token: f.token, timeoutMs: 2_000 }), 'unavailable', /closed the connection/);
        assert.ok(f.logs.some((l) => /already 2 connections/.test(l)));
        b.close();
        await waitFor(() => f.server.connections === 1);
        const silent = await rawConnect(f.socketPath);
        const t0 = Date.now();
        assert.ok(await within(silent.closed, 2_000));
        assert.ok(Date.now() - t0 >= 100);
        assert.ok(f.logs.some((l) => /no hello within 150 ms/.test(l)));
        assert.deepEqual(await a.call('status', []), { m: 'status', p: [] });
        a.close();
      } finally {
        await f.stop();
      }
    });

    it('rejects pending calls with unavailable when the owner goes away, and tells onClose why', async () => {
      const f = await fakeServer({ handle: () => new Promise(() => undefined) });
      const c = await IpcClient.connect({ socketPath: f.socketPath, token: f.token });
      const closed = new Promise<Error | undefined>((res) => c.onClose(res));
      const pending = c.call('sweep', []);
      await waitFor(() => f.server.connections === 1);
      await new Promise((r) => setTimeout(r, 20));
      await f.stop();
      await rejectsWith(pending, 'unavailable', /sweep: the queue owner went away/);
      const why = await closed;
      assert.ok(isSparkqError(why, 'unavailable'));
      await rejectsWith(c.call('status', []), 'unavailable', /went away/);
      assert.equal(fs.existsSync(f.socketPath), false, 'closing the server removes its socket file');

      const g = await fakeServer({ handle: () => new Promise(() => undefined) });
      try {
        const d = await IpcClient.connect({ socketPath: g.socketPath, token: g.token });
        const p = d.call('sweep', []);
        const reason = new Promise<Error | undefined>((res) => d.onClose(res));
        d.close();
        await rejectsWith(p, 'unavailable', /closed/);
        assert.equal(await reason, undefined, 'a deliberate close reports no error');
      } finally {
        await g.stop();
      }
    });

    it('replaces a dead owner’s socket file, but not a live one or a non-socket', async () => {
      const t = tempDir('sparkq-ipc-');
      try {
        const p = path.join(t.dir, 'old.sock');
        // An owner that died without cleaning up: listen, then SIGKILL before close can unlink.
        spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`]);
        assert.ok(fs.statSync(p).isSocket(), 'the dead owner left its socket');
        const args = { socketPath: p, token: newIpcToken(), owner, handle: () => Promise.resolve(1), subscribe: () => () => undefined };
        const live = await IpcServer.listen(args);
        await rejectsWith(IpcServer.listen(args), 'conflict', /already serving the queue/);
        assert.deepEqual(await IpcClient.connect({ socketPath: p, token: args.token }).then(async (c) => [await c.call('status', []), c.close()][0]), 1);
        await live.close();
        const file = path.join(t.dir, 'plain');
        fs.writeFileSync(file, 'keep me');
        await rejectsWith(IpcServer.listen({ ...args, socketPath: file }), 'conflict', /is not a socket/);
        assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
      } finally {
        t.cleanup();
      }
    });
  });
});

// ---- fuzzing -------------------------------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so that a failure can be replayed with the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FuzzCase {
  authed: boolean;
  bytes: Buffer;
}

/**
 * What the protocol says should happen to `bytes` on a connection: 'bad' (closed, nothing answered after the frame
 * that broke the rules) or 'good' with the number of answers due. Frames are cut by the decoder, whose own behaviour
 * is pinned by the frame tests above.
 */
function oracle(c: FuzzCase, token: string): { good: false } | { good: true; answers: number; welcome: boolean } {
  let frames: Buffer[];
  const d = new FrameDecoder();
  try {
    frames = d.push(c.bytes);
  } catch {
    return { good: false };
  }
  if (d.midFrame) return { good: false };
  if (frames.length === 0 && !c.authed) return { good: false }; // an empty stream then end(): no hello
  let authed = c.authed;
  let answers = 0;
  let welcome = false;
  for (const f of frames) {
    let m: ClientMessage;
    try {
      const r = ClientMessage.safeParse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(f)));
      if (!r.success) return { good: false };
      m = r.data;
    } catch {
      return { good: false };
    }
    if (!authed) {
      if (m.t !== 'hello' || m.token !== token) return { good: false };
      authed = true;
      welcome = true;
    } else if (m.t === 'hello') return { good: false };
    else if (m.t === 'req') answers++;
  }
  return { good: true, answers, welcome };
}

function fuzzCases(n: number, seed: number, token: string): FuzzCase[] {
  const rand = prng(seed);
  const int = (max: number) => Math.floor(rand() * max);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const randomBytes = (len: number) => Buffer.from(Array.from({ length: len }, () => int(256)));
  const jsonValues = fc.sample(fc.jsonValue({ maxDepth: 3 }), { seed, numRuns: n });
  const bases: object[] = [
    { t: 'hello', token, client: 'fuzz' },
    { t: 'req', id: 1, method: 'status', params: [] },
    { t: 'req', id: 2, method: 'getQueue', params: ['q'] },
    { t: 'req', id: 3, method: 'peek', params: ['q'] },
    { t: 'req', id: 4, method: 'listTasks', params: [{ queue: 'q', limit: 5 }] },
    { t: 'req', id: 5, method: 'enqueue', params: [{ queue: 'q', tool: 'run-bash', prompt: 'fuzz' }] },
    { t: 'sub' },
  ];
  const cases: FuzzCase[] = [];
  for (let i = 0; i < n; i++) {
    const authed = rand() < 0.5;
    const kind = i % 4;
    let bytes: Buffer;
    if (kind === 0) {
      // Random bytes: sometimes a random header, sometimes a plausible one over random content.
      const body = randomBytes(int(64));
      if (rand() < 0.5) bytes = Buffer.concat([randomBytes(int(6)), body]);
      else {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(pick([body.length, body.length + 1, Math.max(1, body.length - 1), int(2 ** 32), MAX_FRAME_BYTES + 1, 0]) >>> 0, 0);
        bytes = Buffer.concat([h, body]);
      }
    } else if (kind === 1) {
      // Random JSON values, some dressed up as messages.
      const v = jsonValues[i]!;
      const dressed = rand() < 0.5 && v !== null && typeof v === 'object' && !Array.isArray(v) ? { t: pick(['hello', 'req', 'sub', 'res', 'welcome']), ...v } : v;
      bytes = frame(JSON.stringify(dressed));
    } else if (kind === 2) {
      // Byte-level mutations of a valid frame's JSON, framed with its true length.
      const text = Buffer.from(JSON.stringify(pick(bases)), 'utf8');
      const m = Buffer.from(text);
      const edits = 1 + int(3);
      let body: Buffer = m;
      for (let e = 0; e < edits; e++) {
        const at = int(body.length);
        switch (int(5)) {
          case 0:
            body[at] = body[at]! ^ (1 << int(8));
            break;
          case 1:
            body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
            break;
          case 2:
            body = Buffer.concat([body.subarray(0, at), randomBytes(1 + int(3)), body.subarray(at)]);
            break;
          case 3:
            body = body.subarray(0, at);
            break;
          default:
            body[at] = pick([0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x2d, 0x5c]);
        }
      }
      bytes = body.length === 0 ? Buffer.alloc(4) : frame(body);
      if (rand() < 0.15) bytes = Buffer.concat([bytes, frame(JSON.stringify(pick(bases)))]);
    } else {
      // Structural mutations: drop, add, or retype a field of a valid message.
      const msg: Record<string, unknown> = structuredClone(pick(bases)) as Record<string, unknown>;
      const keys = Object.keys(msg);
      const strange = pick<unknown>([null, -1, 1.5, 2 ** 60, '', 'x'.repeat(300), [], {}, true, [1, 2, 3, 4, 5], 'status', token, newIpcToken(), jsonValues[(i * 7) % n]]);
      switch (int(4)) {
        case 0:
          delete msg[pick(keys)];
          break;
        case 1:
          msg[pick(['extra', 'id', 'method', 'params', 'token', 'client', 't', '__proto__'])] = strange;
          break;
        case 2:
          msg[pick(keys)] = strange;
          break;
        default:
          if (Array.isArray(msg['params'])) (msg['params'] as unknown[]).push(strange);
          else msg['t'] = pick(['req', 'sub', 'hello', 'HELLO', 'event']);
      }
      bytes = frame(JSON.stringify(msg));
    }
    cases.push({ authed, bytes });
  }
  return cases;
}

/** A full collection, so memory figures count what is retained rather than garbage not yet collected. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

async function fuzz(o: IpcOwner, n: number, seed: number) {
  const cases = fuzzCases(n, seed, o.token);
  collectGarbage();
  const before = process.memoryUsage();
  const t0 = Date.now();
  let bad = 0;
  let good = 0;
  let next = 0;
  const failures: string[] = [];
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= cases.length) return;
      const c = cases[i]!;
      const expect = oracle(c, o.token);
      const conn = await rawConnect(o.socketPath);
      try {
        if (c.authed) {
          conn.write(hello(o.token));
          const w = await conn.next();
          if (w['t'] !== 'welcome') throw new Error('no welcome');
        }
        const seenBefore = conn.received.length;
        conn.write(c.bytes);
        if (!expect.good) {
          bad++;
          conn.socket.end();
          if (!(await within(conn.closed, 10_000))) failures.push(`case ${i}: a bad frame was not refused: ${c.bytes.toString('hex').slice(0, 120)}`);
          continue;
        }
        good++;
        const due = expect.answers + (expect.welcome ? 1 : 0);
        await waitFor(() => conn.received.length - seenBefore >= due || conn.isClosed(), 10_000);
        conn.write(req(9_007_199_254_740_991, 'status'));
        await waitFor(() => conn.received.some((m) => m['id'] === 9_007_199_254_740_991) || conn.isClosed(), 10_000);
        if (conn.isClosed()) failures.push(`case ${i}: a good frame was refused: ${c.bytes.toString('utf8').slice(0, 120)}`);
      } catch (e) {
        failures.push(`case ${i}: ${String(e)}`);
      } finally {
        conn.socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, lane));
  assert.deepEqual(failures.slice(0, 10), []);
  return { total: bad + good, bad, good, before, ms: Date.now() - t0 };
}
