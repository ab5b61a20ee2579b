import { checkEnqueue, checkOutcome, parseInput } from '../core/inputs';
import {
  type ApplyPlanInput,
  type Claim,
  type ClaimInput,
  CompleteInput,
  CreateQueueInput,
  CreateSessionInput,
  type EnqueueInput,
  FailInput,
  type HeartbeatInput,
  type ListTasksInput,
  PauseQueueInput,
  type PlanApplyResult,
  type Queue,
  ReleaseInput,
  type Report,
  type ReportInput,
  type RequeueFailedInput,
  type Session,
  type Task,
  type TaskDetail,
  type TaskPage,
} from '../core/model';
import type { ScriptEntry } from '../core/scriptIndex';
import type { ChangeEvent, SweepResult } from '../core/queue/service';
import type { ApiMethod, QueueApi, StatusReport, WorkerJoin, WorkerPlace } from '../owner/api';
import type { IpcClient } from './ipcClient';

/**
 * The queue as seen from a process that is not the owner: every method is one request over the owner's socket.
 * Results are trusted as the owner's QueueService produced them (the owner validated the inputs); errors arrive as
 * SparkqErrors with the owner's code and message. Inputs that carry text of a caller's choosing (prompts, payloads,
 * summaries, data, instructions) first get the queue's own checks that need no state (core/inputs), so that a value
 * over a limit is refused here with the queue's words, not sent, and never mistaken for a frame too large to send.
 */
export class RemoteQueue implements QueueApi {
  constructor(readonly client: IpcClient) {}

  private call<T>(method: ApiMethod, ...params: unknown[]): Promise<T> {
    return this.client.call(method, params) as Promise<T>;
  }

  status(): Promise<StatusReport> {
    return this.call('status');
  }
  async createSession(input: CreateSessionInput): Promise<Session> {
    parseInput(CreateSessionInput, input, 'session');
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
  async createQueue(input: CreateQueueInput): Promise<Queue> {
    parseInput(CreateQueueInput, input, 'queue');
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
  async enqueue(input: EnqueueInput): Promise<Task> {
    checkEnqueue(input);
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
  async complete(input: CompleteInput): Promise<Task> {
    checkOutcome(CompleteInput, input, 'completion');
    return this.call('complete', input);
  }
  async fail(input: FailInput): Promise<Task> {
    checkOutcome(FailInput, input, 'failure');
    return this.call('fail', input);
  }
  requeue(task: string): Promise<Task> {
    return this.call('requeue', task);
  }
  requeueFailed(input: RequeueFailedInput): Promise<Task[]> {
    return this.call('requeueFailed', input);
  }
  async release(input: ReleaseInput): Promise<Task> {
    checkOutcome(ReleaseInput, input, 'release');
    return this.call('release', input);
  }
  async pauseQueue(input: PauseQueueInput): Promise<Queue> {
    parseInput(PauseQueueInput, input, 'pause');
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
