import type { SparkqConfig } from '../core/config';
import { parseInput as parse } from '../core/inputs';
import { type Report, type ReportGroup, ReportInput } from '../core/model';
import { type GroupSums, type PlanAttemptRow, type PlanDepRow, type PlanTaskRow, ReportGroups, planReportOf } from '../core/queue/reports';
import type { Sql } from './db';
import { planIdOf, rowByRef } from './rows';

/*
 * `report` on the team database: the embedded store's report (src/core/queue/reports.ts) over the same rows. The
 * database sums each group; the grouping, ordering, totals, rounding and the plan's figures are the embedded store's
 * own functions, so the two stores cannot drift. Values are always parameters.
 */

/** The group key of each grouping, as the embedded store computes it (a day is the UTC date a task finished). */
const KEY: Record<ReportGroup, string> = {
  tool: 't.tool',
  model: "COALESCE(u.model, '(none)')",
  queue: 't.queue_id',
  day: "COALESCE(to_char(to_timestamp(t.finished_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '(unfinished)')",
};

/**
 * The usage JSON as a record, parsed once per task (about 40% faster over a long history than one `->>` per field);
 * numeric, so that sums are exact. A task without usage joins a row of nulls.
 */
const USAGE = `LEFT JOIN LATERAL jsonb_to_record(t.usage::jsonb)
    AS u("inputTokens" numeric, "cachedInputTokens" numeric, "outputTokens" numeric, "reasoningTokens" numeric, "costUsd" numeric, model text) ON true`;
/** A token count or cost of the usage, 0 where absent. */
const usageSum = (field: string): string => `sum(COALESCE(u."${field}", 0))`;

/**
 * Tasks, run time, tokens and cost per tool, model, queue or day, within a session and/or a plan, with the plan's
 * figures when a plan is given. Its statements should see one snapshot: call it in a `repeatable read` transaction.
 * `now` is not used (a report does not depend on the time) but is part of the store's context.
 */
export async function teamReport(c: Sql, input: ReportInput | undefined, ctx: { now: number; config: Pick<SparkqConfig, 'tools' | 'pricing' | 'orchestrator'> }): Promise<Report> {
  const r = parse(ReportInput, input ?? {}, 'report');
  const by = r.by ?? 'tool';
  const where: string[] = [];
  const values: unknown[] = [];
  let sessionName: string | null = null;
  if (r.session !== undefined) {
    const row = await rowByRef(c, 'sessions', r.session);
    sessionName = row['name'] as string;
    values.push(row['id']);
    where.push(`t.session_id = $${values.length}`);
  }
  const planId = r.plan !== undefined ? await planIdOf(c, r.plan) : null;
  if (planId !== null) {
    values.push(planId);
    where.push(`t.plan_id = $${values.length}`);
  }
  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';

  const sums = await c.query<GroupSums & { k: string }>(
    `SELECT ${KEY[by]} AS k, count(*) AS tasks,
        count(*) FILTER (WHERE t.status = 'succeeded') AS succeeded, count(*) FILTER (WHERE t.status = 'failed') AS failed,
        COALESCE(sum(t.finished_at - t.started_at) FILTER (WHERE t.finished_at IS NOT NULL AND t.started_at IS NOT NULL), 0) AS run_ms,
        ${usageSum('inputTokens')} AS input, ${usageSum('cachedInputTokens')} AS cached, ${usageSum('outputTokens')} AS output,
        ${usageSum('reasoningTokens')} AS reasoning, ${usageSum('costUsd')} AS cost
      FROM tasks t ${USAGE} ${filter} GROUP BY 1`,
    values,
  );
  // By queue: the key is the queue's name, so an ended queue and the active one of the same name are one group.
  const queueNames = new Map<string, string>();
  if (by === 'queue' && sums.rows.length > 0) {
    const names = await c.query<{ id: string; name: string }>('SELECT id, name FROM queues WHERE id = ANY($1::text[])', [sums.rows.map((g) => g.k)]);
    for (const q of names.rows) queueNames.set(q.id, q.name);
  }
  const groups = new ReportGroups();
  for (const g of sums.rows) groups.add(by === 'queue' ? (queueNames.get(g.k) ?? g.k) : g.k, g);
  const report = groups.report(by, sessionName);

  if (planId !== null) {
    const tasks = await c.query<PlanTaskRow>(`SELECT t.id, t.seq, t.plan_key, t.tool, t.status, t.usage, t.validates FROM tasks t ${filter}`, values);
    const attempts = await c.query<PlanAttemptRow>(`SELECT a.task_id, a.started_at, a.ended_at FROM attempts a JOIN tasks t ON t.id = a.task_id ${filter}`, values);
    const deps = await c.query<PlanDepRow>(`SELECT d.task_id, d.after_id FROM task_deps d JOIN tasks t ON t.id = d.task_id ${filter}`, values);
    report.plan = planReportOf(planId, { tasks: tasks.rows, attempts: attempts.rows, deps: deps.rows }, ctx.config, r.orchestrator ?? ctx.config.orchestrator);
  }
  return report;
}
