import type { Task } from '../src/core/model';

/** Small pieces of text the dashboard's components share. */

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const fmtCost = (usd: number): string => `$${usd.toFixed(4)}`;

/** A running task past its timeout looks "stale"; otherwise its status. */
export function lookOf(t: Pick<Task, 'status' | 'stale'>): string {
  return t.status === 'running' && t.stale ? 'stale' : t.status;
}

/** How long a task ran (or has been running, at `now`), in ms; null when it has not started. */
export function duration(t: Pick<Task, 'status' | 'createdAt' | 'startedAt' | 'finishedAt'>, now: number): number | null {
  const started = t.startedAt ? Date.parse(t.startedAt) : null;
  if (t.status === 'running') return now - (started ?? Date.parse(t.createdAt));
  if (t.finishedAt) return Date.parse(t.finishedAt) - (started ?? Date.parse(t.createdAt));
  return null;
}
