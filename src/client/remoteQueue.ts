import type * as Inputs from '../core/inputs';
import type * as Model from '../core/model';
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
  Task,
  TaskDetail,
  TaskPage,
} from '../core/model';
import type { ChangeEvent, SweepResult } from '../core/queue/service';
import type { ApiMethod, QueueApi, StatusReport, WorkerJoin, WorkerPlace } from '../owner/api';
import type { IpcClient } from './ipcClient';

/**
 * The queue as seen from a process that is not the owner: every method is one request over the owner's socket.
 * Results are trusted as the owner's QueueService produced them (the owner validated the inputs); errors arrive as
 * SparkqErrors with the owner's code and message.
 */
export class RemoteQueue implements QueueApi {
  constructor(readonly client: IpcClient) {}

  private call<T>(method: ApiMethod, ...params: unknown[]): Promise<T> {
    return this.client.call(method, params, () => checkTooLarge(method, params[0])) as Promise<T>;
  }

  status(): Promise<StatusReport> {
    return this.call('status');
  }
  createSession(input: CreateSessionInput): Promise<Session> {
    return this.call('createSession', input);
  }
  listSessions(options?: { includeEnded?: boolean }): Promise<Session[]> {
    return this.call('listSessions', options);
  }
  getSession(ref: string): Promise<Session> {
    return this.call('getSession', ref);
  }
  endSession(ref: string): Promise<Session> {
    return this.call('endSession', ref);
  }
  createQueue(input: CreateQueueInput): Promise<Queue> {
    return this.call('createQueue', input);
  }
  listQueues(options?: { session?: string; includeEnded?: boolean }): Promise<Queue[]> {
    return this.call('listQueues', options);
  }
  getQueue(ref: string): Promise<Queue> {
    return this.call('getQueue', ref);
  }
  endQueue(ref: string): Promise<Queue> {
    return this.call('endQueue', ref);
  }
  enqueue(input: EnqueueInput): Promise<Task> {
    return this.call('enqueue', input);
  }
  peek(queue: string): Promise<Task | null> {
    return this.call('peek', queue);
  }
  claim(input: ClaimInput): Promise<Claim | null> {
    return this.call('claim', input);
  }
  async heartbeat(input: HeartbeatInput): Promise<void> {
    await this.call('heartbeat', input);
  }
  complete(input: CompleteInput): Promise<Task> {
    return this.call('complete', input);
  }
  fail(input: FailInput): Promise<Task> {
    return this.call('fail', input);
  }
  requeue(task: string): Promise<Task> {
    return this.call('requeue', task);
  }
  requeueFailed(input: RequeueFailedInput): Promise<Task[]> {
    return this.call('requeueFailed', input);
  }
  release(input: ReleaseInput): Promise<Task> {
    return this.call('release', input);
  }
  pauseQueue(input: PauseQueueInput): Promise<Queue> {
    return this.call('pauseQueue', input);
  }
  resumeQueue(ref: string): Promise<Queue> {
    return this.call('resumeQueue', ref);
  }
  applyPlan(input: ApplyPlanInput): Promise<PlanApplyResult> {
    return this.call('applyPlan', input);
  }
  report(input?: ReportInput): Promise<Report> {
    return input === undefined ? this.call('report') : this.call('report', input);
  }
  listTasks(input?: ListTasksInput): Promise<TaskPage> {
    return this.call('listTasks', input);
  }
  getTask(task: string): Promise<TaskDetail> {
    return this.call('getTask', task);
  }
  sweep(): Promise<SweepResult> {
    return this.call('sweep');
  }
  purge(options: { olderThanDays: number }): Promise<{ purged: number }> {
    return this.call('purge', options);
  }
  scripts(query?: string): Promise<ScriptEntry[]> {
    return this.call('scripts', query);
  }

  joinQueue(input: WorkerJoin): Promise<WorkerPlace> {
    return this.call('joinQueue', input);
  }
  async leaveQueue(input: { queue: string; worker: string }): Promise<void> {
    await this.call('leaveQueue', input);
  }

  /** Subscribes the connection once (on the first listener) and fans each batch out to every listener. */
  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.client.subscribe(listener);
  }
}

/**
 * A request too large for one frame was not sent. If its input breaks one of the queue's own limits (a 10 MB prompt),
 * this throws the queue's answer, the one the owner gives below the frame limit and a command gives when it owns the
 * queue itself: the same error whoever owns the queue. Otherwise the caller gets the frame's error. The checks (zod
 * schemas) are loaded only here, so a client that sends what fits never loads them.
 */
function checkTooLarge(method: ApiMethod, input: unknown): void {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only for a request too large to send */
  const { checkEnqueue, checkOutcome, parseInput } = require('../core/inputs') as typeof Inputs;
  const model = require('../core/model') as typeof Model;
  /* eslint-enable @typescript-eslint/no-require-imports */
  switch (method) {
    case 'enqueue':
      checkEnqueue(input);
      break;
    case 'complete':
      checkOutcome(model.CompleteInput, input, 'completion');
      break;
    case 'fail':
      checkOutcome(model.FailInput, input, 'failure');
      break;
    case 'release':
      checkOutcome(model.ReleaseInput, input, 'release');
      break;
    case 'createSession':
      parseInput(model.CreateSessionInput, input, 'session');
      break;
    case 'createQueue':
      parseInput(model.CreateQueueInput, input, 'queue');
      break;
    case 'pauseQueue':
      parseInput(model.PauseQueueInput, input, 'pause');
      break;
    case 'applyPlan':
      parseInput(model.ApplyPlanInput, input, 'plan');
      break;
    default:
      break;
  }
}
