import { plural } from '../../src/core/text';
import { PAGE_SIZES, STATUS_FILTERS, type SortKey, type StatusFilter, type TaskQuery, type TaskRow } from '../../src/shared/dashboardProtocol';
import { formatDuration } from '../../src/shared/format';
import { type TemplateResult, html, nothing } from '../lit';
import { type DashboardState, store } from '../store';
import { formatDateTime } from '../format';
import { duration, lookOf } from '../view';
import { StoreElement, select, valueOf } from './base';
import './detail';
import { statusCell } from './status';

const COLUMNS: [SortKey, string][] = [
  ['id', 'ID'],
  ['status', 'Status'],
  ['queue', 'Queue'],
  ['tool', 'Tool'],
  ['created', 'Created'],
  ['duration', 'Duration'],
  ['priority', 'Priority'],
];

/** Text filters are sent once typing pauses for this long. */
const TYPING_PAUSE_MS = 250;

/** The Tasks tab: filters, a page of tasks (sorted in the page), the pager, and the selected task's detail. */
export class TasksView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.ui, s.init, s.page, s.pageAnswered];
  }

  private typing: ReturnType<typeof setTimeout> | undefined;

  override render(): TemplateResult {
    const { ui, init, page, pageAnswered } = this.state;
    const q = ui.query;
    const changed = () => this.filtersChanged();
    const typed = () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(changed, TYPING_PAUSE_MS);
    };
    return html`<div id="tasks">
      <div class="filters">
        ${select('filter-session', 'Session', [['', 'All sessions'], ...init.sessions.map((s): [string, string] => [s.id, s.name])], q.session ?? '', changed)}
        ${select('filter-queue', 'Queue', [['', 'All queues'], ...init.queues.map((x): [string, string] => [x.id, `${x.session} / ${x.name}${x.active ? '' : ' (ended)'}`])], q.queue ?? '', changed)}
        ${select('filter-status', 'Status', [['', 'Any status'], ...STATUS_FILTERS.map((s): [string, string] => [s, s])], q.status ?? '', changed)}
        <vscode-textfield id="filter-tool" aria-label="Tool" placeholder="tool" @input=${typed}></vscode-textfield>
        <vscode-textfield id="filter-text" aria-label="Text" placeholder="search prompt, summary, error" @input=${typed}></vscode-textfield>
        ${select('page-size', 'Page size', PAGE_SIZES.map((n): [string, string] => [String(n), `${n} per page`]), String(q.limit), changed)}
      </div>
      <div class="table-wrap">
        <table id="task-table">
          <thead>
            <tr>
              ${COLUMNS.slice(0, 4).map(([k, label]) => this.sortHeader(k, label))}
              <th>Task</th>
              ${COLUMNS.slice(4).map(([k, label]) => this.sortHeader(k, label))}
            </tr>
          </thead>
          <tbody id="task-rows">
            ${pageAnswered ? this.rows() : nothing}
          </tbody>
        </table>
      </div>
      <div class="pager">
        <vscode-button id="prev-page" secondary ?disabled=${ui.cursors.length === 0} @click=${() => store.previousPage()}>Previous</vscode-button>
        <span id="page-label" class="muted">${pageAnswered ? `Page ${ui.cursors.length + 1} · ${plural(page.tasks.length, 'task')}` : 'Loading…'}</span>
        <vscode-button id="next-page" secondary ?disabled=${page.next === null} @click=${() => store.nextPage()}>Next</vscode-button>
      </div>
      <sparkq-task-detail></sparkq-task-detail>
    </div>`;
  }

  /** The text filters hold what is typed; they are filled from the saved state once, not on every render. */
  protected override firstUpdated(): void {
    const q = this.state.ui.query;
    const set = (id: string, v: string | undefined) => {
      const el = this.querySelector<HTMLElement & { value: string }>(`#${id}`);
      if (el) el.value = v ?? '';
    };
    set('filter-tool', q.tool);
    set('filter-text', q.text);
  }

  private filtersChanged(): void {
    const val = (id: string) => valueOf(this, id).trim() || undefined;
    const status = val('filter-status');
    const size = Number(valueOf(this, 'page-size'));
    const session = val('filter-session');
    const queue = val('filter-queue');
    const tool = val('filter-tool');
    const text = val('filter-text');
    const query: TaskQuery = {
      limit: PAGE_SIZES.includes(size as (typeof PAGE_SIZES)[number]) ? size : 50,
      ...(session ? { session } : {}),
      ...(queue ? { queue } : {}),
      ...(status && (STATUS_FILTERS as readonly string[]).includes(status) ? { status: status as StatusFilter } : {}),
      ...(tool ? { tool } : {}),
      ...(text ? { text } : {}),
    };
    store.setQuery(query);
  }

  private sortHeader(key: SortKey, label: string): TemplateResult {
    const { sort } = this.state.ui;
    const active = sort.key === key;
    return html`<th data-sort=${key} aria-sort=${active ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'} tabindex="0" @click=${() => store.sortBy(key)}>
      ${label}${active ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}
    </th>`;
  }

  private rows(): TemplateResult | TemplateResult[] {
    const { page, ui, init } = this.state;
    if (page.tasks.length === 0) return html`<tr class="empty"><td colspan="8" class="muted">${init.problem ?? 'No task matches these filters.'}</td></tr>`;
    const now = Date.now();
    const sorted = [...page.tasks].sort((a, b) => {
      const x = sortValue(a, ui.sort.key, now);
      const y = sortValue(b, ui.sort.key, now);
      return (x < y ? -1 : x > y ? 1 : 0) * ui.sort.dir;
    });
    return sorted.map((t) => {
      const d = duration(t, now);
      const choose = () => store.selectTask(t.id);
      return html`<tr data-task-id=${t.id} class=${t.id === ui.selected ? 'selected' : ''} tabindex="0" @click=${choose} @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && choose()}>
        <td class="mono">${t.id}</td>
        ${statusCell(t)}
        <td>${t.queue}</td>
        <td>${t.tool}</td>
        <td class="label">${taskLabel(t)}</td>
        <td title=${t.createdAt}>${formatDateTime(t.createdAt)}</td>
        ${t.status === 'running'
          ? html`<td class="num elapsed" data-started=${t.startedAt ?? t.createdAt}><sparkq-elapsed .started=${t.startedAt ?? t.createdAt}></sparkq-elapsed></td>`
          : html`<td class="num">${d === null ? '' : formatDuration(d)}</td>`}
        <td class="num">${t.priority}</td>
      </tr>`;
    });
  }
}
customElements.define('sparkq-tasks', TasksView);

function taskLabel(t: TaskRow): string {
  const p = t.payload;
  if (p !== null && typeof p === 'object' && !Array.isArray(p) && typeof p['script'] === 'string') {
    const args = Array.isArray(p['args']) ? p['args'].filter((a): a is string => typeof a === 'string') : [];
    return [p['script'], ...args].join(' ');
  }
  const line = (t.prompt ?? '').split(/\r?\n/).find((l) => l.trim() !== '')?.trim();
  return line && line.length > 0 ? (line.length > 100 ? `${line.slice(0, 99)}…` : line) : t.tool;
}

function sortValue(t: TaskRow, key: SortKey, now: number): string | number {
  switch (key) {
    case 'id':
      return t.id;
    case 'status':
      return lookOf(t);
    case 'queue':
      return t.queue;
    case 'tool':
      return t.tool;
    case 'created':
      return t.createdAt;
    case 'duration':
      return duration(t, now) ?? -1;
    case 'priority':
      return t.priority;
  }
}
