import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { API_METHODS, type ApiMethod } from '../../../src/api/contract';
import { MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, isErrorCode } from '../../../src/ipc/frames';
import { readOwnerRecord } from '../../../src/owner/record';
import { type Cli, type RunOptions, type Serving, cliSandbox } from '../../support/cli';
import { type RawConnection, frame, rawConnect } from '../../support/ipcHarness';

/*
 * A seeded fuzz of the owner's socket, against a real `sparkq serve`: wrong types, missing and extra fields and wrong
 * arities for every method of the contract, lone surrogates, deep nesting, huge strings, byte-mutated valid frames, and
 * garbage from peers without the token. Every request with a valid envelope must be answered `ok` or with a typed
 * error, never `internal`; anything else must close its connection; the owner must never exit; and a control set of
 * tasks, which the fuzz never names, must read back byte-exact what was enqueued, also after a restart.
 *
 * SPARKQ_FUZZ_SEED=N replays a run (the seed is printed when it fails); SPARKQ_FUZZ_FRAMES=N changes its length.
 */

const FRAMES = Number(process.env['SPARKQ_FUZZ_FRAMES'] ?? 2_000);
const SEED = Number(process.env['SPARKQ_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** How long an answer (or the close of a connection) may take: a hang is a failure, not a slow test. */
const ANSWER_MS = 15_000;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

// Values that cannot be built as objects here (JSON.stringify would overflow on them) are markers in the object,
// replaced by raw JSON text in the frame.
const RAW = new Map<string, string>();
function raw(json: string): string {
  const marker = `@@raw${RAW.size}@@`;
  RAW.set(marker, json);
  return marker;
}
function encode(message: unknown): string {
  let text = JSON.stringify(message);
  for (const [marker, json] of RAW) if (text.includes(marker)) text = text.split(JSON.stringify(marker)).join(json);
  return text;
}

function deepJson(r: Rng): string {
  const depth = r.pick([65, 100, 3_000, 20_000, 100_000]);
  return r.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}
function hugeString(r: Rng): string {
  return r.pick(['x', 'é', '😀', 'ab\n']).repeat(r.pick([70_000, 300_000, 1_100_000]));
}
const LONE = ['\ud800', '\udbff', '\udc00', '\udfff'];
function loneSurrogateText(r: Rng): string {
  return `${r.pick(['', 'fuzz-q', 'a'])}${r.pick(LONE)}${r.pick(['', 'b', '😀'])}`;
}

/** Wrong values of every JSON type, for any field. */
function wrongValue(r: Rng): unknown {
  return r.pick<() => unknown>([
    () => null,
    () => r.chance(0.5),
    () => r.pick([0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53, 2 ** 31, 0.1]),
    () => r.pick(['', ' ', 'x', '\u0000', 'tsk_', 'que_zzz', 'ses_zzz', '../../etc/passwd', '0', 'true', 'null']),
    () => [],
    () => ({}),
    () => [r.pick(['fuzz-q', 1, null])],
    () => ({ queue: 'fuzz-q', [r.pick(['__proto__', 'constructor', 'x'])]: 1 }),
    () => ({ nested: { wrong: [true, { deeper: null }] } }),
  ])();
}

const NAMES = ['fz', 'fuzz-q', 'fuzz-r', 'fz2'];
function name(r: Rng): string {
  return r.chance(0.7) ? r.pick(NAMES) : `fz-${r.int(50)}`;
}

interface Seen {
  tasks: string[];
  leases: { task: string; lease: string }[];
}

/** Well-formed arguments for each method, to be broken by the fuzz. Typed, so that a new method must be added here. */
const VALID: { [M in ApiMethod]: (r: Rng, seen: Seen) => unknown[] } = {
  status: () => [],
  createSession: (r) => [{ name: name(r), description: 'fuzz' }],
  listSessions: (r) => (r.chance(0.5) ? [] : [{ includeEnded: r.chance(0.5) }]),
  getSession: (r) => [name(r)],
  endSession: (r) => [`fz-${r.int(50)}`],
  createQueue: (r) => [{ name: name(r), session: 'fz', instructions: 'go', maxWorkers: 2 }],
  listQueues: (r) => (r.chance(0.5) ? [] : [{ session: 'fz', includeEnded: true }]),
  getQueue: (r) => [name(r)],
  endQueue: (r) => [`fz-${r.int(50)}`],
  enqueue: (r) => [{ queue: 'fuzz-q', tool: 'run-bash', prompt: 'p', payload: { files: ['a.ts'], n: r.int(9) }, priority: r.int(5) }],
  peek: () => ['fuzz-q'],
  claim: () => [{ queue: 'fuzz-q', worker: 'fuzzer' }],
  heartbeat: (r, s) => [leaseOf(r, s)],
  complete: (r, s) => [{ ...leaseOf(r, s), summary: 'done', data: { ok: true } }],
  fail: (r, s) => [{ ...leaseOf(r, s), error: 'broke' }],
  verdict: (r, s) => [{ ...leaseOf(r, s), verdict: r.chance(0.5) ? 'pass' : 'fail', feedback: 'fuzz' }],
  recordRun: (r, s) => [{ task: taskOf(r, s), attempt: 1 + r.int(2), change: { worktree: '.sparkq/worktrees/x', branch: 'sparkq/q/x', baseRef: 'main', baseCommit: '0'.repeat(40), commit: '1'.repeat(40), files: [{ path: 'a.ts', status: 'M' }], filesChanged: 1, insertions: 1, deletions: 0 } }],
  requeue: (r, s) => [taskOf(r, s)],
  requeueFailed: () => [{ queue: 'fuzz-q' }],
  release: (r, s) => [{ ...leaseOf(r, s), reason: 'rate limit', resetAt: Date.now() + 1_000 }],
  pauseQueue: () => [{ queue: 'fuzz-q', forSeconds: 0.5, reason: 'fuzz' }],
  resumeQueue: () => ['fuzz-q'],
  setAgentSession: (r) => ['fuzz-q', r.chance(0.5) ? { codexThreadId: 'thread-fuzz' } : { claudeSessionId: null }],
  applyPlan: (r) => [{ plan: { id: `plan-${r.int(20)}`, description: null, tasks: [{ key: 'a', queue: 'fuzz-q', tool: 'run-bash', prompt: 'p', after: [] }] } }],
  report: (r) => (r.chance(0.5) ? [] : [{ by: r.pick(['tool', 'model', 'queue', 'day']) }]),
  listTasks: (r) => (r.chance(0.3) ? [] : [{ queue: 'fuzz-q', limit: 1 + r.int(5), status: 'queued' }]),
  getTask: (r, s) => [taskOf(r, s)],
  sweep: () => [],
  purge: () => [{ olderThanDays: 365 }],
  scripts: (r) => (r.chance(0.5) ? [] : ['x']),
  joinQueue: () => [{ queue: 'fuzz-q', worker: 'fuzz-w', leaseSeconds: 30 }],
  leaveQueue: () => [{ queue: 'fuzz-q', worker: 'fuzz-w' }],
};
function taskOf(r: Rng, s: Seen): string {
  return s.tasks.length > 0 && r.chance(0.8) ? r.pick(s.tasks) : 'tsk_000000000000';
}
function leaseOf(r: Rng, s: Seen): { task: string; lease: string } {
  return s.leases.length > 0 && r.chance(0.8) ? { ...r.pick(s.leases) } : { task: taskOf(r, s), lease: 'lease-x' };
}

type Kind = 'valid' | 'wrong-type' | 'missing' | 'extra' | 'arity' | 'deep' | 'huge' | 'surrogate' | 'surrogate-key';
const KINDS: readonly Kind[] = ['valid', 'valid', 'wrong-type', 'wrong-type', 'missing', 'extra', 'arity', 'deep', 'huge', 'surrogate', 'surrogate-key'];

/** A request for `method` broken the `kind` way; what it must get back (any typed answer, or invalid-input). */
function request(r: Rng, method: ApiMethod, kind: Kind, seen: Seen): { params: unknown[]; mustRefuse: boolean } {
  const params = VALID[method](r, seen).map((p) => (typeof p === 'object' && p !== null ? structuredClone(p) : p));
  const objectAt = params.findIndex((p) => typeof p === 'object' && p !== null && !Array.isArray(p));
  const target = objectAt >= 0 ? (params[objectAt] as Record<string, unknown>) : null;
  const someKey = (o: Record<string, unknown>) => r.pick(Object.keys(o).length > 0 ? Object.keys(o) : ['x']);
  /** Puts `v` in a field of the object argument, or as an argument when there is none. */
  const place = (v: unknown) => {
    if (target && r.chance(0.8)) target[someKey(target)] = v;
    else if (params.length > 0) params[r.int(params.length)] = v;
    else params.push(v);
  };
  switch (kind) {
    case 'valid':
      return { params, mustRefuse: false };
    case 'wrong-type':
      place(wrongValue(r));
      return { params, mustRefuse: false };
    case 'missing':
      if (target && Object.keys(target).length > 0) delete target[someKey(target)];
      else params.pop();
      return { params, mustRefuse: false };
    case 'extra':
      // An unknown key in an input object is refused (the schemas are strict); an extra argument may be a valid
      // optional one (listSessions() and listSessions({})).
      if (target) target[r.pick(['extra', 'colour', 'Queue', '__proto__x', 'toString'])] = wrongValue(r);
      else params.push(wrongValue(r));
      return { params, mustRefuse: target !== null };
    case 'arity': {
      const n = r.pick([0, 1, 2, 3, 4]);
      while (params.length < n) params.push(r.chance(0.5) ? wrongValue(r) : (params[0] ?? 'fuzz-q'));
      params.length = n;
      return { params, mustRefuse: false };
    }
    case 'deep':
      place(raw(deepJson(r)));
      return { params, mustRefuse: true };
    case 'huge':
      place(hugeString(r));
      return { params, mustRefuse: false };
    case 'surrogate':
      place(loneSurrogateText(r));
      return { params, mustRefuse: true };
    case 'surrogate-key':
      if (target) target[loneSurrogateText(r)] = 1;
      else params.push({ [loneSurrogateText(r)]: 'x' });
      return { params, mustRefuse: true };
  }
}

/** Changes a few bytes of a valid frame body: flips, deletions, duplications, insertions, truncation. */
function mutate(r: Rng, body: Buffer): Buffer {
  let b = Buffer.from(body);
  for (let n = 1 + r.int(3); n > 0 && b.length > 1; n--) {
    const at = r.int(b.length);
    switch (r.int(6)) {
      case 0:
        b[at] = r.int(256);
        break;
      case 1:
        b[at] = r.pick([0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x2d, 0x65]); // " \ { } [ ] , : 0 - e
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(8)))]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + r.int(16)), b.subarray(at)]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(r.pick(['\\ud800', '1e999', 'null', '[]', '{}', '"', '\u00ff', '\xed\xa0\x80'] as const), 'latin1'), b.subarray(at)]);
        break;
      default:
        b = b.subarray(0, Math.max(1, at));
    }
  }
  return b;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const METHOD_SET: ReadonlySet<unknown> = new Set(API_METHODS);
/** What the owner takes as a request (the envelope only): anything else must close the connection. */
function asRequest(body: Buffer): { id: number; method: string } | null {
  if (body.length === 0 || body.length > MAX_FRAME_BYTES) return null;
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(body));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const m = v as Record<string, unknown>;
  const keys = Object.keys(m).sort().join(',');
  if (keys !== 'id,method,params,t' || m['t'] !== 'req') return null;
  if (typeof m['id'] !== 'number' || !Number.isSafeInteger(m['id']) || m['id'] < 0) return null;
  if (!METHOD_SET.has(m['method']) || !Array.isArray(m['params']) || m['params'].length > 4) return null;
  return { id: m['id'], method: m['method'] as string };
}

async function settle<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ANSWER_MS} ms: ${what}`)), ANSWER_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fuzz: hostile frames against a real sparkq serve (seeded)', function () {
  this.timeout(180_000);
  const sandbox = cliSandbox('sparkq-fuzz-');
  let cli: Cli;
  before(() => (cli = sandbox.cli));

  it(`answers ${FRAMES} hostile frames with ok or a typed error, never internal, and keeps a control set byte-exact`, async () => {
    const dir = path.join(sandbox.dir, 'ws');
    fs.mkdirSync(dir);
    const o: RunOptions = { cwd: dir };
    await cli.ok(['init', '--project', 'fuzz'], o);
    let serving: Serving = await sandbox.serve(o);
    const r = prng(SEED);
    const counts: Record<string, number> = {};
    const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
    // The authenticated connection, replaced after the owner closes one (in an object: closures reassign it).
    const link: { conn: RawConnection | null } = { conn: null };
    let nextId = 1;
    let sent = 0;

    const connect = async (): Promise<RawConnection> => {
      const record = readOwnerRecord(path.join(dir, '.sparkq'));
      assert.ok(record, 'the owner record is there');
      const c = await rawConnect(record.socketPath);
      c.write(frame(JSON.stringify({ t: 'hello', token: record.token, client: 'fuzz' })));
      const welcome = await settle(c.next(), 'welcome');
      assert.equal(welcome['t'], 'welcome');
      return c;
    };
    /** Sends one well-framed body; the answer to a request, or null when the owner (rightly) closed the connection. */
    const send = async (body: Buffer, what: string): Promise<Record<string, unknown> | null> => {
      link.conn ??= await connect();
      const c = link.conn;
      sent++;
      const req = asRequest(body);
      c.write(Buffer.concat([frameHeader(body.length), body]));
      let answer: Record<string, unknown>;
      try {
        for (;;) {
          answer = await settle(c.next(), what);
          if (answer['t'] !== 'event') break;
        }
      } catch (e) {
        if (!c.isClosed()) throw e;
        link.conn = null;
        assert.equal(req, null, `the owner closed the connection on a request with a valid envelope: ${what}`);
        assert.equal(serving.child.exitCode, null, `the owner exited after: ${what}`);
        count('closed');
        return null;
      }
      assert.ok(req, `the owner answered a message it should have refused: ${what} -> ${JSON.stringify(answer).slice(0, 300)}`);
      assert.equal(answer['t'], 'res', what);
      assert.equal(answer['id'], req.id, what);
      if (answer['ok'] !== true) {
        const error = answer['error'] as { code: string; message: string };
        assert.ok(isErrorCode(error.code), `not a typed error: ${JSON.stringify(error).slice(0, 300)} for ${what}`);
        assert.notEqual(error.code, 'internal', `internal: ${error.message.slice(0, 300)} for ${what}`);
        count(`error:${error.code}`);
      } else count('ok');
      return answer;
    };
    const call = async (method: ApiMethod, params: unknown[]): Promise<unknown> => {
      const answer = await send(Buffer.from(JSON.stringify({ t: 'req', id: nextId++, method, params })), `${method} ${JSON.stringify(params).slice(0, 200)}`);
      assert.ok(answer && answer['ok'] === true, `${method} failed: ${JSON.stringify(answer).slice(0, 300)}`);
      return answer['result'];
    };

    try {
      // The control set: never named by the fuzz, so it must read back exactly as enqueued, before and after a restart.
      await call('createSession', [{ name: 'control' }]);
      await call('createQueue', [{ name: 'control-q', session: 'control' }]);
      let payload: unknown = { 'clé 😀': ['日本語', -0.5, null, true] };
      for (let i = 2; i < 64; i++) payload = [payload]; // 64 levels: the limit
      const controlInputs = [
        { queue: 'control-q', tool: 'run-bash', prompt: 'plain' },
        { queue: 'control-q', tool: 'run-bash', prompt: 'emoji 😀 𝄞 and é and 日本語\n\ttabs', priority: 7 },
        { queue: 'control-q', tool: 'run-bash', payload },
        { queue: 'control-q', tool: 'run-bash', prompt: 'ж'.repeat(200_000) },
      ];
      const control: { id: string; input: (typeof controlInputs)[number]; text: string }[] = [];
      for (const input of controlInputs) {
        const task = (await call('enqueue', [input])) as { id: string; prompt: string | null; payload: unknown };
        assert.equal(task.prompt, input.prompt ?? null, 'acknowledged as sent');
        assert.deepEqual(task.payload, input.payload ?? null, 'acknowledged as sent');
        control.push({ id: task.id, input, text: JSON.stringify(await call('getTask', [task.id])) });
      }
      await call('createSession', [{ name: 'fz' }]);
      await call('createQueue', [{ name: 'fuzz-q', session: 'fz' }]);
      const seen: Seen = { tasks: [], leases: [] };

      while (sent < FRAMES) {
        const roll = r.next();
        if (roll < 0.05) {
          // A peer without the token: garbage, a wrong token, or a first frame over the hello limit. Closed at once.
          const record = readOwnerRecord(path.join(dir, '.sparkq'))!;
          const c = await rawConnect(record.socketPath);
          const junk = r.pick<() => Buffer>([
            () => frame(Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256)))),
            () => frame(JSON.stringify({ t: 'hello', token: 'f'.repeat(64) })),
            () => frame(JSON.stringify({ t: 'req', id: 1, method: 'status', params: [] })),
            () => Buffer.concat([frameHeader(MAX_HELLO_FRAME_BYTES + 1 + r.int(MAX_FRAME_BYTES)), Buffer.alloc(1024, '[')]),
          ])();
          c.write(junk);
          assert.ok(await settle(c.closed.then(() => true), 'an unauthenticated peer is closed'));
          sent++;
          count('unauthenticated');
        } else if (roll < 0.3) {
          // A valid frame with a few bytes changed.
          const method = r.pick(API_METHODS);
          const { params } = request(r, method, r.pick(['valid', 'valid', 'wrong-type']), seen);
          await send(mutate(r, Buffer.from(encode({ t: 'req', id: nextId++, method, params }))), `mutated ${method}`);
        } else {
          const method = r.pick(API_METHODS);
          const kind = r.pick(KINDS);
          const { params, mustRefuse } = request(r, method, kind, seen);
          const text = encode({ t: 'req', id: nextId++, method, params });
          const what = `${kind} ${method} ${text.slice(0, 300)}`;
          const answer = await send(Buffer.from(text), what);
          if (answer === null) continue;
          if (mustRefuse) assert.equal((answer['error'] as { code?: string } | undefined)?.code, 'invalid-input', `must be refused as invalid input: ${what} -> ${JSON.stringify(answer).slice(0, 300)}`);
          const result = answer['result'] as Record<string, unknown> | null | undefined;
          if (answer['ok'] === true && result && typeof result === 'object') {
            if (method === 'enqueue' && typeof result['id'] === 'string') seen.tasks.push(result['id']);
            const task = result['task'] as { id?: string } | undefined;
            if (method === 'claim' && task?.id && typeof result['lease'] === 'string') seen.leases.push({ task: task.id, lease: result['lease'] });
          }
        }
      }
      assert.equal(serving.child.exitCode, null, 'the owner is still running');

      const check = async (when: string) => {
        for (const c of control) assert.equal(JSON.stringify(await call('getTask', [c.id])), c.text, `control task ${c.id} ${when}`);
      };
      await check('after the fuzz');
      link.conn?.socket.destroy();
      link.conn = null;
      await serving.stop('SIGTERM');
      serving = await sandbox.serve(o);
      await check('after a restart');
      for (const c of control) {
        const t = (await call('getTask', [c.id])) as { prompt: string | null; payload: unknown };
        assert.equal(t.prompt, c.input.prompt ?? null);
        assert.deepEqual(t.payload, c.input.payload ?? null);
      }
    } catch (e) {
      const replay = `SPARKQ_FUZZ_SEED=${SEED} npx mocha --no-config --require tsx/cjs --extension ts --timeout 180000 test/unit/fuzz.ipc.test.ts`;
      if (e instanceof Error) e.message = `fuzz seed ${SEED} (replay: ${replay}), after ${sent} frames: ${e.message}`;
      throw e;
    } finally {
      link.conn?.socket.destroy();
    }
    // Shown with the test's output, so a green run still says what it covered.
    if (process.env['SPARKQ_FUZZ_VERBOSE']) console.log(`fuzz seed ${SEED}: ${sent} frames`, counts);
    assert.ok((counts['ok'] ?? 0) > 0 && (counts['error:invalid-input'] ?? 0) > 0 && (counts['closed'] ?? 0) > 0, `a fuzz that covers nothing: ${JSON.stringify(counts)}`);
  });
});

function frameHeader(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length, 0);
  return h;
}
