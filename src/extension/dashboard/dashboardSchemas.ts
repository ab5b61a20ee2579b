import { z } from 'zod';
import type { Task } from '../../core/model';
import { type DashboardMethod, type DashboardParams, type DashboardRequest, STATUS_FILTERS, TASK_ACTIONS, type TaskRow } from '../../shared/dashboardProtocol';

/**
 * The host's side of the dashboard protocol: zod schemas for what the page sends, and the reduction of a task to a
 * table row. Only the extension bundle imports this file, so the page's bundle carries no zod.
 */

const id = z.string().trim().min(1).max(200);
const optionalRef = z.string().trim().max(200).optional();

const TaskQuerySchema = z
  .object({
    session: optionalRef,
    queue: optionalRef,
    status: z.enum(STATUS_FILTERS).optional(),
    tool: optionalRef,
    text: z.string().max(500).optional(),
    limit: z.number().int().min(1).max(200),
    before: id.optional(),
  })
  .strict();

const EnqueueFormSchema = z
  .object({
    queue: z.string().max(200),
    tool: z.string().max(200),
    script: z.string().max(500).optional(),
    args: z.string().max(10_000).optional(),
    prompt: z.string().max(256 * 1024).optional(),
    timeoutSeconds: z.string().max(20).optional(),
    priority: z.string().max(20).optional(),
    after: z.string().max(20_000).optional(),
    pattern: z.string().max(200).optional(),
    vars: z
      .record(z.string().max(200), z.string().max(256 * 1024))
      .refine((v) => Object.keys(v).length <= 100, 'at most 100 variables')
      .optional(),
    validateWith: z.string().max(200).optional(),
    validatePrompt: z.string().max(256 * 1024).optional(),
    validateQueue: z.string().max(400).optional(),
    maxRounds: z.string().max(20).optional(),
  })
  .strict();

const noParams = z.object({}).strict();

/** Each request's parameters. */
export const RequestParamSchemas = {
  overview: noParams,
  listTasks: TaskQuerySchema,
  getTask: z.object({ task: id }).strict(),
  scripts: z.object({ query: z.string().max(200) }).strict(),
  enqueue: EnqueueFormSchema,
  taskAction: z.object({ task: id, action: z.enum(TASK_ACTIONS), text: z.string().max(16 * 1024).optional() }).strict(),
  startWorker: z.object({ queue: id }).strict(),
  usage: noParams,
  pauseQueue: z.object({ queue: id }).strict(),
  resumeQueue: z.object({ queue: id }).strict(),
  requeueFailed: z.object({ queue: id }).strict(),
  plans: z.object({ plan: id.optional() }).strict(),
  patterns: z.object({ stats: z.boolean().optional() }).strict(),
} as const;

// The page is typed by the shared protocol and the host by these schemas: a schema that accepts or gives anything
// else than the shared type of its method fails to compile here, instead of refusing what the page sends.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type SchemaMatches = {
  [M in DashboardMethod]: Same<z.input<(typeof RequestParamSchemas)[M]>, DashboardParams<M>> extends true
    ? Same<z.output<(typeof RequestParamSchemas)[M]>, DashboardParams<M>> extends true
      ? true
      : M
    : M;
};
const schemasMatchTheProtocol: { [M in DashboardMethod]: true } = {} as SchemaMatches;
void schemasMatchTheProtocol;

const METHODS = Object.keys(RequestParamSchemas) as DashboardMethod[];
const isMethod = (m: unknown): m is DashboardMethod => typeof m === 'string' && (METHODS as string[]).includes(m);

/** The part of a request the answer needs: an id the page can have given (it counts up from 0). */
const RequestEnvelopeSchema = z.object({ type: z.literal('request'), id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) });
const RequestSchema = z.object({ type: z.literal('request'), id: z.number(), method: z.string(), params: z.unknown() }).strict();
const ReadySchema = z.object({ type: z.literal('ready') }).strict();

/** A message from the page, checked: a request to answer, a request to refuse (with why), or nothing to answer. */
export type CheckedMessage =
  | { kind: 'ready' }
  | { kind: 'request'; request: DashboardRequest }
  | { kind: 'bad-request'; id: number; method: string; error: string }
  | { kind: 'ignored' };

/**
 * Sorts what the page sent. Anything that carries a request id gets an answer: when the method or its parameters are
 * wrong, an error that says which (the page would otherwise wait for ever). Only a message with no usable id (not a
 * request, or an id the page never gives) is ignored, since no answer could reach anything waiting for it.
 */
export function checkWebviewMessage(raw: unknown): CheckedMessage {
  if (ReadySchema.safeParse(raw).success) return { kind: 'ready' };
  const envelope = RequestEnvelopeSchema.safeParse(raw);
  if (!envelope.success) return { kind: 'ignored' };
  const reqId = envelope.data.id;
  const shape = RequestSchema.safeParse(raw);
  const method = (raw as { method?: unknown }).method;
  const name = typeof method === 'string' ? method.slice(0, 60) : '?';
  const bad = (error: string): CheckedMessage => ({ kind: 'bad-request', id: reqId, method: name, error });
  if (!shape.success) return bad(`The dashboard sent a malformed request (${describeIssues(shape.error)}).`);
  if (!isMethod(method)) return bad(`The dashboard asked for "${name}", which the extension does not answer.`);
  const params = RequestParamSchemas[method].safeParse(shape.data.params);
  if (!params.success) return bad(`The dashboard sent a bad ${method} request (${describeIssues(params.error)}).`);
  return { kind: 'request', request: { type: 'request', id: reqId, method, params: params.data } as DashboardRequest };
}

function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
  return shown.join('; ') + (error.issues.length > 3 ? `; and ${error.issues.length - 3} more` : '');
}

/** The longest first line of a prompt a row carries. */
export const ROW_PROMPT_CHARS = 200;
/** A script tool's arguments in a row, up to about this many characters in all. */
const ROW_ARGS_CHARS = 500;

/** A task as the Tasks table shows it (see TaskRow). */
export function toTaskRow(t: Task): TaskRow {
  const line = t.prompt === null ? null : (t.prompt.split(/\r?\n/).find((l) => l.trim() !== '') ?? '').trim().slice(0, ROW_PROMPT_CHARS);
  let payload: TaskRow['payload'] = null;
  const p = t.payload;
  if (p !== null && typeof p === 'object' && !Array.isArray(p) && typeof p['script'] === 'string') {
    const args: string[] = [];
    let chars = 0;
    for (const a of Array.isArray(p['args']) ? p['args'] : []) {
      if (typeof a !== 'string') continue;
      if (chars + a.length > ROW_ARGS_CHARS) {
        args.push(`${a.slice(0, Math.max(0, ROW_ARGS_CHARS - chars))}…`);
        break;
      }
      args.push(a);
      chars += a.length + 1;
    }
    payload = { script: p['script'], args };
  }
  return {
    id: t.id,
    status: t.status,
    stale: t.stale,
    queue: t.queue,
    tool: t.tool,
    priority: t.priority,
    createdAt: t.createdAt,
    startedAt: t.startedAt,
    finishedAt: t.finishedAt,
    waitingOn: t.waitingOn,
    blockedBy: t.blockedBy,
    notBefore: t.notBefore,
    prompt: line,
    payload,
    validates: t.validates,
    validation: t.validation === null ? null : { status: t.validation.status, round: t.validation.round, maxRounds: t.validation.maxRounds },
  };
}
