import type { z } from 'zod';
import { SparkqError } from '../core/errors';
import type * as Inputs from '../core/inputs';
import type { ChangeEvent, SweepResult } from '../core/events';
import type { ScriptEntry } from '../core/scriptIndex';
import type * as ApiSchemas from './schemas';
import type * as M from '../core/model';

/*
 * The queue API, once. Every method is one entry of QUEUE_API below: its arguments with the schema that checks each,
 * its result type, whether it changes state, and whether running it twice is harmless. Everything else is derived:
 * the QueueApi interface, the IPC method list and validation (src/ipc), the remote client's and the workspace handle's
 * forwarders and retry set (src/client), and the owner's dispatch (src/owner). Adding a method is one entry here plus
 * its implementation; test/unit/api/contract.test.ts proves every entry is served by each implementation.
 *
 * This module loads no zod: a client of a live owner never needs the schemas (the owner checks every request), so
 * they are read through `schemas()` on the first check only.
 */

export type { ChangeEvent, SweepResult } from '../core/events';

/** Who owns the queue right now, as clients are told. */
export interface OwnerInfo {
  pid: number;
  generation: number;
  /** What kind of process owns it: the extension host, `sparkq serve`, a worker, or a short CLI command. */
  role: string;
  since: string;
}

/** A worker announcing itself on a queue (`sparkq run`); repeated as a heartbeat while it runs. */
export interface WorkerJoin {
  queue: string;
  worker: string;
  /** Without a renewal for this long, the worker's place on the queue is free again. */
  leaseSeconds: number;
}

export interface WorkerLeave {
  queue: string;
  worker: string;
}

export interface WorkerPlace {
  queueId: string;
  /** The workers on the queue now, this one included. */
  workers: string[];
  maxWorkers: number;
}

/** A worker with a place on a queue now, and where it runs. */
export interface WorkerInfo {
  queue: string;
  worker: string;
  /** The machine it runs on (its host name). */
  host: string;
  /** When its place expires without a renewal. */
  until: string;
}

export interface StatusReport {
  owner: OwnerInfo;
  project: string;
  counts: M.StatusCounts & { stale: number };
  queues: M.Queue[];
  /** The workers with a place on a queue now (`sparkq run`), on every machine. */
  workers: WorkerInfo[];
}

export interface ListSessionsOptions {
  includeEnded?: boolean;
}
export interface ListQueuesOptions {
  session?: string;
  includeEnded?: boolean;
}
export interface PurgeOptions {
  olderThanDays: number;
}

/** What the argument checks are made of: the core's schemas and input checks, and the API's own option schemas. */
export type Schemas = typeof M & typeof Inputs & typeof ApiSchemas;

/** One argument of a method: its name (for messages and generated tool schemas), its schema, and how it is checked. */
export interface Param {
  name: string;
  schema: z.ZodType;
  optional: boolean;
  /**
   * The method's own checks of this argument, beyond the schema (sizes of JSON values, a prompt or a payload):
   * throws invalid-input. The same function the implementation runs, so the boundary and the queue say the same.
   */
  check: (value: unknown) => void;
}

interface MethodSpec<P extends unknown[], R> {
  /** One line on what the method does: for generated help and tool descriptions. */
  doc: string;
  /** Whether the method changes the queue (false: a read, safe for read-only hosts). */
  changesState: boolean;
  /** Whether running it twice is harmless, so a client may repeat it after a lost connection. */
  safeToRepeat: boolean;
  /**
   * For a method that makes something (enqueue, requeue): the argument, an options object, whose `idempotencyKey`
   * makes a repeat return what the first call made. A client that may repeat a call fills a key in when none is given
   * (see withIdempotencyKey), so an answer lost with a dying owner is neither lost nor doubled.
   */
  keyedArg?: number;
  /** The arguments' checks, given the loaded schemas. */
  params: (s: Schemas) => { [I in keyof P]-?: Param };
  /** Types only: never read at run time. */
  readonly _types?: { params: P; result: R };
}

function method<P extends unknown[], R>(spec: Omit<MethodSpec<P, R>, '_types'>): MethodSpec<P, R> {
  return spec;
}

/** An argument checked by its schema alone, named `what` in messages ("invalid session: name: …"). */
function arg(name: string, schema: z.ZodType, what: string, s: Schemas, optional = false): Param {
  return { name, schema, optional, check: (v) => void s.parseInput(schema, v, what) };
}
/** An argument with its own checks beyond the schema (see Param.check). */
function checked(name: string, schema: z.ZodType, check: (v: unknown) => void): Param {
  return { name, schema, optional: false, check };
}

const ref = (what: string) => (s: Schemas) => [arg(what, s.Ref, what, s)] as [Param];

export const QUEUE_API = {
  status: method<[], StatusReport>({
    doc: 'Who owns the queue, the task counts per status (stale included) and the active queues.',
    changesState: false,
    safeToRepeat: true,
    params: () => [],
  }),
  createSession: method<[input: M.CreateSessionInput], M.Session>({
    doc: 'Creates a work session: a named group of queues.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.CreateSessionInput, 'session', s)],
  }),
  listSessions: method<[options?: ListSessionsOptions], M.Session[]>({
    doc: 'Lists the sessions, active ones only unless includeEnded.',
    changesState: false,
    safeToRepeat: true,
    params: (s) => [arg('options', s.ListSessionsOptions, 'options', s, true)],
  }),
  getSession: method<[ref: string], M.Session>({
    doc: 'One session by name or id.',
    changesState: false,
    safeToRepeat: true,
    params: ref('session'),
  }),
  endSession: method<[ref: string], M.Session>({
    doc: 'Ends a session and its queues; their tasks stay readable.',
    changesState: true,
    safeToRepeat: false,
    params: ref('session'),
  }),
  createQueue: method<[input: M.CreateQueueInput], M.Queue>({
    doc: 'Creates a queue in a session, with its standing instructions and worker limit.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.CreateQueueInput, 'queue', s)],
  }),
  listQueues: method<[options?: ListQueuesOptions], M.Queue[]>({
    doc: 'Lists the queues, of one session or all, active ones only unless includeEnded.',
    changesState: false,
    safeToRepeat: true,
    params: (s) => [arg('options', s.ListQueuesOptions, 'options', s, true)],
  }),
  getQueue: method<[ref: string], M.Queue>({
    doc: 'One queue by name or id.',
    changesState: false,
    safeToRepeat: true,
    params: ref('queue'),
  }),
  endQueue: method<[ref: string], M.Queue>({
    doc: 'Ends a queue: no new tasks; its tasks stay readable.',
    changesState: true,
    safeToRepeat: false,
    params: ref('queue'),
  }),
  enqueue: method<[input: M.EnqueueInput], M.Task>({
    doc: 'Adds a task to a queue, optionally waiting on other tasks (after); a repeat with the same idempotencyKey returns the first task.',
    changesState: true,
    safeToRepeat: false,
    keyedArg: 0,
    params: (s) => [checked('input', s.EnqueueInput, (v) => void s.checkEnqueue(v))],
  }),
  peek: method<[queue: string], M.Task | null>({
    doc: 'The task a claim on the queue would get next, without claiming it.',
    changesState: false,
    safeToRepeat: true,
    params: ref('queue'),
  }),
  claim: method<[input: M.ClaimInput], M.Claim | null>({
    doc: 'Takes the oldest claimable task of a queue and starts it; null when there is none.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.ClaimInput, 'claim', s)],
  }),
  heartbeat: method<[input: M.HeartbeatInput], void>({
    doc: 'Tells the queue the worker of a running task is alive.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.HeartbeatInput, 'heartbeat', s)],
  }),
  complete: method<[input: M.CompleteInput], M.Task>({
    doc: 'Finishes a running task as succeeded, with its summary and result data.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [checked('input', s.CompleteInput, (v) => void s.checkOutcome(s.CompleteInput, v, 'completion'))],
  }),
  fail: method<[input: M.FailInput], M.Task>({
    doc: 'Finishes a running task as failed, with what went wrong.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [checked('input', s.FailInput, (v) => void s.checkOutcome(s.FailInput, v, 'failure'))],
  }),
  verdict: method<[input: M.VerdictInput], M.Task>({
    doc: "Gives a running validation task's verdict (pass or fail, with feedback) on the task it checks, and completes it.",
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.VerdictInput, 'verdict', s)],
  }),
  recordRun: method<[input: M.RecordRunInput], M.Task>({
    doc: "Records what a finished task's attempt changed in its worktree and the tokens it used (its worker does, when the task was finished without it).",
    changesState: true,
    safeToRepeat: true,
    params: (s) => [arg('input', s.RecordRunInput, 'run record', s)],
  }),
  requeue: method<[task: string, options?: M.RequeueOptions], M.Task>({
    doc: 'Puts a failed task back on its queue as a new task; a repeat with the same idempotencyKey returns that task.',
    changesState: true,
    safeToRepeat: false,
    keyedArg: 1,
    params: (s) => [arg('task', s.Ref, 'task', s), arg('options', s.RequeueOptions, 'requeue options', s, true)],
  }),
  requeueFailed: method<[input: M.RequeueFailedInput], M.Task[]>({
    doc: 'Requeues every failed task of a queue, plan or session (all when none given) that was not requeued yet.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.RequeueFailedInput, 'requeue', s)],
  }),
  release: method<[input: M.ReleaseInput], M.Task>({
    doc: 'Hands a running task back unfailed (its agent hit a usage limit) and pauses its queue until the reset.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [checked('input', s.ReleaseInput, (v) => void s.checkOutcome(s.ReleaseInput, v, 'release'))],
  }),
  pauseQueue: method<[input: M.PauseQueueInput], M.Queue>({
    doc: 'Stops claims on a queue, until resumed or for a number of seconds.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('input', s.PauseQueueInput, 'pause', s)],
  }),
  setAgentSession: method<[queue: string, ids: M.AgentSession], M.Queue>({
    doc: "Records the Codex thread and/or Claude session a queue's next task continues (null forgets it).",
    changesState: true,
    safeToRepeat: true,
    params: (s) => [arg('queue', s.Ref, 'queue', s), arg('ids', s.AgentSessionSchema, 'agent session', s)],
  }),
  resumeQueue: method<[ref: string], M.Queue>({
    doc: 'Lets claims on a paused queue go on.',
    changesState: true,
    safeToRepeat: false,
    params: ref('queue'),
  }),
  applyPlan: method<[input: M.ApplyPlanInput], M.PlanApplyResult>({
    doc: "Enqueues a parsed plan's tasks that are not enqueued yet (by plan id and task name).",
    changesState: true,
    safeToRepeat: false,
    params: (s) => [checked('input', s.ApplyPlanInput, (v) => void s.checkPlanApply(v))],
  }),
  report: method<[input?: M.ReportInput], M.Report>({
    doc: 'Tasks, run time, tokens and cost per tool, model, queue or day.',
    changesState: false,
    safeToRepeat: true,
    params: (s) => [arg('input', s.ReportInput, 'report', s, true)],
  }),
  listTasks: method<[input?: M.ListTasksInput], M.TaskPage>({
    doc: 'A page of tasks, newest first, by session, queue, status, tool, plan or text.',
    changesState: false,
    safeToRepeat: true,
    params: (s) => [arg('input', s.ListTasksInput, 'task filter', s, true)],
  }),
  getTask: method<[task: string], M.TaskDetail>({
    doc: 'One task with its attempts, summary and result data.',
    changesState: false,
    safeToRepeat: true,
    params: ref('task'),
  }),
  sweep: method<[], SweepResult>({
    doc: 'Applies the time budget now: running tasks past 1× their timeout are stale, past 2× failed.',
    changesState: true,
    safeToRepeat: true,
    params: () => [],
  }),
  purge: method<[options: PurgeOptions], { purged: number }>({
    doc: 'Removes finished tasks older than a number of days.',
    changesState: true,
    safeToRepeat: false,
    params: (s) => [arg('options', s.PurgeOptions, 'purge', s)],
  }),
  scripts: method<[query?: string], ScriptEntry[]>({
    doc: "The scripts of the workspace's script folders, all or those matching a query.",
    changesState: false,
    safeToRepeat: true,
    params: (s) => [arg('query', s.ScriptQuery, 'script query', s, true)],
  }),
  joinQueue: method<[input: WorkerJoin], WorkerPlace>({
    doc: "Takes (or renews) a worker's place on a queue; a queue takes at most its maxWorkers workers.",
    changesState: true,
    safeToRepeat: true,
    params: (s) => [arg('input', s.WorkerJoin, 'worker', s)],
  }),
  leaveQueue: method<[input: WorkerLeave], void>({
    doc: "Gives a worker's place on a queue up.",
    changesState: true,
    safeToRepeat: true,
    params: (s) => [arg('input', s.WorkerLeave, 'worker', s)],
  }),
};

type Contract = typeof QUEUE_API;
export type ApiMethod = keyof Contract;
type ParamsOf<M extends ApiMethod> = NonNullable<Contract[M]['_types']>['params'];
type ResultOf<M extends ApiMethod> = NonNullable<Contract[M]['_types']>['result'];

/** The methods of the queue API, each as its contract entry says. */
export type QueueMethods = { [M in ApiMethod]: (...args: ParamsOf<M>) => Promise<ResultOf<M>> };

/**
 * The queue as every process sees it. The owner implements it over its QueueService; every other process implements
 * it over IPC. Every method is async because, for clients, every call crosses a socket.
 */
export interface QueueApi extends QueueMethods {
  /** Change notifications, after each change is durable. Returns an unsubscribe function. */
  onChange(listener: (events: ChangeEvent[]) => void): () => void;
}

/** The request names that cross the socket: the contract's methods (the event subscription is its own message). */
export const API_METHODS = Object.keys(QUEUE_API) as ApiMethod[];
const API_METHOD_SET: ReadonlySet<unknown> = new Set(API_METHODS);

export function isApiMethod(name: unknown): name is ApiMethod {
  return API_METHOD_SET.has(name);
}

/** Methods that are harmless to run twice: a client repeats them on the next owner after a lost connection. */
export const SAFE_TO_REPEAT: ReadonlySet<ApiMethod> = new Set(API_METHODS.filter((m) => QUEUE_API[m].safeToRepeat));

let loaded: Schemas | null = null;
/** The schemas, loaded on first use (see the note at the top). */
function schemas(): Schemas {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded on the first check only, see above */
  loaded ??= {
    ...(require('../core/model') as typeof M),
    ...(require('../core/inputs') as typeof Inputs),
    ...(require('./schemas') as typeof ApiSchemas),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  return loaded;
}

const paramCache = new Map<ApiMethod, readonly Param[]>();
/** The checks of `method`'s arguments, in order. */
export function paramsOf(method: ApiMethod): readonly Param[] {
  let p = paramCache.get(method);
  if (!p) paramCache.set(method, (p = QUEUE_API[method].params(schemas()) as readonly Param[]));
  return p;
}

/**
 * Checks a request's arguments as the contract says: their number, then each against its schema and the method's own
 * checks. Throws the same invalid-input the implementation would (it runs the same checks), naming the field.
 */
export function checkParams(method: ApiMethod, params: readonly unknown[]): void {
  const spec = paramsOf(method);
  // Optional arguments come last (the contract test holds every entry to that): the rest are required.
  const firstOptional = spec.findIndex((p) => p.optional);
  const required = firstOptional === -1 ? spec.length : firstOptional;
  if (params.length < required || params.length > spec.length) {
    const names = spec.map((p) => (p.optional ? `[${p.name}]` : p.name)).join(', ');
    throw new SparkqError('invalid-input', `invalid arguments for ${method}: it takes ${names === '' ? 'no arguments' : `(${names})`}, not ${params.length}`);
  }
  for (let i = 0; i < params.length; i++) spec[i]!.check(params[i]);
}

/**
 * A QueueApi whose every method hands its arguments to one `forward`: the remote client sends them, the workspace
 * handle routes them to whoever owns the queue, the owner dispatches them to its parts. The methods are installed
 * from the contract, so an implementation never spells a method out.
 */
/* eslint-disable @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the
   interface gives the class the contract's methods, which the loop below installs on its prototype */
export abstract class ForwardingQueue {
  protected abstract forward(method: ApiMethod, params: unknown[]): Promise<unknown>;
}
export interface ForwardingQueue extends QueueMethods {}
/* eslint-enable @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type */
for (const name of API_METHODS) {
  Object.defineProperty(ForwardingQueue.prototype, name, {
    value: function (this: ForwardingQueue, ...params: unknown[]): Promise<unknown> {
      // An optional argument left out is absent, not `undefined`: JSON has no undefined, and arity is checked.
      while (params.length > 0 && params[params.length - 1] === undefined) params.pop();
      return this.forward(name, params);
    },
    writable: true,
    configurable: true,
  });
}

/**
 * `params` of a call that makes something, with an idempotency key filled in when the caller gave none (see
 * MethodSpec.keyedArg); null for any other method, and for a call whose keyed argument is not an object.
 */
export function withIdempotencyKey(method: ApiMethod, params: readonly unknown[]): unknown[] | null {
  const at = (QUEUE_API[method] as { keyedArg?: number }).keyedArg;
  if (at === undefined) return null;
  const given = params[at];
  if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given))) return null;
  const options = (given ?? {}) as { idempotencyKey?: unknown };
  if (options.idempotencyKey !== undefined) return [...params];
  const out = [...params];
  while (out.length < at) out.push(undefined);
  // The global Web Crypto, not node:crypto: a client that makes no key never loads it (one CLI call is measured).
  out[at] = { ...options, idempotencyKey: `auto-${globalThis.crypto.randomUUID()}` };
  return out;
}

/** Calls `method` of `api` with arguments as they came (over IPC, or through another forwarder). */
export function invoke(api: QueueMethods, method: ApiMethod, params: readonly unknown[]): Promise<unknown> {
  return (api[method] as (...args: unknown[]) => Promise<unknown>).apply(api, params as unknown[]);
}
