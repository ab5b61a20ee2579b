import type { ReportRow } from '../../src/core/model';
import type { UsageReport } from '../../src/shared/dashboardProtocol';
import { type TemplateResult, html, nothing, svg } from '../lit';
import { formatCount } from '../format';
import { fmtCost } from '../view';
import type { DashboardState } from '../store';
import { StoreElement } from './base';

const USAGE_DAYS = 30;
const DAY_MS = 86_400_000;

/** Token usage and cost from the queue's report: totals, a chart by day, and tables by tool and by model. */
export class UsageView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.usage, s.usageError];
  }

  override render(): TemplateResult {
    const { usage, usageError } = this.state;
    return html`<div id="usage-report">${usageError !== null ? html`<p class="error">${usageError}</p>` : usage ? usageReport(usage) : nothing}</div>`;
  }
}
customElements.define('sparkq-usage', UsageView);

function usageReport(r: UsageReport): TemplateResult {
  const hasUsage = r.total.inputTokens + r.total.outputTokens > 0 || r.total.costUsd > 0;
  if (!hasUsage) return html`<h2>Usage and cost</h2><p class="muted" id="usage-empty">No task reported usage yet.</p>`;
  const totals = `${formatCount(r.total.inputTokens)} input (${formatCount(r.total.cachedInputTokens)} cached) · ${formatCount(r.total.outputTokens)} output tokens · ${fmtCost(r.total.costUsd)}`;
  return html`<h2>Usage and cost</h2>
    <p id="usage-total">${totals}</p>
    ${usageChart(r.byDay)}
    <div class="usage-tables">
      <div><h3>By tool</h3>${usageTable('usage-by-tool', 'Tool', r.byTool)}</div>
      <div><h3>By model</h3>${usageTable('usage-by-model', 'Model', r.byModel)}</div>
    </div>`;
}

const COLUMNS: [string, (x: ReportRow) => string][] = [
  ['Tasks', (x) => formatCount(x.tasks)],
  ['Input', (x) => formatCount(x.inputTokens)],
  ['Cached', (x) => formatCount(x.cachedInputTokens)],
  ['Output', (x) => formatCount(x.outputTokens)],
  ['Reasoning', (x) => formatCount(x.reasoningTokens)],
  ['Cost', (x) => fmtCost(x.costUsd)],
];

/** Tokens and cost per key (tool, model): the usage report's table, also the Plans tab's. */
export function usageTable(id: string, keyLabel: string, rows: ReportRow[]): TemplateResult {
  return html`<table id=${id} class="usage">
    <thead>
      <tr><th>${keyLabel}</th>${COLUMNS.map(([c]) => html`<th class="num">${c}</th>`)}</tr>
    </thead>
    <tbody>
      ${rows.map((x) => html`<tr data-key=${x.key}><td>${x.key}</td>${COLUMNS.map(([, f]) => html`<td class="num">${f(x)}</td>`)}</tr>`)}
    </tbody>
  </table>`;
}

/** Cost per day (tokens when no task reported a cost) over the last USAGE_DAYS days that have any. */
function usageChart(byDay: ReportRow[]): TemplateResult {
  const days = byDay.filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d.key));
  if (days.length === 0) return html`<div id="usage-chart"></div>`;
  const byCost = days.some((d) => d.costUsd > 0);
  const value = (d: ReportRow | undefined) => (d ? (byCost ? d.costUsd : d.inputTokens + d.outputTokens) : 0);
  const last = Date.parse(`${days[days.length - 1]!.key}T00:00:00Z`);
  const first = Math.max(Date.parse(`${days[0]!.key}T00:00:00Z`), last - (USAGE_DAYS - 1) * DAY_MS);
  const n = Math.round((last - first) / DAY_MS) + 1;
  const found = new Map(days.map((d) => [d.key, d]));
  const W = 600;
  const H = 120;
  const bw = W / Math.max(n, 7);
  const series = Array.from({ length: n }, (_, i) => {
    const key = new Date(first + i * DAY_MS).toISOString().slice(0, 10);
    return { key, v: value(found.get(key)) };
  });
  const max = Math.max(...series.map((x) => x.v), byCost ? 0.0001 : 1);
  const show = (v: number) => (byCost ? fmtCost(v) : `${formatCount(v)} tokens`);
  const bars = series.map(({ key, v }, i) => {
    const bh = (v / max) * (H - 14);
    return svg`<rect x=${i * bw + 1} y=${H - bh} width=${bw - 2} height=${bh} class="bar-cost" data-day=${key}><title>${`${key}: ${show(v)}`}</title></rect>`;
  });
  const label = byCost ? 'Cost per day' : 'Tokens per day';
  return html`<div id="usage-chart">
    <svg viewBox="0 0 600 120" class="chart" role="img" aria-label=${label}>${bars}<text x="2" y="10" class="axis">${`max ${show(max)} per day`}</text></svg>
    <div class="muted legend"><span class="key cost"></span>${`${label} (UTC), ${series[0]!.key} to ${series[series.length - 1]!.key}`}</div>
  </div>`;
}
