import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { API_METHODS, type ApiMethod, type OwnerInfo } from '../owner/api';
import type { ErrorCode } from '../core/errors';
import { TASK_STATUSES } from '../core/model';
import type { ChangeEvent } from '../core/queue/service';

/**
 * The wire between a queue owner and its clients, imported by both sides.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. The length is checked against
 * MAX_FRAME_BYTES before a byte of the body is kept, so a peer cannot make us allocate what it claims. Every frame is
 * then validated with the schemas below; client messages are strict, so a stray key is a protocol error, not ignored.
 *
 * Conversation: the client sends `hello` with the owner's token first (anything else first, or nothing within the
 * hello timeout, closes the connection); the owner answers `welcome`. Then the client sends `req` frames, answered by
 * `res` frames with the same id in any order, and optionally one `sub`, after which the owner pushes `event` frames.
 */

/** Large enough for a 256 KiB prompt or 1 MiB of result data as JSON (escaping can multiply it), small enough to cap. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;
export const FRAME_HEADER_BYTES = 4;
/** Arguments per request: no QueueApi method takes more than one; the slack is for future optional arguments. */
export const MAX_PARAMS = 4;

/** 32 random bytes as 64 lowercase hex characters: what `hello.token` must look like. */
export function newIpcToken(): string {
  return randomBytes(32).toString('hex');
}

// ---- messages ----------------------------------------------------------------------------------------------------

export const IPC_TOKEN_PATTERN = /^[0-9a-f]{64}$/;

export const HelloMessage = z
  .object({
    t: z.literal('hello'),
    token: z.string().regex(IPC_TOKEN_PATTERN),
    /** Who is calling, for the owner's log: e.g. `cli`, `worker Back End`. */
    client: z.string().max(200).optional(),
  })
  .strict();

export const RequestMessage = z
  .object({
    t: z.literal('req'),
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    method: z.enum(API_METHODS),
    params: z.array(z.unknown()).max(MAX_PARAMS),
  })
  .strict();

/**
 * The shape of each method's arguments: which are strings (names or ids) and which are input objects. Only the shape:
 * the QueueService validates the contents with its own schemas. Checked by the owner before a request reaches the
 * queue, so that `getTask(5)` is an 'invalid-input' answer rather than an internal failure deep in a query.
 */
const inputObject = z.record(z.string(), z.unknown());
const none = z.tuple([]);
const oneString = z.tuple([z.string()]);
const oneObject = z.tuple([inputObject]);
const optionalObject = z.union([none, oneObject]);
export const METHOD_PARAMS = {
  status: none,
  createSession: oneObject,
  listSessions: optionalObject,
  getSession: oneString,
  endSession: oneString,
  createQueue: oneObject,
  listQueues: optionalObject,
  getQueue: oneString,
  endQueue: oneString,
  enqueue: oneObject,
  peek: oneString,
  claim: oneObject,
  heartbeat: oneObject,
  complete: oneObject,
  fail: oneObject,
  requeue: oneString,
  requeueFailed: oneObject,
  release: oneObject,
  pauseQueue: oneObject,
  resumeQueue: oneString,
  applyPlan: oneObject,
  report: optionalObject,
  listTasks: optionalObject,
  getTask: oneString,
  sweep: none,
  purge: oneObject,
  scripts: z.union([none, oneString]),
  joinQueue: oneObject,
  leaveQueue: oneObject,
} as const satisfies Record<ApiMethod, z.ZodType<unknown[]>>;

const PARAM_SHAPES = new Map<z.ZodType, string>([
  [none, 'no arguments'],
  [oneString, 'one string (a name or id)'],
  [oneObject, 'one input object'],
  [optionalObject, 'nothing or one options object'],
]);

/**
 * What METHOD_PARAMS says, as a test per schema: runs on every request after the message itself passed zod, so it is
 * written out rather than parsed a second time. A test in ipc.test.ts checks it against the schemas.
 */
const isInputObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
const PARAM_TESTS = new Map<z.ZodType, (p: unknown[]) => boolean>([
  [none, (p) => p.length === 0],
  [oneString, (p) => p.length === 1 && typeof p[0] === 'string'],
  [oneObject, (p) => p.length === 1 && isInputObject(p[0])],
  [optionalObject, (p) => p.length === 0 || (p.length === 1 && isInputObject(p[0]))],
]);

/** Null if `params` fit `method`; otherwise what was expected, for an 'invalid-input' answer. */
export function paramsProblem(method: ApiMethod, params: unknown[]): string | null {
  const schema: z.ZodType = METHOD_PARAMS[method];
  const test = PARAM_TESTS.get(schema);
  if (test ? test(params) : schema.safeParse(params).success) return null;
  const expected = PARAM_SHAPES.get(schema) ?? (method === 'scripts' ? 'nothing or one query string' : 'other arguments');
  return `invalid arguments for ${method}: it takes ${expected}`;
}

export const SubscribeMessage = z.object({ t: z.literal('sub') }).strict();

export const ClientMessage = z.discriminatedUnion('t', [HelloMessage, RequestMessage, SubscribeMessage]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type HelloMessage = z.infer<typeof HelloMessage>;
export type RequestMessage = z.infer<typeof RequestMessage>;

const API_METHOD_SET: ReadonlySet<unknown> = new Set(API_METHODS);

/**
 * The owner's check of a message from a client: exactly what the ClientMessage schema accepts. A request, the
 * message of every call, is checked by hand first (exactly its four keys, of the schema's types); anything that does
 * not pass that goes through the schema, which accepts the rest (hello, sub) or says what is wrong. A test in
 * ipc.test.ts holds the two to the same answers. Throws FrameError.
 */
export function parseClientMessage(v: unknown): ClientMessage {
  if (isRequest(v)) return v;
  const parsed = ClientMessage.safeParse(v);
  if (!parsed.success) throw new FrameError(`invalid message: ${schemaProblem(parsed.error)}`);
  return parsed.data;
}

function isRequest(v: unknown): v is RequestMessage {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const m = v as Record<string, unknown>;
  const id = m['id'];
  const params = m['params'];
  return (
    m['t'] === 'req' &&
    Object.keys(m).length === 4 &&
    typeof id === 'number' &&
    Number.isSafeInteger(id) &&
    id >= 0 &&
    API_METHOD_SET.has(m['method']) &&
    Array.isArray(params) &&
    params.length <= MAX_PARAMS
  );
}

export const OwnerInfoSchema = z.object({
  pid: z.number().int(),
  generation: z.number().int(),
  role: z.string(),
  since: z.string(),
}) satisfies z.ZodType<OwnerInfo>;

export const ChangeEventSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('session'), id: z.string() }),
  z.object({ kind: z.literal('queue'), id: z.string() }),
  z.object({ kind: z.literal('task'), id: z.string(), queueId: z.string(), status: z.enum([...TASK_STATUSES, 'removed']) }),
]) satisfies z.ZodType<ChangeEvent>;

/** Every ErrorCode, so that a code arriving over the wire can be checked; `satisfies` keeps it exhaustive. */
const ERROR_CODES = {
  'invalid-input': true,
  'not-found': true,
  conflict: true,
  'lease-mismatch': true,
  config: true,
  corrupt: true,
  'store-failed': true,
  internal: true,
  unavailable: true,
  closed: true,
} as const satisfies Record<ErrorCode, true>;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

export const WireError = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type WireError = z.infer<typeof WireError>;

export const WelcomeMessage = z.object({ t: z.literal('welcome'), owner: OwnerInfoSchema });
export const ResponseMessage = z.discriminatedUnion('ok', [
  // `result` is absent for methods that return nothing (JSON has no undefined).
  z.object({ t: z.literal('res'), id: z.number().int().min(0), ok: z.literal(true), result: z.unknown().optional() }),
  z.object({ t: z.literal('res'), id: z.number().int().min(0), ok: z.literal(false), error: WireError }),
]);
export const EventMessage = z.object({ t: z.literal('event'), events: z.array(ChangeEventSchema) });
/**
 * The owner is handing over: it answers what it already received, refuses anything newer as not run, and waits for
 * the client to close. Sockets keep order, so every request a client sent before it read this reaches the owner
 * first and gets an answer — no call is left in doubt by a graceful hand-over.
 */
export const ByeMessage = z.object({ t: z.literal('bye') });

/**
 * The owner's messages, as a schema: the reference for what the owner sends (and what tests check it against).
 * Unknown keys are allowed, so a newer owner may add fields. Clients use checkServerMessage, below, on every frame.
 */
export const ServerMessage = z.union([WelcomeMessage, ResponseMessage, EventMessage, ByeMessage]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ResponseMessage = z.infer<typeof ResponseMessage>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const CHANGE_KINDS: ReadonlySet<unknown> = new Set(['session', 'queue', 'task']);

/**
 * The client's check of a message from the owner: a light structural one, not the zod schema above. The owner is the
 * party a client chose to trust (it proved it holds the lock and knows the token file's secret), and it validated
 * every input itself; what a client must still be sure of is the envelope it dispatches on — the kind of message, an
 * answer's id and outcome, an error's code and message, the events' kinds and ids — so that a broken or foreign peer
 * is detected as a protocol error rather than crashing the caller. Results are passed through as the owner made them
 * (RemoteQueue documents this). This runs on every answer in every client process, where code runs cold; the zod
 * union cost more than the rest of a round trip's JavaScript together.
 */
export function checkServerMessage(v: unknown): ServerMessage {
  if (!isObject(v)) throw new FrameError('invalid message: not an object');
  switch (v['t']) {
    case 'res': {
      if (!isId(v['id'])) throw new FrameError('invalid message: id: not a request id');
      if (v['ok'] === true) return v as ServerMessage;
      if (v['ok'] !== false) throw new FrameError('invalid message: ok: not a boolean');
      const e = v['error'];
      if (!isObject(e) || typeof e['code'] !== 'string' || typeof e['message'] !== 'string') throw new FrameError('invalid message: error: not a {code, message} object');
      if (e['details'] !== undefined && !isObject(e['details'])) throw new FrameError('invalid message: error.details: not an object');
      return v as ServerMessage;
    }
    case 'event': {
      const events = v['events'];
      if (!Array.isArray(events)) throw new FrameError('invalid message: events: not an array');
      for (const e of events as unknown[]) {
        if (!isObject(e) || !CHANGE_KINDS.has(e['kind']) || typeof e['id'] !== 'string') throw new FrameError('invalid message: events: not change events');
        if (e['kind'] === 'task' && (typeof e['queueId'] !== 'string' || typeof e['status'] !== 'string')) throw new FrameError('invalid message: events: a task event without queueId and status');
      }
      return v as ServerMessage;
    }
    case 'welcome': {
      const parsed = WelcomeMessage.safeParse(v); // once per connection: the full schema
      if (!parsed.success) throw new FrameError(`invalid message: ${schemaProblem(parsed.error)}`);
      return parsed.data;
    }
    case 'bye':
      return { t: 'bye' };
    default:
      throw new FrameError(`invalid message: t: ${JSON.stringify(v['t'])?.slice(0, 40) ?? 'missing'} is not an owner message`);
  }
}

// ---- frames ------------------------------------------------------------------------------------------------------

/** A frame that breaks the protocol; the connection it came from cannot be trusted to stay in sync and is closed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** A message that does not fit in one frame: nothing of it was sent. */
export class FrameTooLargeError extends FrameError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`the message is ${bytes} bytes as JSON; the limit per frame is ${limit}`);
    this.name = 'FrameTooLargeError';
  }
}

/** Serialises `message` into one frame; throws FrameError if it has no JSON form, FrameTooLargeError if too long. */
export function encodeFrame(message: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const json = JSON.stringify(message);
  if (json === undefined) throw new FrameError('the message has no JSON form');
  const length = Buffer.byteLength(json, 'utf8');
  if (length > maxBytes) throw new FrameTooLargeError(length, maxBytes);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, FRAME_HEADER_BYTES, 'utf8');
  return frame;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a frame body as strict UTF-8 JSON; throws FrameError on either failure. */
export function decodeJson(body: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new FrameError('the frame is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FrameError(`the frame is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Describes why `value` does not fit `schema`, in one short line for a log. */
export function schemaProblem(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return 'invalid message';
  const where = first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : '';
  const more = error.issues.length > 1 ? ` (+${error.issues.length - 1} more)` : '';
  return `${where}${first.message}${more}`.slice(0, 300);
}

const SMALL_CHUNK_BYTES = 4 * 1024;
const SLAB_BYTES = 64 * 1024;

/**
 * Splits a byte stream into frame bodies. Chunks are kept as a list and copied once, when a whole frame is there, so
 * a large frame arriving in many small chunks costs linear time. A declared length of 0 or above the limit throws as
 * soon as the 4 header bytes have arrived, before any of the body is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being read, once its header is in; null while waiting for a header. */
  private expected: number | null = null;
  private failed = false;
  /** Staging area for small chunks; bytes in slab[slabStart, slabEnd) come after every entry of `chunks`. */
  private slab: Buffer | null = null;
  private slabStart = 0;
  private slabEnd = 0;

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Bytes held that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** True while a frame has begun (some of its header or body arrived) but has not completed. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.expected !== null;
  }

  /**
   * Adds `chunk` and returns the frame bodies it completes, in order. After a throw the decoder stays failed.
   * `borrowed`: the chunk's bytes are reused after this call (a read buffer), so whatever is kept is copied.
   */
  push(chunk: Buffer, options: { borrowed?: boolean } = {}): Buffer[] {
    if (this.failed) throw new FrameError('the stream already broke the protocol');
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.sealSlab();
      this.chunks.push(options.borrowed ? Buffer.from(chunk) : chunk);
    } else if (chunk.length > 0) {
      // A peer trickling bytes would otherwise leave one Buffer object per byte; small chunks are copied side by side
      // into a slab instead, so the chunk count stays proportional to bytes / SMALL_CHUNK_BYTES.
      if (this.slab === null || this.slab.length - this.slabEnd < chunk.length) {
        this.sealSlab();
        this.slab = Buffer.allocUnsafe(SLAB_BYTES);
        this.slabStart = this.slabEnd = 0;
      }
      chunk.copy(this.slab, this.slabEnd);
      this.slabEnd += chunk.length;
    }
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.expected === null) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        this.sealSlab();
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length === 0 || length > this.maxBytes) {
          this.failed = true;
          this.chunks = [];
          this.slab = null;
          this.buffered = 0;
          throw new FrameError(length === 0 ? 'empty frame' : `frame of ${length} bytes is over the ${this.maxBytes}-byte limit`);
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      this.sealSlab();
      frames.push(this.take(this.expected));
      this.expected = null;
    }
    return frames;
  }

  /** Moves the slab's unsealed bytes to the end of `chunks`, keeping its spare room for the next small chunks. */
  private sealSlab(): void {
    if (this.slab !== null && this.slabEnd > this.slabStart) {
      this.chunks.push(this.slab.subarray(this.slabStart, this.slabEnd));
      this.slabStart = this.slabEnd;
    }
  }

  /** Removes and returns the first `n` bytes of `chunks` (n ≤ their total, the slab sealed). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      // Copy: a small frame must not pin a large socket chunk in memory through a view.
      return Buffer.from(first.subarray(0, n));
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
