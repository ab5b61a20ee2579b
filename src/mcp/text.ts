import type { StatusReport } from '../api/contract';
import type { Claim, PlanApplyResult, PlanReport, Queue, Report, Session, Task, TaskDetail, TaskPage } from '../core/model';
import { checksNote, naiveLine } from '../core/text';
import type { PlanDryRun } from './planTool';

/*
 * The short text form of each tool's result, beside its structuredContent: what an agent needs to act next (ids,
 * leases, statuses, summaries), a line per item, long texts clipped. Hosts that read only the text still get the
 * ids and the lease; the whole record is in structuredContent and get_task.
 */

/** One line of at most `max` characters. */
export function clip(text: string | null | undefined, max = 100): string {
  if (text === null || text === undefined) return '';
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function taskLine(t: Task): string {
  const what = t.status === 'succeeded' ? t.result?.summary : t.status === 'failed' ? t.error : t.prompt;
  const waits = t.status === 'queued' && t.waitingOn.length > 0 ? ` waits on ${t.waitingOn.join(',')}` : '';
  return `${t.id} ${t.status}${t.stale ? ' (stale)' : ''} queue=${t.queue} tool=${t.tool}${waits}${what ? ` — ${clip(what)}` : ''}`;
}

export function queueLine(q: Queue): string {
  const c = q.counts;
  const state = q.status !== 'active' ? q.status : q.paused ? `paused${q.pausedUntil ? ` until ${q.pausedUntil}` : ''}` : 'active';
  return `${q.name} (${q.id}) session=${q.session} ${state}: ${c.queued} queued, ${c.running} running, ${c.succeeded} succeeded, ${c.failed} failed${q.stale > 0 ? `, ${q.stale} stale` : ''}`;
}

export function sessionLine(s: Session): string {
  return `${s.name} (${s.id}) ${s.status}${s.description ? ` — ${clip(s.description, 80)}` : ''}`;
}

/** A plan's figures in three lines: time bought, the chain that bounded it, and what its Codex tokens would have cost. */
function planLines(p: PlanReport): string[] {
  const sec = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  const c = p.codex;
  return [
    `plan ${p.id}: ${p.tasks} tasks${checksNote(p)}${p.unfinished > 0 ? ` (${p.unfinished} unfinished)` : ''}, wall clock ${sec(p.wallClockMs)}, serial ${sec(p.serialMs)}, speed-up ${p.speedup ?? '-'}x, parallel share ${p.parallelShare !== null ? `${Math.round(p.parallelShare * 100)}%` : '-'}`,
    `critical path ${sec(p.criticalPath.runMs)}: ${p.criticalPath.tasks.map((t) => `${t.key} (${t.id}) ${sec(t.runMs)}`).join(' -> ') || '-'}`,
    naiveLine(p.naive),
    c.tasks === 0
      ? 'no Codex tasks to reprice'
      : `codex tokens in ${c.inputTokens} (cached ${c.cachedInputTokens}) out ${c.outputTokens}, recorded $${c.costUsd.toFixed(4)}; if billed at: ${c.pricedAt.map((m) => `${m.model} $${m.costUsd.toFixed(4)}`).join(', ') || 'no priced model'}`,
  ];
}

export const text = {
  status: (r: StatusReport): string => {
    const c = r.counts;
    const head = `project ${r.project}, owner pid ${r.owner.pid} (${r.owner.role}): ${c.queued} queued, ${c.running} running, ${c.succeeded} succeeded, ${c.failed} failed, ${c.stale} stale`;
    return [head, ...r.queues.map(queueLine)].join('\n');
  },
  sessions: (list: Session[]) => (list.length === 0 ? 'No sessions.' : list.map(sessionLine).join('\n')),
  queues: (list: Queue[]) => (list.length === 0 ? 'No queues.' : list.map(queueLine).join('\n')),
  session: (s: Session) => sessionLine(s),
  queue: (q: Queue) => queueLine(q),
  task: (t: Task) => taskLine(t),
  tasks: (list: Task[]) => (list.length === 0 ? 'No tasks.' : list.map(taskLine).join('\n')),
  page: (p: TaskPage): string => {
    const lines = p.tasks.map(taskLine);
    if (p.next !== null) lines.push(`more: call again with before=${p.next}`);
    return lines.length === 0 ? 'No tasks match.' : lines.join('\n');
  },
  detail: (t: TaskDetail): string => {
    const lines = [taskLine(t), `attempt ${t.attempt}, created ${t.createdAt}${t.finishedAt ? `, finished ${t.finishedAt}` : ''}`];
    if (t.prompt) lines.push(`prompt: ${clip(t.prompt, 400)}`);
    if (t.result?.summary) lines.push(`summary: ${clip(t.result.summary, 400)}`);
    if (t.result?.data !== undefined && t.result.data !== null) lines.push(`data: ${clip(JSON.stringify(t.result.data), 400)}`);
    if (t.error) lines.push(`error: ${clip(t.error, 400)}`);
    return lines.join('\n');
  },
  claim: (c: Claim | null, queue: string): string => {
    if (c === null) return `No claimable task on ${queue} now.`;
    const t = c.task;
    const lines = [`Claimed ${t.id} (attempt ${t.attempt}) from ${t.queue}, tool ${t.tool}, timeout ${t.timeoutSeconds} s.`, `lease: ${c.lease}`];
    if (c.instructions) lines.push(`instructions: ${c.instructions}`);
    if (t.prompt !== null) lines.push(`prompt: ${t.prompt}`);
    if (t.payload !== null) lines.push(`payload: ${JSON.stringify(t.payload)}`);
    lines.push('Finish with complete {task, lease, summary, data} or fail {task, lease, error}; heartbeat {task, lease} while it runs long.');
    return lines.join('\n');
  },
  plan: (r: PlanApplyResult | PlanDryRun): string => {
    if ('dryRun' in r) {
      return [
        `Plan ${r.plan} (dry run, nothing enqueued): ${r.tasks.length} tasks in ${r.levels.length} levels, critical path ${r.criticalPath.join(' → ')}.`,
        ...r.levels.map((l, i) => `level ${i + 1}: ${l.join(', ')}`),
        ...(r.existing.length > 0 ? [`already enqueued by an earlier apply: ${r.existing.join(', ')}`] : []),
      ].join('\n');
    }
    return [
      `Plan ${r.plan}: enqueued ${r.created.length} task${r.created.length === 1 ? '' : 's'}${r.existing.length > 0 ? `, ${r.existing.length} already enqueued before` : ''}.`,
      ...r.created.map((c) => `${c.key}: ${c.task.id} queue=${c.task.queue} tool=${c.task.tool}`),
      ...r.existing.map((e) => `${e.key}: ${e.id} ${e.status} (earlier apply)`),
    ].join('\n');
  },
  report: (r: Report): string => {
    const row = (key: string, x: Report['total']) =>
      `${key}: ${x.tasks} tasks (${x.succeeded} ok, ${x.failed} failed), run ${Math.round(x.runMs / 1000)} s, tokens in ${x.inputTokens} (cached ${x.cachedInputTokens}) out ${x.outputTokens}, $${x.costUsd.toFixed(4)}`;
    const lines = [`by ${r.by}${r.session !== null ? `, session ${r.session}` : ''}${r.plan ? `, plan ${r.plan.id}` : ''}`, ...r.rows.map((x) => row(x.key, x)), row('total', r.total)];
    if (r.plan) lines.push(...planLines(r.plan));
    return lines.join('\n');
  },
};
