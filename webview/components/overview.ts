import type { Overview, OverviewQueue } from '../../src/shared/dashboardProtocol';
import { throughputBasisText } from '../../src/shared/format';
import { type TemplateResult, html, nothing, svg } from '../lit';
import { type DashboardState, store } from '../store';
import { formatCount, formatDateTime } from '../format';
import { StoreElement } from './base';
import './usage';

const COUNT_KEYS = ['queued', 'running', 'stale', 'succeeded', 'failed'] as const;

/** The Overview tab: counts, throughput and the queues with their actions, then usage and cost (sparkq-usage). */
export class OverviewView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.overview, s.overviewError, s.queueNote, s.busy, s.init];
  }

  override render(): TemplateResult {
    const { overview, overviewError, queueNote } = this.state;
    return html`<div id="overview">
      <div id="overview-main">${overviewError !== null ? html`<p class="error">${overviewError}</p>` : overview ? this.overview(overview) : nothing}</div>
      <div id="queue-message" role="status" class=${queueNote?.kind ?? ''}>${queueNote?.text ?? ''}</div>
      <sparkq-usage></sparkq-usage>
    </div>`;
  }

  private overview(o: Overview): TemplateResult {
    const ro = this.state.init.readOnly;
    return html`<div class="cards" id="counts">
        ${COUNT_KEYS.map((k) => html`<div class="card status-${k}" data-count=${k}><div class="num">${formatCount(o.counts[k])}</div><div class="muted">${k}</div></div>`)}
      </div>
      <h2>Throughput</h2>
      ${throughputChart(o.throughput)}
      <p class="muted" id="throughput-basis">${throughputBasisText(o.scanned, o.truncated)}</p>
      <h2>Queues</h2>
      ${o.queues.length > 0
        ? html`<table id="queue-counts">
            <thead>
              <tr>
                <th>Queue</th>
                <th>Session</th>
                <th>State</th>
                ${COUNT_KEYS.map((k) => html`<th class="num">${k}</th>`)}${ro ? nothing : html`<th>Actions</th>`}
              </tr>
            </thead>
            <tbody>
              ${o.queues.map((q) => this.queueRow(q, ro))}
            </tbody>
          </table>`
        : html`<p class="muted">No active queues.</p>`}`;
  }

  private queueRow(q: OverviewQueue, ro: boolean): TemplateResult {
    // Not paused is "active", not "running": whether anything runs on it is in the running column.
    const state = q.paused ? (q.pausedUntil ? `paused until ${formatDateTime(q.pausedUntil)}` : 'paused') : 'active';
    const busy = this.state.busy;
    const action = (name: string, label: string, method: 'pauseQueue' | 'resumeQueue' | 'requeueFailed') => {
      const key = `${q.id}:${name}`;
      return html`<vscode-button secondary data-action=${name} ?disabled=${busy.has(key)} @click=${() => store.queueAction(key, label, method, q.id)}>${label}</vscode-button>`;
    };
    return html`<tr data-queue=${q.name} data-queue-id=${q.id} data-paused=${q.paused ? 'true' : 'false'}>
      <td>${q.name}</td>
      <td>${q.session}</td>
      <td class=${q.paused ? 'queue-state paused' : 'queue-state'} title=${q.pauseReason ?? nothing}>${state}${q.paused && q.pauseReason ? html`<span class="muted">${` (${q.pauseReason})`}</span>` : nothing}</td>
      ${COUNT_KEYS.map((k) => html`<td class="num">${formatCount(q.counts[k])}</td>`)}${ro
        ? nothing
        : html`<td class="queue-actions">
            ${q.paused ? action('resume', 'Resume', 'resumeQueue') : action('pause', 'Pause', 'pauseQueue')}${q.counts.failed > 0 ? action('requeue-failed', 'Requeue failed', 'requeueFailed') : nothing}
          </td>`}
    </tr>`;
  }
}
customElements.define('sparkq-overview', OverviewView);

const W = 600;
const H = 120;

function throughputChart(t: Overview['throughput']): TemplateResult {
  const n = t.succeeded.length;
  const bw = W / n;
  const max = Math.max(1, ...t.succeeded.map((s, i) => s + (t.failed[i] ?? 0)));
  const bars = t.succeeded.map((s, i) => {
    const f = t.failed[i] ?? 0;
    const hs = (s / max) * (H - 14);
    const hf = (f / max) * (H - 14);
    const x = i * bw + 1;
    const when = formatDateTime(t.start + i * t.bucketMs);
    return svg`<rect x=${x} y=${H - hs} width=${bw - 2} height=${hs} class="bar-ok"><title>${`${when}: ${s} succeeded, ${f} failed`}</title></rect>${
      f > 0 ? svg`<rect x=${x} y=${H - hs - hf} width=${bw - 2} height=${hf} class="bar-fail"><title>${`${when}: ${f} failed`}</title></rect>` : nothing
    }`;
  });
  return html`<div id="throughput">
    <svg viewBox="0 0 600 120" class="chart" role="img" aria-label="Tasks finished over time">${bars}<text x="2" y="10" class="axis">${`max ${max} per ${describeBucket(t.bucketMs)}`}</text></svg>
    <div class="muted legend"><span class="key ok"></span>succeeded <span class="key fail"></span>failed</div>
  </div>`;
}

function describeBucket(ms: number): string {
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  if (ms < 86_400_000) return `${ms / 3_600_000} h`;
  return `${ms / 86_400_000} d`;
}
