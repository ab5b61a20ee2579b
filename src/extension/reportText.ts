import type { PlanReport, Report, ReportRow } from '../core/model';
import { checksNote, naiveLine } from '../core/text';
import { formatDuration } from './views/taskText';

/** The usage report (`SparkQ: Show Usage Report`) as Markdown: the numbers of `sparkq report`, one table per grouping. */

const int = (n: number) => n.toLocaleString('en-US');
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

const TITLES: Record<Report['by'], string> = { tool: 'By tool', model: 'By model', queue: 'By queue', day: 'By day (UTC, of finishing)' };

function row(key: string, r: Omit<ReportRow, 'key'>, bold = false): string {
  const b = (s: string) => (bold ? `**${s}**` : s);
  return `| ${[cell(key), int(r.tasks), int(r.succeeded), int(r.failed), r.runMs > 0 ? formatDuration(r.runMs) : '', int(r.inputTokens), int(r.cachedInputTokens), int(r.outputTokens), `$${r.costUsd.toFixed(4)}`].map(b).join(' | ')} |`;
}

/** What a plan bought (`sparkq report --plan`): speed-up over one worker, the critical path as it ran, Codex repriced. */
function planSection(p: PlanReport): string[] {
  const out = [`## Plan ${cell(p.id)}`, ''];
  if (p.firstStartAt === null) return [...out, `None of its ${int(p.tasks)} tasks has run yet.`, ''];
  out.push(
    `| WALL CLOCK | SERIAL SUM | SPEED-UP | PARALLEL SHARE | TASKS | UNFINISHED |`,
    '|---:|---:|---:|---:|---:|---:|',
    `| ${formatDuration(p.wallClockMs)} | ${formatDuration(p.serialMs)} | ${p.speedup !== null ? `${p.speedup}×` : ''} | ${p.parallelShare !== null ? `${Math.round(p.parallelShare * 100)}%` : ''} | ${int(p.tasks)}${checksNote(p)} | ${int(p.unfinished)} |`,
    '',
    `Critical path as it ran (${formatDuration(p.criticalPath.runMs)}): ${p.criticalPath.tasks.map((t) => `${cell(t.key)} (${formatDuration(t.runMs)})`).join(' → ')}`,
    '',
    cell(naiveLine(p.naive)),
    '',
  );
  if (p.codex.tasks > 0) {
    out.push(`Codex tokens of ${int(p.codex.tasks)} tasks (${int(p.codex.inputTokens)} in, ${int(p.codex.cachedInputTokens)} cached, ${int(p.codex.outputTokens)} out), recorded cost $${p.codex.costUsd.toFixed(4)}, at API prices:`, '');
    for (const c of p.codex.pricedAt) out.push(`- ${cell(c.model)}: $${c.costUsd.toFixed(4)}`);
    out.push('');
  }
  return out;
}

export function renderReport(reports: readonly Report[], generatedAt: string): string {
  const session = reports[0]?.session ?? null;
  const plan = reports[0]?.plan;
  const command = `sparkq report${session !== null ? ` --session ${session}` : ''}${plan ? ` --plan ${plan.id}` : ''} --by …`;
  const out: string[] = [`# SparkQ usage report${session !== null ? ` — session ${session}` : ''}${plan ? ` — plan ${plan.id}` : ''}`, '', `Generated ${generatedAt}. The same numbers as \`${command}\`.`, ''];
  if (plan) out.push(...planSection(plan));
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
