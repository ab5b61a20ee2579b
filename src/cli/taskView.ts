import type { Claim, Task, TaskDetail, Usage } from '../core/model';
import { type Cell, clip, duration, type Output, shortTime } from './output';

/*
 * How tasks read in a terminal. Tables are for scanning (one line per task); `sparkq task` and `sparkq claim` show
 * everything a person or an agent needs to act on one task.
 */

/** A validated task's short badge: where its validation stands and its round (e.g. `validating 1/2`). */
export function validationBadge(t: Task): string | null {
  const v = t.validation;
  if (v === null) return null;
  const round = `${v.round}/${v.maxRounds}`;
  if (v.status === 'passed') return `passed ${round}`;
  if (v.status === 'failed') return `check failed ${round}`;
  return t.status === 'succeeded' ? `validating ${round}` : `round ${round}`;
}

export function statusCell(t: Task): Cell {
  const cell = statusOnly(t);
  const badge = validationBadge(t);
  if (badge === null) return cell;
  return { text: `${cell.text} [${badge}]`, style: t.validation?.status === 'pending' && t.status === 'succeeded' ? 'yellow' : cell.style };
}

function statusOnly(t: Task): Exclude<Cell, string> {
  if (t.stale) return { text: 'running (stale)', style: 'magenta' };
  if (t.status === 'queued' && t.blockedBy.length > 0) return { text: 'queued (blocked)', style: 'red' };
  if (t.status === 'queued' && t.waitingOn.length > 0) return { text: 'queued (waiting)', style: 'dim' };
  if (t.status === 'queued' && t.notBefore !== null && Date.parse(t.notBefore) > Date.now()) return { text: `queued (retry ${shortTime(t.notBefore)})`, style: 'yellow' };
  const style = ({ queued: 'cyan', running: 'yellow', succeeded: 'green', failed: 'red' } as const)[t.status];
  return { text: t.status, style };
}

export const TASK_HEADER = ['TASK', 'QUEUE', 'TOOL', 'STATUS', 'PRI', 'TRY', 'CREATED', 'SUMMARY / ERROR / PROMPT'];

export function taskRows(tasks: Task[]): Cell[][] {
  return tasks.map((t) => [
    t.id,
    t.queue,
    t.tool,
    statusCell(t),
    String(t.priority),
    String(t.attempt),
    shortTime(t.createdAt),
    clip(t.result?.summary ?? t.error ?? t.prompt ?? (t.payload === null ? '' : JSON.stringify(t.payload))),
  ]);
}

export function usageText(u: Usage | null): string | undefined {
  if (u === null) return undefined;
  const parts: string[] = [];
  if (u.model !== undefined) parts.push(u.model);
  if (u.inputTokens !== undefined) parts.push(`${u.inputTokens} in`);
  if (u.cachedInputTokens !== undefined) parts.push(`${u.cachedInputTokens} cached`);
  if (u.outputTokens !== undefined) parts.push(`${u.outputTokens} out`);
  if (u.reasoningTokens !== undefined) parts.push(`${u.reasoningTokens} reasoning`);
  if (u.costUsd !== undefined) parts.push(`$${u.costUsd.toFixed(4)}`);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

const orUndefined = (s: string | null): string | undefined => (s === null || s === '' ? undefined : s);

function taskFields(t: Task): [string, Cell | undefined][] {
  return [
    ['task', t.id],
    ['status', statusCell(t)],
    ['session', `${t.session} (${t.sessionId})`],
    ['queue', `${t.queue} (${t.queueId})`],
    ['tool', `${t.tool} (${t.taskClass})`],
    ['priority', String(t.priority)],
    ['timeout', `${t.timeoutSeconds} s`],
    ['attempt', String(t.attempt)],
    ['worker', orUndefined(t.worker)],
    ['retry of', orUndefined(t.retryOf)],
    ['key', orUndefined(t.idempotencyKey)],
    ['plan', t.plan === null ? undefined : `${t.plan} / ${t.planKey ?? ''}`],
    ['waits on', t.after.length === 0 ? undefined : t.after.map((id) => (t.waitingOn.includes(id) ? id : `${id} ✔`)).join(', ')],
    ['blocked by', t.blockedBy.length === 0 ? undefined : { text: `${t.blockedBy.join(', ')} (failed: requeue to release this task)`, style: 'red' }],
    ['retry after', t.status === 'queued' ? orUndefined(shortTime(t.notBefore)) : undefined],
  ];
}

/** Where a task ran in a worktree: its branch, its commit (or why there is none), its diff stat. */
/** A validated task's validator and verdicts; a validation task's checked task. */
function validationFields(t: Task): [string, Cell | undefined][] {
  const v = t.validation;
  const rows: [string, Cell | undefined][] = [['validates', orUndefined(t.validates)]];
  if (v === null) return rows;
  const style = v.status === 'passed' ? 'green' : v.status === 'failed' ? 'red' : 'yellow';
  const where = v.spec.queue !== undefined ? ` on ${v.spec.queue}` : '';
  rows.push(
    ['validation', { text: `${v.status}, round ${v.round} of ${v.maxRounds} (validator ${v.spec.tool}${where})`, style }],
    ['validated by', v.by.length > 0 ? v.by.join(', ') : undefined],
    ['feedback', v.feedback === null ? undefined : clip(v.feedback, 200)],
  );
  return rows;
}

function changeFields(t: Task): [string, Cell | undefined][] {
  const c = t.change;
  if (c === null) return [];
  const commit =
    c.commit !== null
      ? `${c.commit.slice(0, 12)}: ${c.filesChanged} file${c.filesChanged === 1 ? '' : 's'} changed, +${c.insertions} −${c.deletions} (sparkq merge ${t.id})`
      : c.filesChanged === 0
        ? 'none: no changes'
        : `none: ${c.filesChanged} file${c.filesChanged === 1 ? '' : 's'} changed, uncommitted, kept in the worktree`;
  return [
    ['branch', `${c.branch} from ${c.baseCommit.slice(0, 12)}${c.baseRef ? ` (${c.baseRef})` : ''}`],
    ['worktree', c.worktree],
    ['commit', commit],
  ];
}

function taskBlocks(out: Output, t: Task): void {
  if (t.prompt !== null) out.block('prompt', t.prompt);
  if (t.payload !== null) out.block('payload', JSON.stringify(t.payload, null, 2));
}

/** `sparkq task`: every field, the timings and the attempts. */
export function printTaskDetail(out: Output, t: TaskDetail): void {
  out.fields([
    ...taskFields(t),
    ['created', shortTime(t.createdAt)],
    ['started', orUndefined(shortTime(t.startedAt))],
    ['heartbeat', orUndefined(shortTime(t.heartbeatAt))],
    // A running task shows when it goes stale, so whoever works it can finish or fail it first.
    [t.stale ? 'stale since' : 'stale at', orUndefined(shortTime(t.staleAt))],
    ['finished', orUndefined(shortTime(t.finishedAt))],
    ['waited', duration(t.timings.waitMs)],
    ['ran', duration(t.timings.runMs)],
    ['summary', orUndefined(t.result?.summary ?? null)],
    ['error', t.error === null ? undefined : { text: clip(t.error, 200), style: 'red' }],
    ['usage', usageText(t.usage)],
    ['pattern', t.pattern === null ? undefined : `${t.pattern.name} (${t.pattern.hash.slice(0, 12)})`],
    ...validationFields(t),
    ...changeFields(t),
    ['archived', t.archived ? 'yes' : undefined],
  ]);
  if (t.change !== null && t.change.files.length > 0) {
    const more = t.change.filesChanged - t.change.files.length;
    out.block('files', t.change.files.map((f) => `${f.status}  ${f.path}`).join('\n') + (more > 0 ? `\n… and ${more} more` : ''));
  }
  if (t.instructions !== '') out.block('instructions', t.instructions);
  taskBlocks(out, t);
  if (t.result?.data !== undefined && t.result.data !== null) {
    // Free text given with --data reads as it was written; JSON is pretty-printed.
    out.block('data', typeof t.result.data === 'string' ? t.result.data : JSON.stringify(t.result.data, null, 2));
  }
  if (t.error !== null && t.error.length > 200) out.block('error', t.error);
  if (t.stdout !== null && t.stdout !== '') out.block('stdout', t.stdout);
  if (t.stderr !== null && t.stderr !== '') out.block('stderr', t.stderr);
  if (t.attempts.length > 0) {
    out.line(out.style('attempts:', 'bold'));
    out.table(
      ['  #', 'WORKER', 'STARTED', 'ENDED', 'OUTCOME', 'ERROR'],
      t.attempts.map((a) => [
        `  ${a.n}`,
        a.worker ?? '',
        shortTime(a.startedAt),
        shortTime(a.endedAt),
        { text: a.outcome, style: a.outcome === 'succeeded' ? 'green' : a.outcome === 'failed' ? 'red' : 'yellow' },
        clip(a.error),
      ]),
    );
  }
}

/** `sparkq peek`: the task as it waits. */
export function printTaskBrief(out: Output, t: Task): void {
  out.fields([...taskFields(t), ['created', shortTime(t.createdAt)]]);
  taskBlocks(out, t);
}

/** `sparkq claim`: what a worker needs to do the task and to report on it. */
export function printClaim(out: Output, c: Claim): void {
  out.fields([...taskFields(c.task), ['lease', c.lease], ['started', shortTime(c.task.startedAt)]]);
  if (c.instructions !== '') out.block('instructions', c.instructions);
  taskBlocks(out, c.task);
  out.line();
  if (c.task.validates !== null) {
    // A check: its verdict passes the task it checks, or sends it back for another round with the feedback.
    out.line(out.style(`Give the verdict: sparkq verdict ${c.task.id} pass|fail "what is wrong and what to fix" --lease ${c.lease}`, 'dim'));
    return;
  }
  out.line(out.style(`Finish with: sparkq complete ${c.task.id} "what was done" [--data "details"] --lease ${c.lease}`, 'dim'));
  out.line(out.style(`     or:    sparkq fail ${c.task.id} "what went wrong" --lease ${c.lease}`, 'dim'));
}

/**
 * Said after a claim by hand from a worktree queue: a claim makes no worktree (a worker does), so work claimed here
 * would land in the main checkout, beside other agents' work.
 */
export function worktreeClaimNote(queue: string): string {
  return (
    `Queue ${queue} runs each task in a git worktree of its own, which a worker makes: to work its tasks by hand in ` +
    `their worktrees, run \`sparkq run --queue ${JSON.stringify(queue)}\` (it shows each task with its folder and waits for you to finish it there).`
  );
}
