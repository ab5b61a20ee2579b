import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { API_METHODS, type ApiMethod, type ChangeEvent, type OwnerInfo, checkParams, isApiMethod } from '../api/contract';
import { TASK_STATUSES } from '../core/constants';
import { isSparkqError } from '../core/errors';
import { checkedForRun } from '../core/inputs';
import { FrameError } from './frames';

export {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
  FrameTooLargeError,
  MAX_FRAME_BYTES,
  checkServerMessage,
  decodeJson,
  encodeFrame,
  isErrorCode,
} from './frames';

/**
 * The wire between a queue owner and its clients, imported by both sides.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (frames.ts). The length is checked
 * against MAX_FRAME_BYTES before a byte of the body is kept, so a peer cannot make us allocate what it claims. The
 * owner validates every frame with the schemas below; client messages are strict, so a stray key is a protocol error, not ignored.
 *
 * Conversation: the client sends `hello` with the owner's token first (anything else first, or nothing within the
 * hello timeout, closes the connection); the owner answers `welcome`. Then the client sends `req` frames, answered by
 * `res` frames with the same id in any order, and optionally one `sub`, after which the owner pushes `event` frames.
 */

/** Arguments per request, at most: the contract says how many each method takes; this bounds a frame before that. */
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
    method: z.enum(API_METHODS as [ApiMethod, ...ApiMethod[]]),
    params: z.array(z.unknown()).max(MAX_PARAMS),
  })
  .strict();

/**
 * Null if `params` fit `method` as the contract says (their number, each field of each); otherwise the invalid-input
 * message naming the field. Runs before a request reaches the queue, so that no well-formed request of the wrong shape
 * fails deep inside a query as 'internal'.
 */
export function paramsProblem(method: ApiMethod, params: unknown[]): string | null {
  try {
    // The request runs right after this check, in this turn: the queue takes what the check read (see checkedForRun).
    checkedForRun(() => checkParams(method, params));
    return null;
  } catch (e) {
    if (isSparkqError(e, 'invalid-input')) return e.message;
    throw e;
  }
}

export const SubscribeMessage = z.object({ t: z.literal('sub') }).strict();

export const ClientMessage = z.discriminatedUnion('t', [HelloMessage, RequestMessage, SubscribeMessage]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type HelloMessage = z.infer<typeof HelloMessage>;
export type RequestMessage = z.infer<typeof RequestMessage>;

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
    isApiMethod(m['method']) &&
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

/** Describes why `value` does not fit `schema`, in one short line for a log. */
export function schemaProblem(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return 'invalid message';
  const where = first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : '';
  const more = error.issues.length > 1 ? ` (+${error.issues.length - 1} more)` : '';
  return `${where}${first.message}${more}`.slice(0, 300);
}

