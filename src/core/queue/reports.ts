import { parseInput as parse } from '../inputs';
import { type Report, ReportInput, type ReportRow } from '../model';
import type { Row, SqlValue } from '../store/sqlite';
import type { QueueHandle } from './handle';

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
    const groups = new Map<string, ReportRow>();
    const add = (row: Row) => {
      const raw = String(row['k']);
      const key = by === 'queue' ? this.h.names.queue(raw) : raw;
      const g = groups.get(key) ?? { key, tasks: 0, succeeded: 0, failed: 0, runMs: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0, costUsd: 0 };
      g.tasks += Number(row['tasks'] ?? 0);
      g.succeeded += Number(row['succeeded'] ?? 0);
      g.failed += Number(row['failed'] ?? 0);
      g.runMs += Number(row['run_ms'] ?? 0);
      g.inputTokens += Number(row['input'] ?? 0);
      g.cachedInputTokens += Number(row['cached'] ?? 0);
      g.outputTokens += Number(row['output'] ?? 0);
      g.reasoningTokens += Number(row['reasoning'] ?? 0);
      g.costUsd += Number(row['cost'] ?? 0);
      groups.set(key, g);
    };
    for (const row of this.h.db.all(sql, params)) add(row);
    // Archive chunks never change (a purge replaces a chunk with a new id): their sums are kept, so a report (the
    // dashboard asks for one after every batch of changes) opens each chunk once, not every time.
    for (const chunk of this.h.archive.chunks()) {
      const key = `${chunk.id}\u0000${by}\u0000${String(params[0] ?? '')}`;
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
    const rows = [...groups.values()].sort((a, b) => (by === 'day' ? a.key.localeCompare(b.key) : b.tasks - a.tasks || a.key.localeCompare(b.key)));
    const total = { tasks: 0, succeeded: 0, failed: 0, runMs: 0, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0, costUsd: 0 };
    for (const g of rows) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += g[k];
    for (const g of [...rows, total]) g.costUsd = Math.round(g.costUsd * 1e6) / 1e6;
    return { by, session: sessionName, rows, total };
  }
}
