import { resolveTimeoutSeconds } from '../core/config';
import type { ChangeEvent } from '../core/events';
import { newId } from '../core/ids';
import type { TaskValidation } from '../core/model';
import { errorText } from '../core/queue/rules';
import {
  type Verdict,
  checkOf,
  feedbackText,
  nextRound,
  parseValidation,
  roundFailed,
  seriesFailed,
  validationPayload,
  validationPrompt,
  validationText,
} from '../core/queue/validation';
import type { TeamContext } from './context';
import type { Sql } from './db';
import type { Row } from './rows';
import { requeueRow } from './tasks';

/*
 * Validators on the team queue, the same rules as the embedded store (src/core/queue/validation.ts), each applied in
 * the transaction that finishes the task: a validated task's success enqueues its validation task; a validation task's
 * end gives its verdict on the task it checks, whose row it locks.
 */

/** Releases the queued tasks that waited on `id` (it is done now): one fewer task to wait for each. */
export async function releaseWaiters(c: Sql, id: string, events: ChangeEvent[]): Promise<void> {
  const released = await c.query<{ id: string; queue_id: string }>(
    "UPDATE tasks SET waiting = waiting - 1 WHERE id IN (SELECT task_id FROM task_deps WHERE after_id = $1) AND status = 'queued' AND waiting > 0 RETURNING id, queue_id",
    [id],
  );
  for (const r of released.rows) events.push({ kind: 'task', id: r.id, queueId: r.queue_id, status: 'queued' });
}

async function setVerdict(c: Sql, row: Row, to: 'succeeded' | 'failed', v: TaskValidation, error: string | null, events: ChangeEvent[]): Promise<void> {
  await c.query("UPDATE tasks SET status = $1, validation = $2, error = COALESCE($3, error) WHERE id = $4 AND status = 'succeeded'", [
    to,
    validationText(v),
    error,
    row['id'],
  ]);
  events.push({ kind: 'task', id: row['id'] as string, queueId: row['queue_id'] as string, status: to });
}

/**
 * A validated task (its row, locked) has just succeeded: its validation task goes on the validator's queue (when
 * active, else the task's own) and into the task's validation. Its waiters stay held until the verdict.
 */
export async function enqueueValidation(
  ctx: TeamContext,
  c: Sql,
  row: Row,
  finish: { summary: string; data: string | null; change: string | null; at: number },
  events: ChangeEvent[],
): Promise<void> {
  const v = parseValidation(row['validation'])!;
  const tool = ctx.config.tools[v.spec.tool];
  if (!tool) {
    const feedback = `the validator tool ${JSON.stringify(v.spec.tool)} is no longer in sparkq.yml`;
    await setVerdict(c, row, 'failed', { ...v, status: 'failed', feedback }, errorText(seriesFailed(v, feedback)), events);
    return;
  }
  let queue = (await c.query<Row>('SELECT id, session_id FROM queues WHERE id = $1', [row['queue_id']])).rows[0]!;
  if (v.spec.queue !== undefined) {
    const q = (
      await c.query<Row>("SELECT id, session_id FROM queues WHERE (id = $1 OR name = $1) AND status = 'active' ORDER BY created_at DESC LIMIT 1 FOR SHARE", [v.spec.queue])
    ).rows[0];
    if (q) queue = q;
  }
  const { checked, plan } = checkOf(row, finish, v);
  const id = newId('tsk');
  await c.query(
    `INSERT INTO tasks(id, session_id, queue_id, tool, task_class, prompt, payload, status, priority, timeout_s, created_at, validates, plan_id, plan_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13)`,
    [
      id,
      queue['session_id'],
      queue['id'],
      tool.name,
      tool.taskClass,
      validationPrompt(v.spec, checked, tool.knownKind),
      JSON.stringify(validationPayload(checked)),
      row['priority'],
      resolveTimeoutSeconds(ctx.config, tool),
      finish.at,
      checked.id,
      plan?.planId ?? null,
      plan?.planKey ?? null,
    ],
  );
  events.push({ kind: 'task', id, queueId: queue['id'] as string, status: 'queued' });
  await c.query('UPDATE tasks SET validation = $1 WHERE id = $2', [validationText({ ...v, by: [...v.by, id] }), checked.id]);
}

/**
 * A validation task (its row, locked, `vRow`) ended with this verdict: when the task it checks still waits for it, a
 * pass releases that task's waiters; a fail fails it and requeues it as its next round, unless that was the last.
 */
export async function applyVerdict(ctx: TeamContext, c: Sql, vRow: Row, verdict: Verdict, events: ChangeEvent[]): Promise<void> {
  const t = (await c.query<Row>('SELECT * FROM tasks WHERE id = $1 FOR UPDATE', [vRow['validates']])).rows[0];
  const v = t && t['status'] === 'succeeded' ? parseValidation(t['validation']) : null;
  if (!t || v === null || v.status !== 'pending' || v.by[v.by.length - 1] !== vRow['id']) return;
  if (verdict.pass) {
    await setVerdict(c, t, 'succeeded', { ...v, status: 'passed', feedback: verdict.feedback }, null, events);
    await releaseWaiters(c, t['id'] as string, events);
    return;
  }
  const feedback = feedbackText(verdict.feedback ?? 'the validator failed the result');
  const failed: TaskValidation = { ...v, status: 'failed', feedback };
  const q = (await c.query<{ status: string }>('SELECT status FROM queues WHERE id = $1 FOR SHARE', [t['queue_id']])).rows[0];
  if (v.round < v.maxRounds && q?.status === 'active') {
    await setVerdict(c, t, 'failed', failed, errorText(roundFailed(v, feedback)), events);
    const copy = await requeueRow(ctx, c, t, null, nextRound((t['prompt'] as string | null) ?? null, v, feedback));
    events.push({ kind: 'task', id: copy.id, queueId: copy.queueId, status: 'queued' });
    return;
  }
  await setVerdict(c, t, 'failed', failed, errorText(seriesFailed(v, feedback)), events);
}
