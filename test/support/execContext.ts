import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultConfig, type ToolConfig } from '../../src/core/config';
import type { JsonValue, Queue, Task } from '../../src/core/model';
import type { ExecContext, OutputStream } from '../../src/worker/types';
import { fakeQueue, fakeTask } from './model';

/**
 * A hand-built ExecContext for calling an executor directly, without a queue or a runner: what the runner would
 * pass for one claimed task, with the executor's output collected for assertions.
 */

export interface ExecContextOptions {
  tool: ToolConfig;
  /** The workspace; the tool runs here unless `cwd` says otherwise. */
  workspaceDir: string;
  cwd?: string;
  prompt?: string | null;
  payload?: JsonValue | null;
  instructions?: string;
  /** Fields of the queue, e.g. its codexThreadId / claudeSessionId from the previous task. */
  queue?: Partial<Queue>;
  /** The tool's environment before tool.env (the runner passes the worker's own). Default: PATH and HOME only. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  allowBypass?: boolean;
  taskId?: string;
}

export interface OutputLine {
  text: string;
  stream: OutputStream;
}

let taskSeq = 0;

export function makeExecContext(o: ExecContextOptions): { ctx: ExecContext; output: OutputLine[]; text: (stream?: OutputStream) => string } {
  const now = new Date().toISOString();
  const taskId = o.taskId ?? `tsk_test${String(++taskSeq).padStart(4, '0')}`;
  const instructions = o.instructions ?? '';
  const queue: Queue = fakeQueue({
    id: 'que_test',
    name: 'q',
    sessionId: 'ses_test',
    instructions,
    workdir: o.cwd ?? null,
    createdAt: now,
    counts: { queued: 0, running: 1, succeeded: 0, failed: 0 },
    ...o.queue,
  });
  const task: Task = fakeTask({
    id: taskId,
    sessionId: queue.sessionId,
    session: queue.session,
    queueId: queue.id,
    queue: queue.name,
    tool: o.tool.name,
    taskClass: o.tool.taskClass,
    prompt: o.prompt === undefined ? 'Say hello.' : o.prompt,
    payload: o.payload ?? null,
    status: 'running',
    attempt: 1,
    worker: 'test-worker',
    createdAt: now,
    startedAt: now,
    heartbeatAt: now,
  });
  const runDir = path.join(o.workspaceDir, '.sparkq', 'runs', taskId);
  fs.mkdirSync(runDir, { recursive: true });
  const config = defaultConfig('test');
  config.tools[o.tool.name] = o.tool;
  const base = o.env ?? { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/' };
  const output: OutputLine[] = [];
  const ctx: ExecContext = {
    task,
    queue,
    instructions,
    tool: o.tool,
    config,
    workspaceDir: o.workspaceDir,
    cwd: o.cwd ?? o.workspaceDir,
    env: { ...base, SPARKQ_TASK_ID: taskId, SPARKQ_QUEUE: queue.name, SPARKQ_LEASE: 'lease_test', SPARKQ_WORKSPACE: o.workspaceDir, ...o.tool.env },
    runDir,
    signal: o.signal ?? new AbortController().signal,
    output: (text, stream) => output.push({ text, stream }),
    userSettings: { allowBypass: o.allowBypass ?? false },
  };
  const text = (stream?: OutputStream) =>
    output
      .filter((l) => stream === undefined || l.stream === stream)
      .map((l) => l.text)
      .join('');
  return { ctx, output, text };
}
