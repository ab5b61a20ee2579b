import type { Report, ReportRow } from '../core/model';
import { formatDuration } from './views/taskText';

/** The usage report (`SparkQ: Show Usage Report`) as Markdown: the numbers of `sparkq report`, one table per grouping. */

const int = (n: number) => n.toLocaleString('en-US');
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

const TITLES: Record<Report['by'], string> = { tool: 'By tool', model: 'By model', queue: 'By queue', day: 'By day (UTC, of finishing)' };

function row(key: string, r: Omit<ReportRow, 'key'>, bold = false): string {
  const b = (s: string) => (bold ? `**${s}**` : s);
  return `| ${[cell(key), int(r.tasks), int(r.succeeded), int(r.failed), r.runMs > 0 ? formatDuration(r.runMs) : '', int(r.inputTokens), int(r.cachedInputTokens), int(r.outputTokens), `$${r.costUsd.toFixed(4)}`].map(b).join(' | ')} |`;
}

export function renderReport(reports: readonly Report[], generatedAt: string): string {
  const session = reports[0]?.session ?? null;
  const out: string[] = [`# SparkQ usage report${session !== null ? ` — session ${session}` : ''}`, '', `Generated ${generatedAt}. The same numbers as \`sparkq report${session !== null ? ` --session ${session}` : ''} --by …\`.`, ''];
  if (reports.every((r) => r.rows.length === 0)) {
    out.push('No tasks yet.', '');
    return out.join('\n');
  }
  for (const r of reports) {
    out.push(`## ${TITLES[r.by]}`, '');
    out.push(`| ${r.by.toUpperCase()} | TASKS | SUCCEEDED | FAILED | RUN TIME | INPUT | CACHED | OUTPUT | COST |`, '|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of r.rows) out.push(row(x.key, x));
    out.push(row('total', r.total, true), '');
  }
  return out.join('\n');
}
