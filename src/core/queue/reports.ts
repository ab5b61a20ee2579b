import { iso } from '../clock';
import type { SparkqConfig } from '../config';
import { parseInput as parse } from '../inputs';
import { type PlanPathTask, type PlanReport, type Report, type ReportGroup, ReportInput, type ReportRow } from '../model';
import { costAt } from '../pricing';
import type { Row, SqlValue } from '../store/sqlite';
import type { QueueHandle } from './handle';

/*
 * Usage reports. The arithmetic over rows is here once, as pure functions that both stores call: the embedded one
 * (QueueReports, over live tasks and archive chunks) and the team database (src/team/reports.ts). Each store only
 * reads its rows.
 */

/**
 * One group of a store's report query: its sums under these names. Values are numbers, or numeric text (PostgreSQL
 * returns its sums of numerics as text); a missing one counts 0.
 */
export type GroupSums = Readonly<Partial<Record<'tasks' | 'succeeded' | 'failed' | 'run_ms' | 'input' | 'cached' | 'output' | 'reasoning' | 'cost', unknown>>>;

type Totals = Omit<ReportRow, 'key'>;
const zeroTotals = (): Totals => ({ tasks: 0, succeeded: 0, failed: 0, runMs: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0, costUsd: 0 });

/** The groups of a report, from sums read in any number of parts (live tasks, archive chunks) that may share a key. */
export class ReportGroups {
  private readonly groups = new Map<string, ReportRow>();

  add(key: string, row: GroupSums): void {
    const g = this.groups.get(key) ?? { key, ...zeroTotals() };
    g.tasks += Number(row.tasks ?? 0);
    g.succeeded += Number(row.succeeded ?? 0);
    g.failed += Number(row.failed ?? 0);
    g.runMs += Number(row.run_ms ?? 0);
    g.inputTokens += Number(row.input ?? 0);
    g.cachedInputTokens += Number(row.cached ?? 0);
    g.outputTokens += Number(row.output ?? 0);
    g.reasoningTokens += Number(row.reasoning ?? 0);
    g.costUsd += Number(row.cost ?? 0);
    this.groups.set(key, g);
  }

  /** The report: days in order, anything else by most tasks then key; a total row; costs to a millionth of a dollar. */
  report(by: ReportGroup, session: string | null): Report {
    const rows = [...this.groups.values()].sort((a, b) => (by === 'day' ? a.key.localeCompare(b.key) : b.tasks - a.tasks || a.key.localeCompare(b.key)));
    const total = zeroTotals();
    for (const g of rows) for (const k of Object.keys(total) as (keyof Totals)[]) total[k] += g[k];
    for (const g of [...rows, total]) g.costUsd = Math.round(g.costUsd * 1e6) / 1e6;
    return { by, session, rows, total };
  }
}

/** A task of a plan as planReportOf reads it (the tasks table's columns). */
export interface PlanTaskRow {
  id: string;
  seq: number;
  plan_key: string | null;
  tool: string;
  status: string;
  /** The usage JSON as stored, or null. */
  usage: string | null;
  /** On a validation task: the task it checks (a check counts under the name of the task it checks). */
  validates: string | null;
}
/** An attempt of a plan task (the attempts table's columns). */
export interface PlanAttemptRow {
  task_id: string;
  started_at: number;
  ended_at: number | null;
}
/** A wait between tasks (task_deps): task_id waits on after_id. Waits on tasks outside `tasks` are ignored. */
export interface PlanDepRow {
  task_id: string;
  after_id: string;
}

/**
 * The plan's figures over its tasks, their attempts and their waits: wall clock, serial sum, speed-up, parallel
 * share, the critical path as it ran, and what its Codex tokens would have cost at each priced model.
 */
export function planReportOf(
  planId: string,
  rows: { tasks: readonly PlanTaskRow[]; attempts: readonly PlanAttemptRow[]; deps: readonly PlanDepRow[] },
  config: Pick<SparkqConfig, 'tools' | 'pricing' | 'orchestrator'>,
  orchestrator: string | null = config.orchestrator,
): PlanReport {
  const { tasks, attempts } = rows;
  // Run time per task over its ended attempts; the span and the overlap of all of them.
  const runMsOf = new Map<string, number>();
  const ended: [number, number][] = [];
  let firstStart = Infinity;
  for (const a of attempts) {
    const start = a.started_at;
    firstStart = Math.min(firstStart, start);
    const end = a.ended_at;
    if (end === null) continue;
    ended.push([start, end]);
    runMsOf.set(a.task_id, (runMsOf.get(a.task_id) ?? 0) + (end - start));
  }
  const serialMs = ended.reduce((sum, [s, e]) => sum + (e - s), 0);
  const lastFinish = ended.length > 0 ? ended.reduce((m, [, e]) => Math.max(m, e), -Infinity) : null;
  const wallClockMs = lastFinish !== null ? lastFinish - firstStart : 0;
  const round3 = (x: number) => Math.round(x * 1000) / 1000;

  const codexTools = new Set(Object.values(config.tools).filter((t) => t.knownKind === 'codex').map((t) => t.name));
  const codex = { tasks: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0 };
  for (const t of tasks) {
    if (!codexTools.has(t.tool)) continue;
    const u = typeof t.usage === 'string' ? (JSON.parse(t.usage) as Record<string, number | undefined>) : {};
    codex.tasks++;
    codex.inputTokens += u['inputTokens'] ?? 0;
    codex.cachedInputTokens += u['cachedInputTokens'] ?? 0;
    codex.outputTokens += u['outputTokens'] ?? 0;
    codex.costUsd += u['costUsd'] ?? 0;
  }
  codex.costUsd = Math.round(codex.costUsd * 1e6) / 1e6;

  // The naive plan: the orchestrator's model doing every task itself, one after another.
  const all = { tasks: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };
  let actual = 0;
  for (const t of tasks) {
    if (typeof t.usage !== 'string') continue;
    const u = JSON.parse(t.usage) as Record<string, number | undefined>;
    all.tasks++;
    all.inputTokens += u['inputTokens'] ?? 0;
    all.cachedInputTokens += u['cachedInputTokens'] ?? 0;
    all.outputTokens += u['outputTokens'] ?? 0;
    actual += u['costUsd'] ?? 0;
  }
  const actualCostUsd = Math.round(actual * 1e6) / 1e6;
  const price = orchestrator !== null ? config.pricing[orchestrator] : undefined;
  const naiveCost = price ? costAt(price, all) : null;
  const saved = naiveCost !== null ? Math.round((naiveCost - actualCostUsd) * 1e6) / 1e6 : null;

  return {
    id: planId,
    tasks: tasks.length,
    checks: tasks.filter((t) => t.validates !== null).length,
    unfinished: tasks.filter((t) => t.status === 'queued' || t.status === 'running').length,
    firstStartAt: lastFinish !== null ? iso(firstStart) : null,
    lastFinishAt: lastFinish !== null ? iso(lastFinish) : null,
    wallClockMs,
    serialMs,
    speedup: wallClockMs > 0 ? round3(serialMs / wallClockMs) : null,
    parallelShare: serialMs > 0 ? round3(overlappedMs(ended) / serialMs) : null,
    criticalPath: criticalPath(tasks, rows.deps, runMsOf),
    codex: { ...codex, pricedAt: Object.entries(config.pricing).map(([model, price]) => ({ model, costUsd: costAt(price, codex) })) },
    naive: {
      model: price ? orchestrator : null,
      ...all,
      costUsd: naiveCost,
      actualCostUsd,
      savedUsd: saved,
      savedShare: naiveCost !== null && naiveCost > 0 && saved !== null ? round3(saved / naiveCost) : null,
      timeSavedMs: Math.max(0, serialMs - wallClockMs),
    },
  };
}

/** Usage reports over live and archived tasks, with the sums of archive chunks kept (a chunk never changes). */
export class QueueReports {
  /** report() sums per archive chunk, by chunk id, grouping and session. */
  private readonly chunkReports = new Map<string, Row[]>();

  constructor(private readonly h: QueueHandle) {}

  /** Tasks, durations and tokens per tool, model, queue or day, over live and archived tasks. */
  async report(input: ReportInput = {}): Promise<Report> {
    const r = parse(ReportInput, input, 'report');
    const by = r.by ?? 'tool';
    const where: string[] = [];
    const params: SqlValue[] = [];
    let sessionName: string | null = null;
    if (r.session !== undefined) {
      const row = this.h.sessionRow(r.session);
      sessionName = row['name'] as string;
      where.push('session_id = ?');
      params.push(row['id'] as string);
    }
    const planId = r.plan !== undefined ? this.h.planId(r.plan) : null;
    if (planId !== null) {
      where.push('plan_id = ?');
      params.push(planId);
    }
    const keyExpr =
      by === 'tool'
        ? 'tool'
        : by === 'model'
          ? "COALESCE(json_extract(usage, '$.model'), '(none)')"
          : by === 'queue'
            ? 'queue_id'
            : "COALESCE(strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch'), '(unfinished)')";
    const sql = `SELECT ${keyExpr} AS k, count(*) AS tasks,
        SUM(status = 'succeeded') AS succeeded, SUM(status = 'failed') AS failed,
        SUM(CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL THEN finished_at - started_at ELSE 0 END) AS run_ms,
        SUM(COALESCE(json_extract(usage, '$.inputTokens'), 0)) AS input,
        SUM(COALESCE(json_extract(usage, '$.cachedInputTokens'), 0)) AS cached,
        SUM(COALESCE(json_extract(usage, '$.outputTokens'), 0)) AS output,
        SUM(COALESCE(json_extract(usage, '$.reasoningTokens'), 0)) AS reasoning,
        SUM(COALESCE(json_extract(usage, '$.costUsd'), 0)) AS cost
      FROM tasks ${where.length ? 'WHERE ' + where.join(' AND ') : ''} GROUP BY k`;
    const groups = new ReportGroups();
    const add = (row: Row) => {
      const raw = String(row['k']);
      groups.add(by === 'queue' ? this.h.names.queue(raw) : raw, row);
    };
    for (const row of this.h.db.all(sql, params)) add(row);
    // Archive chunks never change (a purge replaces a chunk with a new id): their sums are kept, so a report (the
    // dashboard asks for one after every batch of changes) opens each chunk once, not every time.
    for (const chunk of this.h.archive.chunks()) {
      const key = [chunk.id, by, ...params].join('\u0000');
      let rows = this.chunkReports.get(key);
      if (rows === undefined) {
        // Opening a chunk takes tens of milliseconds: let other requests in between (a first report over a long
        // history opens hundreds). A chunk purged meanwhile is simply no longer there to count.
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.h.throwIfClosed();
        try {
          rows = this.h.archive.open(chunk).all(sql, params);
        } catch (e) {
          if (!this.h.archive.chunks().some((c) => c.id === chunk.id)) continue;
          throw e;
        }
        if (this.chunkReports.size >= 20_000) this.chunkReports.clear();
        this.chunkReports.set(key, rows);
      }
      for (const row of rows) add(row);
    }
    const report = groups.report(by, sessionName);
    if (planId !== null) report.plan = await this.planReport(planId, where, params, r.orchestrator);
    return report;
  }

  /** The plan's figures over its tasks (those `where` selects), live and archived. */
  private async planReport(planId: string, where: string[], params: SqlValue[], orchestrator: string | undefined): Promise<PlanReport> {
    const tasksSql = `SELECT id, seq, plan_key, tool, status, usage, validates FROM tasks WHERE ${where.join(' AND ')}`;
    const attemptsSql = `SELECT task_id, started_at, ended_at FROM attempts WHERE task_id IN (SELECT id FROM tasks WHERE ${where.join(' AND ')})`;
    const tasks = this.h.db.all<PlanTaskRow>(tasksSql, params);
    const attempts = this.h.db.all<PlanAttemptRow>(attemptsSql, params);
    // A plan's tasks were all made after its first apply: chunks of tasks that finished before it hold none of them.
    const appliedFirst = Number(this.h.db.value('SELECT created_at FROM plans WHERE id = ?', [planId]) ?? 0);
    for (const chunk of this.h.archive.chunks()) {
      if (chunk.max_finished_at < appliedFirst) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.h.throwIfClosed();
      if (!this.h.archive.chunks().some((c) => c.id === chunk.id)) continue;
      const db = this.h.archive.open(chunk);
      tasks.push(...db.all<PlanTaskRow>(tasksSql, params));
      attempts.push(...db.all<PlanAttemptRow>(attemptsSql, params));
    }
    // The waits stay in the live database when tasks move to the archive.
    const ids = tasks.map((t) => t.id);
    const deps: PlanDepRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const batch = ids.slice(i, i + 500);
      deps.push(...this.h.db.all<PlanDepRow>(`SELECT task_id, after_id FROM task_deps WHERE task_id IN (${batch.map(() => '?').join(',')})`, batch));
    }
    return planReportOf(planId, { tasks, attempts, deps }, this.h.config, orchestrator ?? this.h.config.orchestrator);
  }
}

/**
 * The chain of waits between the plan's names with the largest summed run time. A name stands for all its tasks (a
 * requeued copy takes over the failed task's place in the graph, and both ran), shown by its newest task.
 */
function criticalPath(tasks: readonly PlanTaskRow[], deps: readonly PlanDepRow[], runMsOf: Map<string, number>): { runMs: number; tasks: PlanPathTask[] } {
  const ordered = [...tasks].sort((a, b) => a.seq - b.seq);
  const keyOf = new Map<string, string>();
  const node = new Map<string, { id: string; runMs: number; after: Set<string> }>();
  for (const t of ordered) {
    const key = t.plan_key ?? t.id;
    keyOf.set(t.id, key);
    const n = node.get(key) ?? { id: t.id, runMs: 0, after: new Set<string>() };
    // Shown by its newest task; a check adds its run time to the name it checks (its waiters waited for it too).
    if (t.validates === null) n.id = t.id;
    n.runMs += runMsOf.get(t.id) ?? 0;
    node.set(key, n);
  }
  for (const d of deps) {
    const from = keyOf.get(d.after_id);
    const to = keyOf.get(d.task_id);
    // Waits on tasks outside the plan are not part of its graph.
    if (from !== undefined && to !== undefined && from !== to) node.get(to)!.after.add(from);
  }
  // Longest path by run time, in dependency order (Kahn); ties go to the name enqueued first.
  const keys = [...node.keys()];
  const pos = new Map(keys.map((k, i) => [k, i]));
  const waiting = new Map(keys.map((k) => [k, node.get(k)!.after.size]));
  const next = new Map<string, string[]>(keys.map((k) => [k, []]));
  for (const k of keys) for (const a of node.get(k)!.after) next.get(a)!.push(k);
  const best = new Map<string, { ms: number; via: string | null }>();
  const ready = keys.filter((k) => waiting.get(k) === 0);
  for (let i = 0; i < ready.length; i++) {
    const k = ready[i]!;
    let via: string | null = null;
    let before = 0;
    for (const a of [...node.get(k)!.after].sort((x, y) => pos.get(x)! - pos.get(y)!)) {
      const b = best.get(a)!.ms;
      if (via === null || b > before) {
        via = a;
        before = b;
      }
    }
    best.set(k, { ms: before + node.get(k)!.runMs, via });
    for (const n of next.get(k)!) {
      waiting.set(n, waiting.get(n)! - 1);
      if (waiting.get(n) === 0) ready.push(n);
    }
  }
  // Nothing ran yet: no chain has taken any time.
  let end: string | null = null;
  for (const k of keys) if (best.has(k) && best.get(k)!.ms > (end === null ? 0 : best.get(end)!.ms)) end = k;
  const path: PlanPathTask[] = [];
  for (let k = end; k !== null; k = best.get(k)!.via) path.push({ key: k, id: node.get(k)!.id, runMs: node.get(k)!.runMs });
  path.reverse();
  return { runMs: end !== null ? best.get(end)!.ms : 0, tasks: path };
}

/** How much of the intervals' summed length ran while at least one other interval was running too. */
function overlappedMs(intervals: readonly [number, number][]): number {
  // An end sorts before a start at the same moment: one task finishing as the next starts is not overlap.
  const events = intervals.flatMap(([s, e]): [number, number][] => [
    [s, 1],
    [e, -1],
  ]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let active = 0;
  let last = 0;
  let overlapped = 0;
  for (const [at, change] of events) {
    if (active >= 2) overlapped += active * (at - last);
    active += change;
    last = at;
  }
  return overlapped;
}
