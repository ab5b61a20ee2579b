import * as vscode from 'vscode';
import type { Queue, Session, Task, TaskStatus } from '../../core/model';

/** How a task looks wherever it is shown: icon, label, description, tooltip and the context value menus match. */

export type TaskLook = TaskStatus | 'stale';

export function lookOf(task: Pick<Task, 'status' | 'stale'>): TaskLook {
  return task.status === 'running' && task.stale ? 'stale' : task.status;
}

const ICONS: Record<TaskLook, [string, string | undefined]> = {
  queued: ['circle-large-outline', 'charts.blue'],
  running: ['sync~spin', 'charts.blue'],
  stale: ['warning', 'list.warningForeground'],
  succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
};

export function taskIcon(task: Pick<Task, 'status' | 'stale'>): vscode.ThemeIcon {
  const [id, color] = ICONS[lookOf(task)];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

function firstLine(s: string, max = 80): string {
  const line = s.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** The prompt's first line, or the script a script task runs, or the tool. */
export function taskLabel(task: Pick<Task, 'prompt' | 'payload' | 'tool'>): string {
  const p = task.payload;
  if (p !== null && typeof p === 'object' && !Array.isArray(p) && typeof p['script'] === 'string') {
    const args = Array.isArray(p['args']) ? p['args'].filter((a): a is string => typeof a === 'string') : typeof p['args'] === 'string' ? [p['args']] : [];
    return firstLine([p['script'], ...args].join(' '));
  }
  if (task.prompt && task.prompt.trim() !== '') return firstLine(task.prompt);
  return task.tool;
}

export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s - m * 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m - h * 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function ms(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}

/** "queued 2m 3s ago", "running 1m 4s", "took 3.2 s". */
export function taskTiming(task: Pick<Task, 'status' | 'createdAt' | 'startedAt' | 'finishedAt'>, now = Date.now()): string {
  const created = ms(task.createdAt) ?? now;
  const started = ms(task.startedAt);
  const finished = ms(task.finishedAt);
  if (task.status === 'queued') return `queued ${formatDuration(now - created)} ago`;
  if (task.status === 'running') return `running ${formatDuration(now - (started ?? created))}`;
  if (finished !== null) return `took ${formatDuration(finished - (started ?? created))}`;
  return task.status;
}

export function taskDescription(task: Task, now = Date.now()): string {
  return `${task.tool} · ${taskTiming(task, now)}`;
}

/** `sparkq:task+running+stale`: the type, then flags; menus match with `viewItem =~ /…/`. */
export function taskContextValue(task: Pick<Task, 'status' | 'stale' | 'archived'>): string {
  const flags: string[] = [task.status];
  if (task.stale) flags.push('stale');
  if (task.archived) flags.push('archived');
  return ['sparkq:task', ...flags].join('+');
}

export function queueContextValue(queue: Pick<Queue, 'status'>, hasWorker: boolean): string {
  return ['sparkq:queue', queue.status, ...(hasWorker ? ['worker'] : [])].join('+');
}

export function sessionContextValue(session: Pick<Session, 'status'>): string {
  return `sparkq:session+${session.status}`;
}

const LOOK_WORDS: Record<TaskLook, string> = {
  queued: 'Queued',
  running: 'Running',
  stale: 'Running — stale (past its timeout)',
  succeeded: 'Succeeded',
  failed: 'Failed',
};

export function taskTooltip(task: Task): vscode.MarkdownString {
  const md = new vscode.MarkdownString('', true);
  md.appendMarkdown(`$(${ICONS[lookOf(task)][0].replace('~spin', '')}) **${LOOK_WORDS[lookOf(task)]}** · `);
  md.appendText(`${task.tool} · ${task.queue} · ${task.id}`);
  md.appendMarkdown('\n\n');
  if (task.result?.summary) {
    md.appendMarkdown('**Summary:** ');
    md.appendText(task.result.summary);
    md.appendMarkdown('\n\n');
  }
  if (task.error) {
    md.appendMarkdown('**Error:** ');
    md.appendText(firstLine(task.error, 500));
    md.appendMarkdown('\n\n');
  }
  if (task.prompt) {
    md.appendMarkdown('**Prompt:** ');
    md.appendText(firstLine(task.prompt, 300));
    md.appendMarkdown('\n\n');
  }
  md.appendText(`${taskTiming(task)}${task.worker ? ` · worker ${task.worker}` : ''}${task.attempt > 1 ? ` · attempt ${task.attempt}` : ''}`);
  return md;
}

export function queueDescription(queue: Queue): string {
  const c = queue.counts;
  const parts: string[] = [];
  if (c.running > 0) parts.push(`${c.running} running`);
  if (queue.stale > 0) parts.push(`${queue.stale} stale`);
  if (c.queued > 0) parts.push(`${c.queued} queued`);
  if (c.failed > 0) parts.push(`${c.failed} failed`);
  if (c.succeeded > 0) parts.push(`${c.succeeded} done`);
  if (queue.status === 'ended') parts.push('ended');
  return parts.length > 0 ? parts.join(' · ') : 'empty';
}
