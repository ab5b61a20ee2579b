import type * as vscode from 'vscode';
import type { Claim, ClaimInput, CompleteInput, EnqueueInput, FailInput, ListTasksInput, Task, TaskDetail, TaskPage } from '../core/model';
import type { ChangeEvent } from '../api/contract';
import type { QueueConnection } from './queueConnection';

/**
 * What `activate` returns, for other extensions: `vscode.extensions.getExtension<SparkqApi>('sparkq.sparkq')
 * .activate()`. Every call goes to the workspace queue (owned by this window or another process). Calls that change
 * the queue refuse in Restricted Mode.
 */
export interface SparkqApi {
  readonly apiVersion: 1;
  enqueue(input: EnqueueInput): Promise<Task>;
  claim(input: ClaimInput): Promise<Claim | null>;
  complete(input: CompleteInput): Promise<Task>;
  fail(input: FailInput): Promise<Task>;
  requeue(task: string): Promise<Task>;
  listTasks(input?: ListTasksInput): Promise<TaskPage>;
  getTask(task: string): Promise<TaskDetail>;
  /** Fired after queue data changed (already durable); an empty list means "re-read everything". */
  readonly onDidChange: vscode.Event<ChangeEvent[]>;
}

export function createSparkqApi(connection: QueueConnection): SparkqApi {
  return {
    apiVersion: 1,
    enqueue: async (input) => (await connection.api('enqueue a task')).enqueue(input),
    claim: async (input) => (await connection.api('claim a task')).claim(input),
    complete: async (input) => (await connection.api('complete a task')).complete(input),
    fail: async (input) => (await connection.api('fail a task')).fail(input),
    requeue: async (task) => (await connection.api('requeue a task')).requeue(task),
    listTasks: async (input) => (await connection.reader()).listTasks(input),
    getTask: async (task) => (await connection.reader()).getTask(task),
    onDidChange: connection.onDidChange,
  };
}
