import * as vscode from 'vscode';
import type { ToolConfig } from '../../core/config';
import type { Queue, Session, Task, TaskStatus } from '../../core/model';
import type { ScriptEntry } from '../../core/scriptIndex';
import { Cancelled, UserFacingError } from '../errors';
import type { QueueReader } from '../queueReader';
import { taskDescription, taskLabel } from '../views/taskPresentation';
import { CommandId } from './commandIds';

/** QuickPicks and InputBoxes for commands run from the palette. Each throws Cancelled when the person backs out. */

async function pick<T extends vscode.QuickPickItem>(items: T[], options: vscode.QuickPickOptions): Promise<T> {
  const chosen = await vscode.window.showQuickPick(items, { ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true, ...options });
  if (!chosen) throw new Cancelled();
  return chosen;
}

export async function askText(options: vscode.InputBoxOptions & { required?: boolean }): Promise<string> {
  const required = options.required ?? true;
  const value = await vscode.window.showInputBox({
    ignoreFocusOut: true,
    ...options,
    validateInput: (v) => (required && v.trim() === '' ? 'Required' : (options.validateInput?.(v) ?? null)),
  });
  if (value === undefined) throw new Cancelled();
  return value;
}

export async function confirm(message: string, action: string): Promise<void> {
  const choice = await vscode.window.showWarningMessage(message, { modal: true }, action);
  if (choice !== action) throw new Cancelled();
}

export async function pickSession(reader: QueueReader, preferred: Session | null): Promise<Session> {
  const sessions = await reader.listSessions();
  if (sessions.length === 0) {
    throw new UserFacingError('There is no active session. Create one first ("SparkQ: Create Session").', [{ title: 'Create Session', command: CommandId.CreateSession }]);
  }
  sessions.sort((a, b) => (a.id === preferred?.id ? -1 : b.id === preferred?.id ? 1 : b.createdAt.localeCompare(a.createdAt)));
  const chosen = await pick(
    sessions.map((s) => ({ label: s.name, description: s.description.split('\n')[0] ?? '', detail: s.id, session: s })),
    { title: 'SparkQ: Choose a session', placeHolder: 'Session' },
  );
  return chosen.session;
}

export async function pickQueue(reader: QueueReader, preferred: Queue | null, session?: Session | null): Promise<Queue> {
  const queues = await reader.listQueues(session ? { session: session.id } : {});
  if (queues.length === 0) {
    throw new UserFacingError('There is no active queue. Create one first ("SparkQ: Create Queue").', [{ title: 'Create Queue', command: CommandId.CreateQueue }]);
  }
  queues.sort((a, b) => (a.id === preferred?.id ? -1 : b.id === preferred?.id ? 1 : 0));
  const chosen = await pick(
    queues.map((q) => ({
      label: q.name,
      description: q.session,
      detail: `${q.counts.queued} queued · ${q.counts.running} running${q.stale > 0 ? ` · ${q.stale} stale` : ''}`,
      queue: q,
    })),
    { title: 'SparkQ: Choose a queue', placeHolder: 'Queue' },
  );
  return chosen.queue;
}

export async function pickTask(reader: QueueReader, options: { status?: TaskStatus; queue?: Queue | null; title: string; empty: string }): Promise<Task> {
  const { tasks } = await reader.listTasks({
    ...(options.status ? { status: options.status } : {}),
    ...(options.queue ? { queue: options.queue.id } : {}),
    limit: 200,
  });
  if (tasks.length === 0) throw new UserFacingError(options.empty);
  const chosen = await pick(
    tasks.map((t) => ({ label: taskLabel(t), description: taskDescription(t), detail: `${t.id} · ${t.queue}`, task: t })),
    { title: `SparkQ: ${options.title}`, placeHolder: 'Task' },
  );
  return chosen.task;
}

export async function pickTool(tools: ToolConfig[]): Promise<ToolConfig> {
  const chosen = await pick(
    tools.map((t) => ({ label: t.name, description: `${t.kind} · ${t.taskClass}`, detail: t.description ?? '', tool: t })),
    { title: 'SparkQ: Choose the tool that runs the task', placeHolder: 'Tool' },
  );
  return chosen.tool;
}

export async function pickScript(scripts: ScriptEntry[]): Promise<ScriptEntry> {
  if (scripts.length === 0) {
    throw new UserFacingError('No scripts found in the script folders of sparkq.yml (scriptDirs). Add a script there, or pick another tool.', [
      { title: 'Open sparkq.yml', command: CommandId.OpenConfig },
    ]);
  }
  const chosen = await pick(
    scripts.map((s) => ({
      label: s.name,
      description: s.relativePath,
      detail: [s.description, s.inputs ? `inputs: ${s.inputs}` : '', s.tags.length > 0 ? `tags: ${s.tags.join(', ')}` : ''].filter(Boolean).join(' · '),
      script: s,
    })),
    { title: 'SparkQ: Choose a script', placeHolder: 'Script (from the script index)' },
  );
  return chosen.script;
}
