import { PATTERN_STATS_HEADER, patternStatsCells } from '../../src/core/patternStats';
import { type PatternsOverview, shortHash } from '../../src/shared/dashboardProtocol';
import { type TemplateResult, html, nothing } from '../lit';
import { type DashboardState } from '../store';
import { formatCount } from '../format';
import { StoreElement } from './base';

/**
 * The Patterns tab: how each prompt pattern has done, from the queue's history — the table of `sparkq patterns stats`
 * in its words (the same pure function on the host, the same cells here) — and the patterns of the folder.
 */
export class PatternsView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.patterns, s.patternsTable, s.patternsError];
  }

  override render(): TemplateResult {
    const { patterns, patternsTable, patternsError } = this.state;
    const body =
      patternsError !== null
        ? html`<p class="error" id="patterns-error">${patternsError}</p>`
        : patterns && patternsTable
          ? patternsView(patterns)
          : html`<p class="muted">Loading patterns…</p>`;
    return html`<div id="patterns">${body}</div>`;
  }
}
customElements.define('sparkq-patterns', PatternsView);

function patternsView(p: PatternsOverview): TemplateResult {
  return html`<h2>How the patterns have done</h2>
    ${statsTable(p)}
    <h2>Patterns in the folder</h2>
    ${folder(p)}`;
}

function statsTable(p: PatternsOverview): TemplateResult {
  if (p.stats.length === 0) {
    return html`<p class="muted" id="patterns-stats-empty">
      No task was made from a pattern yet. Enqueue one from the Enqueue tab, with <code>sparkq enqueue --pattern NAME</code>, or with
      <code>pattern:</code> in a plan.
    </p>`;
  }
  return html`<div class="table-wrap">
      <table id="patterns-stats" class="usage">
        <thead>
          <tr>${PATTERN_STATS_HEADER.map((h, i) => html`<th class=${i === 0 ? '' : 'num'}>${h}</th>`)}</tr>
        </thead>
        <tbody>
          ${p.stats.map(
            (r) => html`<tr data-pattern=${r.pattern} title=${r.versions > 1 ? `${r.versions} versions of the file were used` : ''}>
              ${patternStatsCells(r).map((c, i) => html`<td class=${i === 0 ? '' : 'num'}>${c}</td>`)}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <p class="muted hint" id="patterns-basis">
      ${`First-try: succeeded on its first attempt, never requeued, of the uses that finished. Medians are per use (a task and its requeued copies). Validation: passed in its first round, of the uses a validator judged. ${
        p.truncated ? `From the newest ${formatCount(p.scanned)} tasks (older ones not counted).` : `From all ${formatCount(p.scanned)} tasks, archived ones included.`
      }`}
    </p>`;
}

function folder(p: PatternsOverview): TemplateResult {
  if (p.folder === null) return html`<p class="muted" id="patterns-folder">The patterns folder is read from sparkq.yml once this workspace is trusted.</p>`;
  const problems = p.problems.length
    ? html`<ul id="patterns-problems" class="error">
        ${p.problems.map((x) => html`<li><span class="mono">${x.file}</span>${`: ${x.message}`}</li>`)}
      </ul>`
    : nothing;
  if (p.patterns.length === 0) {
    return html`<p class="muted" id="patterns-folder">${`No patterns in ${p.folder}: add NAME.md files with front matter (name, description, tool, variables) and the prompt.`}</p>
      ${problems}`;
  }
  return html`<p class="muted" id="patterns-folder">${p.folder}</p>
    <table id="patterns-list" class="usage">
      <thead>
        <tr><th>Pattern</th><th>Tool</th><th>Variables</th><th>Validator</th><th>Description</th></tr>
      </thead>
      <tbody>
        ${p.patterns.map(
          (x) => html`<tr data-pattern=${x.name}>
            <td title=${x.hash}>${x.name} <span class="mono muted">${shortHash(x.hash)}</span></td>
            <td>${x.tool ?? '—'}</td>
            <td class="mono">${x.variables.map((v) => (v.default === null ? v.name : `${v.name}=${v.default}`)).join(', ')}</td>
            <td>${x.validator ?? '—'}</td>
            <td>${x.description}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${problems}`;
}
