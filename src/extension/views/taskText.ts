import type { Queue, Session, Task, TaskStatus } from '../../core/model';
import { formatDuration } from '../../shared/format';
import { validatesText, validationBadge } from '../../shared/dashboardProtocol';
import { changeBadge, changeFlags } from '../changes/changeText';

export { formatDuration };

/**
 * The words of a task, queue or session wherever they are shown (tree rows, QuickPicks, documents), without vscode
 * so that they are unit-tested in plain Node. Icons and tooltips, which need vscode, are in taskPresentation.ts.
 */

export type TaskLook = TaskStatus | 'stale';

export function lookOf(task: Pick<Task, 'status' | 'stale'>): TaskLook {
  return task.status === 'running' && task.stale ? 'stale' : task.status;
}

/** What keeps a queued task from being claimed: failed dependencies, unfinished ones, or a retry delay. */
export type TaskHold = 'blocked' | 'waiting' | 'retry-later' | null;

export function holdOf(task: Pick<Task, 'status' | 'waitingOn' | 'blockedBy' | 'notBefore'>, now = Date.now()): TaskHold {
  if (task.status !== 'queued') return null;
  if (task.blockedBy.length > 0) return 'blocked';
  if (task.waitingOn.length > 0) return 'waiting';
  if (task.notBefore !== null && Date.parse(task.notBefore) > now) return 'retry-later';
  return null;
}

export function firstLine(s: string, max = 80): string {
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


/** A moment as a person reads it next to "until": "14:05" today, "Nov 22 14:05" on another day (local time). */
export function formatClock(iso: string, now = Date.now()): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  const today = new Date(now);
  if (at.toDateString() === today.toDateString()) return time;
  const month = at.toLocaleString('en-US', { month: 'short' });
  return `${month} ${at.getDate()} ${time}`;
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

/** "blocked by tsk_a (+1)", "waiting on 2", "retry at 14:05"; "" when nothing holds the task back. */
export function holdText(task: Pick<Task, 'status' | 'waitingOn' | 'blockedBy' | 'notBefore'>, now = Date.now()): string {
  switch (holdOf(task, now)) {
    case 'blocked':
      return `blocked by ${task.blockedBy[0]!}${task.blockedBy.length > 1 ? ` (+${task.blockedBy.length - 1})` : ''}`;
    case 'waiting':
      return `waiting on ${task.waitingOn.length}`;
    case 'retry-later':
      return `retry at ${formatClock(task.notBefore!, now)}`;
    default:
      return '';
  }
}

/**
 * `llm-codex · queued 1m ago`, then what holds it back, its validation badge (`validating · round 1 of 2`), what a
 * validation task checks (`checks tsk_…`) and its worktree change (`+10 −2 · 3 files`), each only when there is one.
 */
export function taskDescription(task: Task, now = Date.now()): string {
  const hold = holdText(task, now);
  const extras = [validationBadge(task), validatesText(task), changeBadge(task)].filter((x): x is string => x !== null);
  return [task.tool, ...(hold ? [hold] : []), taskTiming(task, now), ...extras].join(' · ');
}

/**
 * `sparkq:task+queued+blocked`, `sparkq:task+succeeded+change+commit`: the type, then flags; menus match with
 * `viewItem =~ /…/`. The status stays first (menus match `^sparkq:task\+running`); `change` and `commit` say that a
 * finished task has a worktree change to open or discard, and a commit to diff and merge (changeFlags).
 */
export function taskContextValue(task: Pick<Task, 'status' | 'stale' | 'archived'> & Partial<Pick<Task, 'waitingOn' | 'blockedBy' | 'notBefore' | 'change'>>): string {
  const flags: string[] = [task.status];
  if (task.stale) flags.push('stale');
  if (task.archived) flags.push('archived');
  const hold = holdOf({ status: task.status, waitingOn: task.waitingOn ?? [], blockedBy: task.blockedBy ?? [], notBefore: task.notBefore ?? null });
  if (hold) flags.push(hold);
  flags.push(...changeFlags(task));
  return ['sparkq:task', ...flags].join('+');
}

/** `sparkq:queue+active+paused+worker`. */
export function queueContextValue(queue: Pick<Queue, 'status'> & Partial<Pick<Queue, 'paused'>>, hasWorker: boolean): string {
  return ['sparkq:queue', queue.status, ...(queue.paused === true && queue.status === 'active' ? ['paused'] : []), ...(hasWorker ? ['worker'] : [])].join('+');
}

export function sessionContextValue(session: Pick<Session, 'status'>): string {
  return `sparkq:session+${session.status}`;
}

/** "paused until 14:05", "paused" (until resumed); "" for a queue that hands out tasks. */
export function queuePauseText(queue: Pick<Queue, 'status' | 'paused' | 'pausedUntil'>, now = Date.now()): string {
  if (queue.status !== 'active' || !queue.paused) return '';
  return queue.pausedUntil ? `paused until ${formatClock(queue.pausedUntil, now)}` : 'paused';
}

export function queueDescription(queue: Queue, now = Date.now()): string {
  const c = queue.counts;
  const parts: string[] = [];
  const pause = queuePauseText(queue, now);
  if (pause) parts.push(pause);
  if (c.running > 0) parts.push(`${c.running} running`);
  if (queue.stale > 0) parts.push(`${queue.stale} stale`);
  if (c.queued > 0) parts.push(`${c.queued} queued`);
  if (c.failed > 0) parts.push(`${c.failed} failed`);
  if (c.succeeded > 0) parts.push(`${c.succeeded} done`);
  if (queue.status === 'ended') parts.push('ended');
  return parts.length > 0 ? parts.join(' · ') : 'empty';
}
