import type { ScriptEntry } from '../core/scriptIndex';
import type {
  ApplyPlanInput,
  Claim,
  ClaimInput,
  CompleteInput,
  CreateQueueInput,
  CreateSessionInput,
  EnqueueInput,
  FailInput,
  HeartbeatInput,
  ListTasksInput,
  PauseQueueInput,
  PlanApplyResult,
  Queue,
  ReleaseInput,
  Report,
  ReportInput,
  RequeueFailedInput,
  Session,
  StatusCounts,
  Task,
  TaskDetail,
  TaskPage,
} from '../core/model';
import type { ChangeEvent, SweepResult } from '../core/queue/service';

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

export interface WorkerPlace {
  queueId: string;
  /** The workers on the queue now, this one included. */
  workers: string[];
  maxWorkers: number;
}

export interface StatusReport {
  owner: OwnerInfo;
  project: string;
  counts: StatusCounts & { stale: number };
  queues: Queue[];
}

/**
 * The queue as every process sees it. The owner implements it directly over its QueueService; every other process
 * implements it over IPC. Every method is async because, for clients, every call crosses a socket.
 */
export interface QueueApi {
  status(): Promise<StatusReport>;
  createSession(input: CreateSessionInput): Promise<Session>;
  listSessions(options?: { includeEnded?: boolean }): Promise<Session[]>;
  getSession(ref: string): Promise<Session>;
  endSession(ref: string): Promise<Session>;
  createQueue(input: CreateQueueInput): Promise<Queue>;
  listQueues(options?: { session?: string; includeEnded?: boolean }): Promise<Queue[]>;
  getQueue(ref: string): Promise<Queue>;
  endQueue(ref: string): Promise<Queue>;
  enqueue(input: EnqueueInput): Promise<Task>;
  peek(queue: string): Promise<Task | null>;
  claim(input: ClaimInput): Promise<Claim | null>;
  heartbeat(input: HeartbeatInput): Promise<void>;
  complete(input: CompleteInput): Promise<Task>;
  fail(input: FailInput): Promise<Task>;
  requeue(task: string): Promise<Task>;
  /** Requeues every failed task of a queue, plan or session (all when none given) that was not requeued yet. */
  requeueFailed(input: RequeueFailedInput): Promise<Task[]>;
  /** Hands a running task back unfailed (its agent hit a usage/rate limit) and pauses its queue until the reset. */
  release(input: ReleaseInput): Promise<Task>;
  pauseQueue(input: PauseQueueInput): Promise<Queue>;
  resumeQueue(ref: string): Promise<Queue>;
  /** Enqueues a parsed plan's tasks that are not enqueued yet (by plan id and task name). */
  applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult>;
  /** Tasks, run time, tokens and cost per tool, model, queue or day. */
  report(input?: ReportInput): Promise<Report>;
  listTasks(input?: ListTasksInput): Promise<TaskPage>;
  getTask(task: string): Promise<TaskDetail>;
  sweep(): Promise<SweepResult>;
  purge(options: { olderThanDays: number }): Promise<{ purged: number }>;
  scripts(query?: string): Promise<ScriptEntry[]>;
  /**
   * Takes (or renews) a worker's place on a queue. A queue takes at most its maxWorkers workers (default 1); a worker
   * beyond that is refused with 'conflict'. Places live in the owner and expire without renewal, so a dead worker
   * frees its place by itself and a new owner learns the workers from their next renewal.
   */
  joinQueue(input: WorkerJoin): Promise<WorkerPlace>;
  leaveQueue(input: { queue: string; worker: string }): Promise<void>;
  /** Change notifications, after each change is durable. Returns an unsubscribe function. */
  onChange(listener: (events: ChangeEvent[]) => void): () => void;
}

/** The request names that cross the socket: exactly the QueueApi methods, minus the event subscription. */
export const API_METHODS = [
  'status',
  'createSession',
  'listSessions',
  'getSession',
  'endSession',
  'createQueue',
  'listQueues',
  'getQueue',
  'endQueue',
  'enqueue',
  'peek',
  'claim',
  'heartbeat',
  'complete',
  'fail',
  'requeue',
  'requeueFailed',
  'release',
  'pauseQueue',
  'resumeQueue',
  'applyPlan',
  'report',
  'listTasks',
  'getTask',
  'sweep',
  'purge',
  'scripts',
  'joinQueue',
  'leaveQueue',
] as const satisfies readonly Exclude<keyof QueueApi, 'onChange'>[];
export type ApiMethod = (typeof API_METHODS)[number];
