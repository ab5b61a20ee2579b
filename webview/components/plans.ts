import type { PlanReport } from '../../src/core/model';
import type { PlansOverview, PlanView } from '../../src/shared/dashboardProtocol';
import { formatDuration } from '../../src/shared/format';
import { type TemplateResult, html, nothing, svg } from '../lit';
import { type DashboardState, store } from '../store';
import { formatCount, formatDateTime } from '../format';
import { fmtCost } from '../view';
import { StoreElement, select } from './base';
import { usageTable } from './usage';

/**
 * The Plans tab: what running a plan's tasks in parallel bought, as `sparkq report --plan` says it. Wall clock from
 * the first claim to the last finish, the serial sum, speed-up and parallel share, the critical path as it ran, the
 * plan's tokens and cost by tool and model, and what its Codex tokens would have cost at each priced model.
 */
export class PlansView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.plans, s.plansError];
  }

  override render(): TemplateResult {
    const { plans, plansError } = this.state;
    return html`<div id="plans">${plansError !== null ? html`<p class="error" id="plans-error">${plansError}</p>` : plans ? plansView(plans) : html`<p class="muted">Loading plans…</p>`}</div>`;
  }
}
customElements.define('sparkq-plans', PlansView);

function plansView(p: PlansOverview): TemplateResult {
  if (p.selected === null) {
    return html`<p class="muted" id="plans-empty">
      ${p.truncated ? `No plan among the newest ${formatCount(p.scanned)} tasks.` : 'No plan has been applied yet.'} Apply one with SparkQ: Apply Plan or
      <code>sparkq plan apply PLAN.yml</code>; its figures show here as its tasks run.
    </p>`;
  }
  const choices = p.plans.map((c): [string, string] => [c.id, `${c.id} — ${c.tasks === 1 ? '1 task' : `${formatCount(c.tasks)} tasks`}, newest ${formatDateTime(c.newestAt)}`]);
  if (!p.plans.some((c) => c.id === p.selected)) choices.unshift([p.selected, p.selected]);
  return html`<div class="row plan-choice">
      <div class="field">
        <label for="plan-picker">Plan</label>
        ${select('plan-picker', 'Plan', choices, p.selected, (id) => store.choosePlan(id))}
      </div>
    </div>
    ${p.truncated ? html`<p class="muted hint" id="plans-basis">Plans seen among the newest ${formatCount(p.scanned)} tasks.</p>` : nothing}
    ${p.problem !== null ? html`<p class="error" id="plan-problem">${p.problem}</p>` : nothing} ${p.report ? planReport(p.report) : nothing}`;
}

function planReport(v: PlanView): TemplateResult {
  const r = v.plan;
  const heading = html`<h2 id="plan-title">${`Plan ${r.id}`}</h2>`;
  if (r.firstStartAt === null || r.lastFinishAt === null) {
    const none = r.tasks === 1 ? 'Its one task has not finished a run yet' : `None of its ${formatCount(r.tasks)} tasks has finished a run yet`;
    return html`${heading}<p class="muted" id="plan-not-run">${`${none}: its figures come when one has.`}</p>`;
  }
  const figure = (key: string, label: string, value: string, title: string) =>
    html`<div class="card" data-figure=${key} title=${title}><div class="num">${value}</div><div class="muted">${label}</div></div>`;
  return html`${heading}
    <div class="cards" id="plan-figures">
      ${figure('wall-clock', 'wall clock', formatDuration(r.wallClockMs), 'From the first claim to the last finish')}
      ${figure('serial', 'serial sum', formatDuration(r.serialMs), 'The run times of all attempts added up: one worker doing the same work in turn')}
      ${figure('speedup', 'speed-up', r.speedup !== null ? `${r.speedup}×` : '–', 'Serial sum ÷ wall clock')}
      ${figure('parallel', 'parallel share', r.parallelShare !== null ? `${Math.round(r.parallelShare * 100)}%` : '–', 'Share of the serial sum that ran while another task of the plan ran too')}
      ${figure('tasks', r.unfinished > 0 ? `tasks, ${formatCount(r.unfinished)} unfinished` : 'tasks', formatCount(r.tasks), 'Tasks of the plan, requeued copies included')}
    </div>
    <p class="muted" id="plan-span">${`From the first claim at ${formatDateTime(r.firstStartAt)} to the last finish at ${formatDateTime(r.lastFinishAt)}${r.unfinished > 0 ? ' so far' : ''}.`}</p>
    ${criticalPath(r)}
    <h3>Tokens and cost</h3>
    <p id="plan-usage-total">${`${formatCount(v.total.inputTokens)} input (${formatCount(v.total.cachedInputTokens)} cached) · ${formatCount(v.total.outputTokens)} output tokens · ${fmtCost(v.total.costUsd)}`}</p>
    <div class="usage-tables">
      <div><h3>By tool</h3>${usageTable('plan-by-tool', 'Tool', v.byTool)}</div>
      <div><h3>By model</h3>${usageTable('plan-by-model', 'Model', v.byModel)}</div>
    </div>
    ${repriced(r)}`;
}

const BAR_W = 240;

/** The chain of waits with the largest summed run time, first to last, each step's run time as a bar. */
function criticalPath(r: PlanReport): TemplateResult {
  const steps = r.criticalPath.tasks;
  const longest = Math.max(1, ...steps.map((t) => t.runMs));
  return html`<h3 id="plan-path-title">${`Critical path as it ran: ${formatDuration(r.criticalPath.runMs)}`}</h3>
    <table id="plan-critical-path" class="usage">
      <thead>
        <tr><th class="num">#</th><th>Task name</th><th>Task</th><th class="num">Run time</th><th></th></tr>
      </thead>
      <tbody>
        ${steps.map(
          (t, i) => html`<tr data-key=${t.key}>
            <td class="num">${i + 1}</td>
            <td>${t.key}</td>
            <td class="mono">${t.id}</td>
            <td class="num">${formatDuration(t.runMs)}</td>
            <td><svg class="path-bar" viewBox=${`0 0 ${BAR_W} 10`} width=${BAR_W} height="10" aria-hidden="true">${svg`<rect x="0" y="1" height="8" width=${Math.max(1, (t.runMs / longest) * BAR_W)} class="bar-path"></rect>`}</svg></td>
          </tr>`,
        )}
      </tbody>
    </table>`;
}

/** "Cost if the Codex tokens had been billed at model M", for each model of sparkq.yml's pricing table. */
function repriced(r: PlanReport): TemplateResult {
  const c = r.codex;
  if (c.tasks === 0) return html`<h3>Codex tokens at other prices</h3><p class="muted" id="plan-codex">No task of this plan ran with a Codex tool.</p>`;
  return html`<h3>Codex tokens at other prices</h3>
    <p id="plan-codex">${`${c.tasks === 1 ? '1 Codex task' : `${formatCount(c.tasks)} Codex tasks`}: ${formatCount(c.inputTokens)} input (${formatCount(c.cachedInputTokens)} cached) · ${formatCount(c.outputTokens)} output tokens, recorded cost ${fmtCost(c.costUsd)}.`}</p>
    ${c.pricedAt.length > 0
      ? html`<table id="plan-repriced" class="usage">
          <thead>
            <tr><th>Billed at model</th><th class="num">Cost</th></tr>
          </thead>
          <tbody>
            ${c.pricedAt.map((p) => html`<tr data-model=${p.model}><td>${p.model}</td><td class="num">${fmtCost(p.costUsd)}</td></tr>`)}
          </tbody>
        </table>
        <p class="muted hint">At the per-million prices of <code>pricing:</code> in sparkq.yml (built-in defaults where it has none).</p>`
      : html`<p class="muted">sparkq.yml prices no model (<code>pricing:</code>).</p>`}`;
}
