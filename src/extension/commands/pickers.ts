import * as vscode from 'vscode';
import type { ToolConfig } from '../../core/config';
import type { Queue, Session, Task, TaskStatus } from '../../core/model';
import type { Pattern } from '../../core/patterns';
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

/** A prompt pattern to make the prompt from, or null for none (the first item). */
export async function pickPattern(patterns: Pattern[]): Promise<Pattern | null> {
  const none = { label: '$(circle-slash) No pattern', description: 'write the prompt yourself', pattern: null };
  const chosen = await pick(
    [
      none,
      ...patterns.map((p) => ({
        label: p.name,
        description: [p.tool ?? 'no tool', ...(p.validate ? [`validated by ${p.validate.tool}`] : [])].join(' · '),
        detail: p.description,
        pattern: p,
      })),
    ],
    { title: 'SparkQ: Make the prompt from a pattern?', placeHolder: 'Prompt pattern (sparkq patterns)' },
  );
  return chosen.pattern;
}

/** Each variable of `p` in turn: its default pre-filled, its description as the prompt; one without a default is required. */
export async function askPatternVariables(p: Pattern): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  const names = Object.keys(p.variables);
  for (const [i, name] of names.entries()) {
    const v = p.variables[name]!;
    values[name] = await askText({
      title: `SparkQ: ${p.name} — ${name} (${i + 1}/${names.length})`,
      prompt: v.default === null ? `${v.description} (required)` : `${v.description} (default ${v.default})`,
      value: v.default ?? '',
      required: v.default === null,
    });
  }
  return values;
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

/** A queue, or a whole session ("one worker on each of its queues"), for `SparkQ: Start Workers`. */
export async function pickQueueOrSession(reader: QueueReader, preferred: Queue | null, session: Session | null): Promise<{ queue: Queue } | { session: string }> {
  const queues = await reader.listQueues(session ? { session: session.id } : {});
  const sessions = session ? [session] : await reader.listSessions();
  if (queues.length === 0) {
    throw new UserFacingError('There is no active queue. Create one first ("SparkQ: Create Queue").', [{ title: 'Create Queue', command: CommandId.CreateQueue }]);
  }
  queues.sort((a, b) => (a.id === preferred?.id ? -1 : b.id === preferred?.id ? 1 : 0));
  type Item = vscode.QuickPickItem & { target?: { queue: Queue } | { session: string } };
  const items: Item[] = [
    ...queues.map((q) => ({
      label: `$(list-ordered) ${q.name}`,
      description: q.session,
      detail: `up to ${q.maxWorkers} worker${q.maxWorkers === 1 ? '' : 's'} · ${q.counts.queued} queued · ${q.counts.running} running`,
      target: { queue: q },
    })),
    { label: 'Sessions', kind: vscode.QuickPickItemKind.Separator },
    ...sessions
      .filter((s) => queues.some((q) => q.sessionId === s.id))
      .map((s) => ({ label: `$(folder-library) ${s.name}`, description: 'one worker on each of its queues', detail: s.id, target: { session: s.id } })),
  ];
  const chosen = await pick(items, { title: 'SparkQ: Start workers on which queue (or session)?', placeHolder: 'Queue or session' });
  if (!chosen.target) throw new Cancelled();
  return chosen.target;
}

/** How many worker terminals the queue should have, 1…maxWorkers; the queue's maxWorkers first. */
export async function pickWorkerCount(queue: Queue, running: number): Promise<number> {
  const counts = Array.from({ length: queue.maxWorkers }, (_, i) => queue.maxWorkers - i);
  const chosen = await pick(
    counts.map((n) => ({
      label: String(n),
      description: n === queue.maxWorkers ? 'the queue’s maxWorkers' : '',
      detail: n <= running ? `already running ${running}` : `opens ${n - running} terminal${n - running === 1 ? '' : 's'}`,
      n,
    })),
    { title: `SparkQ: How many workers on ${queue.name}?`, placeHolder: `1 to ${queue.maxWorkers}` },
  );
  return chosen.n;
}

/**
 * The tasks a new task waits on: a multi-select of the unfinished tasks of the queue's session. Skippable: choosing
 * none (or pressing Escape) waits on nothing; an empty session skips the step.
 */
export async function pickDependencies(reader: QueueReader, sessionId: string): Promise<string[]> {
  const { tasks } = await reader.listTasks({ session: sessionId, status: ['queued', 'running'], limit: 200 });
  if (tasks.length === 0) return [];
  const chosen = await vscode.window.showQuickPick(
    tasks.map((t) => ({ label: taskLabel(t), description: taskDescription(t), detail: `${t.id} · ${t.queue}`, task: t })),
    {
      canPickMany: true,
      ignoreFocusOut: true,
      matchOnDescription: true,
      matchOnDetail: true,
      title: 'SparkQ: Wait for tasks (optional)',
      placeHolder: 'Tick the tasks this one waits on, or press Enter to wait on none',
    },
  );
  return (chosen ?? []).map((c) => c.task.id);
}

/** How long to pause a queue: until resumed, or a few common spans. Undefined = until resumed. */
export async function pickPauseDuration(queue: Queue): Promise<number | undefined> {
  const spans: [string, number | undefined][] = [
    ['Until resumed', undefined],
    ['15 minutes', 15 * 60],
    ['1 hour', 3600],
    ['4 hours', 4 * 3600],
    ['Until tomorrow (24 hours)', 24 * 3600],
  ];
  const chosen = await pick(
    spans.map(([label, seconds]) => ({ label, seconds })),
    { title: `SparkQ: Pause ${queue.name} for how long?`, placeHolder: 'Running tasks go on; no new task is handed out' },
  );
  return chosen.seconds;
}

export type RequeueScope = { queue: string } | { session: string } | Record<string, never>;

/** Which failed tasks to requeue: all, a session's or a queue's (those with failed tasks). */
export async function pickRequeueScope(reader: QueueReader, preferred: Queue | null): Promise<{ scope: RequeueScope; label: string }> {
  const queues = (await reader.listQueues({})).filter((q) => q.counts.failed > 0);
  if (queues.length === 0) throw new UserFacingError('No active queue has a failed task.');
  queues.sort((a, b) => (a.id === preferred?.id ? -1 : b.id === preferred?.id ? 1 : b.counts.failed - a.counts.failed));
  const bySession = new Map<string, { name: string; failed: number }>();
  for (const q of queues) {
    const s = bySession.get(q.sessionId) ?? { name: q.session, failed: 0 };
    s.failed += q.counts.failed;
    bySession.set(q.sessionId, s);
  }
  const total = queues.reduce((n, q) => n + q.counts.failed, 0);
  type Item = vscode.QuickPickItem & { scope?: RequeueScope };
  const items: Item[] = [
    ...queues.map((q) => ({ label: `$(list-ordered) ${q.name}`, description: `${q.session} · ${q.counts.failed} failed`, scope: { queue: q.id } })),
    { label: 'Sessions', kind: vscode.QuickPickItemKind.Separator },
    ...[...bySession].map(([id, s]) => ({ label: `$(folder-library) ${s.name}`, description: `${s.failed} failed`, scope: { session: id } })),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(debug-restart) Every failed task', description: `${total} failed`, scope: {} },
  ];
  const chosen = await pick(items, { title: 'SparkQ: Requeue the failed tasks of…', placeHolder: 'Queue, session, or all' });
  if (!chosen.scope) throw new Cancelled();
  return { scope: chosen.scope, label: chosen.label.replace(/^\$\([^)]*\) /, '') };
}
