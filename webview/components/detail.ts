import type { TaskChange, TaskDetail } from '../../src/core/model';
import { type ChangeAction, changeSummary, shortHash, stripAnsi, validationBadge } from '../../src/shared/dashboardProtocol';
import { formatDuration } from '../../src/shared/format';
import { type TemplateResult, html, nothing } from '../lit';
import { type DashboardState, store } from '../store';
import { formatCount, formatDateTime } from '../format';
import { duration, fmtCost } from '../view';
import { StoreElement, valueOf } from './base';
import { statusCell } from './status';

/** The selected task in full: its fields, texts and attempts, and what can be done with it. */
export class TaskDetailView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.detail, s.detailError, s.init, s.busy, s.taskNote];
  }

  override render(): TemplateResult {
    const { detail, detailError } = this.state;
    const body = detailError !== null ? html`<p class="error">${detailError}</p>` : detail ? this.detail(detail) : nothing;
    return html`<section id="detail" class="detail" ?hidden=${detailError === null && detail === null}>${body}</section>`;
  }

  private detail(t: TaskDetail): TemplateResult {
    const d = duration(t, Date.now());
    const rows: [string, TemplateResult | string][] = [
      ['Session / queue', `${t.session} / ${t.queue}`],
      ['Tool', `${t.tool} (${t.taskClass}, timeout ${t.timeoutSeconds} s)`],
      ['Priority', String(t.priority)],
      ['Attempt', String(t.attempt)],
      ['Worker', t.worker ?? '—'],
      ['Created', t.createdAt],
      ['Started', t.startedAt ?? '—'],
      ['Finished', t.finishedAt ?? '—'],
      [
        'Duration',
        t.status === 'running'
          ? html`<span id="detail-elapsed" data-started=${t.startedAt ?? t.createdAt}><sparkq-elapsed .started=${t.startedAt ?? t.createdAt}></sparkq-elapsed></span>`
          : d === null
            ? '—'
            : formatDuration(d),
      ],
      ['Waited', t.timings.waitMs === null ? '—' : formatDuration(t.timings.waitMs)],
    ];
    if (t.stale) rows.push(['Stale since', t.staleAt ?? '']);
    if (t.retryOf) rows.push(['Retry of', t.retryOf]);
    if (t.after.length > 0) {
      const state = (id: string) => (t.blockedBy.includes(id) ? 'failed' : t.waitingOn.includes(id) ? 'waiting' : 'done');
      rows.push(['Waits on', html`<ul id="detail-after" class="deps">${t.after.map((id) => html`<li data-state=${state(id)}>${taskLink(id)}<span class="dep-${state(id)}">${` ${state(id)}`}</span></li>`)}</ul>`]);
    }
    if (t.blockedBy.length > 0) rows.push(['Blocked by', html`<span id="detail-blocked">${t.blockedBy.map((id, i) => html`${i > 0 ? ', ' : ''}${taskLink(id)}`)}</span>`]);
    if (t.notBefore) rows.push(['Retry after', html`<span id="detail-retry" title=${t.notBefore}>${formatDateTime(t.notBefore)}</span>`]);
    if (t.plan) rows.push(['Plan', html`<span id="detail-plan">${t.planKey ? `${t.plan} / ${t.planKey}` : t.plan}</span>`]);
    if (t.pattern) rows.push(['Pattern', html`<span id="detail-pattern" title=${t.pattern.hash}>${t.pattern.name} <span class="mono muted">${`@ ${shortHash(t.pattern.hash)}`}</span></span>`]);
    if (t.validates) rows.push(['Checks', html`<span id="detail-validates">${taskLink(t.validates)}<span class="muted"> (this is its validation task)</span></span>`]);
    if (t.usage) {
      const u = t.usage;
      rows.push(['Usage', [u.model, u.inputTokens !== undefined ? `${formatCount(u.inputTokens)} in` : '', u.outputTokens !== undefined ? `${formatCount(u.outputTokens)} out` : ''].filter(Boolean).join(' · ') || '—']);
      if (u.costUsd !== undefined) rows.push(['Cost', fmtCost(u.costUsd)]);
    }
    const sections: TemplateResult[] = [];
    const section = (title: string, text: string, id?: string) => sections.push(html`<h3>${title}</h3><pre class="mono" id=${id ?? nothing}>${text}</pre>`);
    if (t.prompt) section('Prompt', t.prompt, 'detail-prompt');
    if (t.payload !== null) section('Payload', JSON.stringify(t.payload, null, 2), 'detail-payload');
    if (t.instructions) section('Queue instructions', t.instructions);
    if (t.result) {
      if (t.result.summary !== null) section('Result summary', t.result.summary, 'detail-summary');
      if (t.result.data !== null) section(t.result.summary === null ? 'Partial results' : 'Result data', JSON.stringify(t.result.data, null, 2), 'detail-data');
    }
    if (t.error) section('Error', t.error, 'detail-error');
    if (t.stdout) section('Output', stripAnsi(t.stdout), 'detail-stdout');
    if (t.stderr) section('Errors output', stripAnsi(t.stderr), 'detail-stderr');
    const attempts =
      t.attempts.length > 0
        ? html`<h3>Attempts</h3>
            <table id="detail-attempts">
              <thead>
                <tr>${['#', 'Worker', 'Started', 'Ended', 'Outcome', 'Error'].map((c) => html`<th>${c}</th>`)}</tr>
              </thead>
              <tbody>
                ${t.attempts.map((a) => html`<tr><td>${a.n}</td><td>${a.worker ?? ''}</td><td>${a.startedAt}</td><td>${a.endedAt ?? ''}</td><td>${a.outcome}</td><td>${a.error ?? ''}</td></tr>`)}
              </tbody>
            </table>`
        : nothing;
    return html`<h2>Task ${t.id}</h2>
      ${this.actions(t)}${t.change ? this.change(t, t.change) : nothing}
      <table class="kv">
        <tbody>
          <tr><th>Status</th>${statusCell(t)}</tr>
          ${rows.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}
        </tbody>
      </table>
      ${validationSection(t)}${sections}${attempts}`;
  }

  /** What the task changed in its worktree (isolation: worktree): branch, commit, diff stat, files, and review buttons. */
  private change(t: TaskDetail, c: TaskChange): TemplateResult {
    const { init, busy } = this.state;
    const ro = init.readOnly;
    const finished = t.status === 'succeeded' || t.status === 'failed';
    const committed = t.status === 'succeeded' && c.commit !== null;
    const into = c.baseRef ?? `base ${c.baseCommit.slice(0, 12)}`;
    const act = (action: ChangeAction, label: string, enabled: boolean) => {
      const id = `act-${action}`;
      return html`<vscode-button id=${id} secondary ?disabled=${!enabled || busy.has(id)} @click=${() => !busy.has(id) && enabled && store.taskAction(id, label, 'taskAction', { task: t.id, action })}
        >${label}</vscode-button
      >`;
    };
    const more = c.filesChanged - c.files.length;
    return html`<h3>Change</h3>
      <div class="actions" id="change-actions">
        ${act('showChanges', 'Show changes', !ro && committed)} ${act('mergeChange', `Merge into ${into}`, !ro && committed && c.baseRef !== null)}
        ${act('openWorktree', 'Open worktree in new window', !ro && finished)} ${act('discardChange', 'Discard', !ro && finished)}
      </div>
      <table class="kv" id="detail-change">
        <tbody>
          <tr><th>Branch</th><td class="mono">${c.branch}</td></tr>
          <tr><th>Commit</th><td class="mono">${c.commit ? c.commit.slice(0, 12) : '—'}</td></tr>
          <tr><th>Base</th><td class="mono">${c.baseRef ? `${c.baseRef} @ ${c.baseCommit.slice(0, 12)}` : c.baseCommit.slice(0, 12)}</td></tr>
          <tr><th>Diff</th><td id="detail-change-stat">${changeSummary(t) ?? '—'}</td></tr>
          <tr><th>Worktree</th><td class="mono">${c.worktree}</td></tr>
        </tbody>
      </table>
      ${c.files.length > 0
        ? html`<ul id="detail-change-files" class="mono">
            ${c.files.map((f) => html`<li><span class="file-status">${f.status}</span> ${f.path}</li>`)}${more > 0 ? html`<li>… and ${more} more</li>` : nothing}
          </ul>`
        : nothing}`;
  }

  private actions(t: TaskDetail): TemplateResult {
    const { init, busy, taskNote } = this.state;
    const ro = init.readOnly;
    const running = t.status === 'running';
    const text = () => valueOf(this, 'action-text');
    const act = (id: string, label: string, enabled: boolean, run: () => void) =>
      html`<vscode-button id=${id} secondary ?disabled=${!enabled || busy.has(id)} @click=${() => !busy.has(id) && enabled && run()}>${label}</vscode-button>`;
    return html`<div>
      <div class="actions">
        ${act('act-requeue', 'Requeue', !ro && t.status === 'failed', () => store.taskAction('act-requeue', 'Requeue', 'taskAction', { task: t.id, action: 'requeue' }))}
        ${running
          ? html`<vscode-textfield id="action-text" aria-label="Summary or error" placeholder="summary (complete) or error (fail)" ?disabled=${ro}></vscode-textfield>`
          : nothing}
        ${act('act-complete', 'Complete', !ro && running, () => store.taskAction('act-complete', 'Complete', 'taskAction', { task: t.id, action: 'complete', text: text() }))}
        ${act('act-fail', 'Fail', !ro && running, () => store.taskAction('act-fail', 'Fail', 'taskAction', { task: t.id, action: 'fail', text: text() }))}
        ${act('act-log', 'Open full log', true, () => store.taskAction('act-log', 'Open full log', 'taskAction', { task: t.id, action: 'openLog' }))}
        ${act('act-worker', 'Start worker', !ro, () => store.taskAction('act-worker', 'Start worker', 'startWorker', { queue: t.queueId }))}
      </div>
      <div id="action-message" role="status" class=${taskNote?.kind ?? ''}>${taskNote?.text ?? ''}</div>
    </div>`;
  }
}
customElements.define('sparkq-task-detail', TaskDetailView);

/** Where a validated task's check stands: the verdict, the round, the validator, its validation tasks and its feedback. */
function validationSection(t: TaskDetail): TemplateResult | typeof nothing {
  const v = t.validation;
  if (v === null) return nothing;
  const spec = v.spec;
  return html`<h3>Validation</h3>
    <table class="kv" id="detail-validation" data-status=${v.status}>
      <tbody>
        <tr><th>Status</th><td><span id="detail-validation-badge" class=${`validation-badge validation-${v.status}`}>${validationBadge(t) ?? v.status}</span></td></tr>
        <tr><th>Round</th><td id="detail-validation-round">${`${v.round} of ${v.maxRounds}`}</td></tr>
        <tr><th>Validator</th><td id="detail-validator">${`${spec.tool}${spec.queue !== undefined ? ` on ${spec.queue}` : ''}`}</td></tr>
        <tr>
          <th>Validated by</th>
          <td id="detail-validated-by">${v.by.length === 0 ? html`<span class="muted">no validation task yet</span>` : v.by.map((id, i) => html`${i > 0 ? ', ' : ''}${taskLink(id)}`)}</td>
        </tr>
      </tbody>
    </table>
    ${v.feedback ? html`<h3>Validator feedback</h3><pre class="mono" id="detail-feedback">${v.feedback}</pre>` : nothing}
    ${spec.prompt ? html`<details><summary>What the validator checks</summary><pre class="mono" id="detail-validator-prompt">${spec.prompt}</pre></details>` : nothing}`;
}

/** A task id that opens that task's detail. */
function taskLink(id: string): TemplateResult {
  return html`<a
    href="#"
    class="mono task-link"
    data-task-link=${id}
    @click=${(e: Event) => {
      e.preventDefault();
      store.selectTask(id);
    }}
    >${id}</a
  >`;
}
