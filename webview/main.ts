import type { ReportRow, Task, TaskDetail } from '../src/core/model';
import {
  type DashboardInit,
  type DashboardUiState,
  type EnqueueField,
  type HostMessage,
  type Overview,
  PAGE_SIZES,
  STATUS_FILTERS,
  type SortKey,
  type OverviewQueue,
  type TaskPageView,
  type TaskRow,
  type UsageReport,
  afterProblem,
  stripAnsi,
} from '../src/shared/dashboardProtocol';
import { formatDuration, throughputBasisText } from '../src/shared/format';
import { TABS, firstPage, requestPage, ui } from './boot';
import { RequestError, onHostMessage, request, saveUiState } from './bridge';
import { definitions } from './components.js';
import { append, byId, h, replaceChildren, svg } from './dom';
import { formatCount, formatDateTime } from './format';
import { plural } from '../src/core/text';

/**
 * The SparkQ dashboard: Overview, Tasks (with the selected task's detail) and the Enqueue form. It keeps only UI
 * state (tab, filters, page cursors, sort, selection) with setState; every number and text comes from the host.
 */

type Valued = HTMLElement & { value: string; disabled: boolean; invalid?: boolean };

let init: DashboardInit = { readOnly: true, problem: null, tools: [], queues: [], sessions: [] };
let page: TaskPageView = { tasks: [], next: null };
let detail: TaskDetail | null = null;
let pageRequest = 0;
/** Why the last page of tasks could not be listed, or null. */
let pageError: string | null = null;

function persist(): void {
  saveUiState(ui);
}

// ---- layout ---------------------------------------------------------------------------------------------------

function select(id: string, label: string): Valued {
  const el = h('vscode-single-select', { id, 'aria-label': label }) as Valued;
  return el;
}
function textfield(id: string, label: string, placeholder = ''): Valued {
  return h('vscode-textfield', { id, 'aria-label': label, placeholder }) as Valued;
}
function button(id: string | undefined, text: string, secondary = false): Valued {
  return h('vscode-button', { id, secondary }, text) as Valued;
}
function setOptions(sel: Valued, options: [string, string][], value: string): void {
  const chosen = options.some(([v]) => v === value) ? value : (options[0]?.[0] ?? '');
  replaceChildren(sel, ...options.map(([v, label]) => h('vscode-option', { value: v, selected: v === chosen }, label)));
  sel.value = chosen;
  // The select reads its options on slotchange, after this task: choose again once it has them.
  setTimeout(() => {
    if (sel.value !== chosen) sel.value = chosen;
  }, 0);
}
function field(label: string, control: HTMLElement, name?: EnqueueField, hint?: HTMLElement): HTMLElement {
  return h('div', { class: 'field' }, h('label', {}, label), control, hint, name ? h('div', { class: 'field-error', 'data-for': name, role: 'alert' }) : null);
}

const app = byId('app');
const banner = h('div', { id: 'banner', class: 'banner', hidden: true });
const readOnlyBadge = h('vscode-badge', { id: 'read-only', hidden: true }, 'Restricted Mode: read-only');
const tabs = h('vscode-tabs', { id: 'tabs', 'selected-index': String(TABS.indexOf(ui.tab)) });

// Overview: the counts, throughput and queues (`overview`), then usage and cost from the queue's report (`usage`),
// each drawn when its answer comes.
const overviewMain = h('div', { id: 'overview-main' });
const queueMessage = h('div', { id: 'queue-message', role: 'status' });
const usagePanel = h('div', { id: 'usage-report' });
const overviewPanel = h('div', { id: 'overview' }, overviewMain, queueMessage, usagePanel);

// Tasks
const fSession = select('filter-session', 'Session');
const fQueue = select('filter-queue', 'Queue');
const fStatus = select('filter-status', 'Status');
const fTool = textfield('filter-tool', 'Tool', 'tool');
const fText = textfield('filter-text', 'Text', 'search prompt, summary, error');
const fSize = select('page-size', 'Page size');
const prevBtn = button('prev-page', 'Previous', true);
const nextBtn = button('next-page', 'Next', true);
const pageLabel = h('span', { id: 'page-label', class: 'muted' });
const tableHead = h('tr', {});
const tableBody = h('tbody', { id: 'task-rows' });
const detailPane = h('section', { id: 'detail', class: 'detail', hidden: true });
const tasksPanel = h(
  'div',
  { id: 'tasks' },
  h('div', { class: 'filters' }, fSession, fQueue, fStatus, fTool, fText, fSize),
  h('div', { class: 'table-wrap' }, h('table', { id: 'task-table' }, h('thead', {}, tableHead), tableBody)),
  h('div', { class: 'pager' }, prevBtn, pageLabel, nextBtn),
  detailPane,
);

// Enqueue
const eQueue = select('enq-queue', 'Queue');
const eTool = select('enq-tool', 'Tool');
const eScript = textfield('enq-script', 'Script', 'start typing a script name');
const eSuggest = h('ul', { id: 'enq-suggestions', class: 'suggestions', role: 'listbox', hidden: true });
const eArgs = textfield('enq-args', 'Arguments', 'arguments (shell words)');
const ePrompt = h('vscode-textarea', { id: 'enq-prompt', 'aria-label': 'Prompt', rows: '6', placeholder: 'What should the task do?' }) as Valued;
const eTimeout = textfield('enq-timeout', 'Timeout (seconds)');
const ePriority = textfield('enq-priority', 'Priority', '0');
const eAfter = textfield('enq-after', 'After (task ids)', 'tsk_… tsk_… (optional)');
const eSubmit = button('enq-submit', 'Enqueue');
const eMessage = h('div', { id: 'enq-message', role: 'status' });
const scriptFields = h('div', { id: 'script-fields' }, field('Script', h('div', { class: 'autocomplete' }, eScript, eSuggest), 'script'), field('Arguments', eArgs, 'args'));
const promptField = field('Prompt', ePrompt, 'prompt');
const enqueuePanel = h(
  'form',
  { id: 'enqueue', class: 'enqueue' },
  field('Queue', eQueue, 'queue'),
  field('Tool', eTool, 'tool'),
  scriptFields,
  promptField,
  h('div', { class: 'row' }, field('Timeout override (s)', eTimeout, 'timeoutSeconds'), field('Priority', ePriority, 'priority')),
  field('After', eAfter, 'after', h('div', { class: 'muted hint' }, 'Runs only once these tasks have succeeded: task ids, comma or space separated.')),
  h('div', { class: 'row' }, eSubmit),
  eMessage,
);

// `initial` marks the panel to show while the components are not defined yet (dashboard.css).
const tabPanel = (tab: DashboardUiState['tab'], panel: HTMLElement) => h('vscode-tab-panel', { class: tab === ui.tab ? 'initial' : undefined }, panel);
append(
  tabs,
  h('vscode-tab-header', { slot: 'header', 'data-tab': 'overview' }, 'Overview'),
  tabPanel('overview', overviewPanel),
  h('vscode-tab-header', { slot: 'header', 'data-tab': 'tasks' }, 'Tasks'),
  tabPanel('tasks', tasksPanel),
  h('vscode-tab-header', { slot: 'header', 'data-tab': 'enqueue' }, 'Enqueue'),
  tabPanel('enqueue', enqueuePanel),
);
replaceChildren(app, h('header', { class: 'top' }, h('h1', {}, 'SparkQ'), readOnlyBadge), banner, tabs);
app.dataset['state'] = 'waiting';

tabs.addEventListener('vsc-tabs-select', (e) => {
  const i = (e as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex;
  ui.tab = TABS[i] ?? 'overview';
  persist();
  if (ui.tab === 'overview') void loadOverview();
});

// ---- overview -------------------------------------------------------------------------------------------------

const COUNT_KEYS = ['queued', 'running', 'stale', 'succeeded', 'failed'] as const;
// Without Intl, whose first use costs the first page 20–40 ms (see ./format).
const fmtInt = formatCount;
const formatDate = formatDateTime;

/** Asks for the overview and the usage report together; each is drawn when it comes (the report reads every task). */
function loadOverview(): Promise<void> {
  const overview = request('overview', {}).then(renderOverview, (e: unknown) =>
    replaceChildren(overviewMain, h('p', { class: 'error' }, `The overview cannot be shown: ${errorText(e)}`)),
  );
  return Promise.all([overview, loadUsage()]).then(() => undefined);
}

/**
 * The usage report sums every task (live and archived), far more work for the owner than the overview: while changes
 * keep coming it is asked for at most every USAGE_EVERY_MS, the last change always followed by one more.
 */
const USAGE_EVERY_MS = 2_000;
let usageAskedAt = -Infinity;
let usageLater: ReturnType<typeof setTimeout> | null = null;
function loadUsage(): Promise<void> {
  const wait = usageAskedAt + USAGE_EVERY_MS - Date.now();
  if (wait > 0) {
    usageLater ??= setTimeout(() => {
      usageLater = null;
      if (ui.tab === 'overview') void loadUsage();
    }, wait);
    return Promise.resolve();
  }
  usageAskedAt = Date.now();
  return request('usage', {}).then(renderUsage, (e: unknown) => replaceChildren(usagePanel, h('p', { class: 'error' }, `Usage and cost cannot be shown: ${errorText(e)}`)));
}

function renderOverview(o: Overview): void {
  const cards = h(
    'div',
    { class: 'cards', id: 'counts' },
    ...COUNT_KEYS.map((k) => h('div', { class: `card status-${k}`, 'data-count': k }, h('div', { class: 'num' }, fmtInt(o.counts[k])), h('div', { class: 'muted' }, k))),
  );
  const queues = h(
    'table',
    { id: 'queue-counts' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Queue'), h('th', {}, 'Session'), h('th', {}, 'State'), ...COUNT_KEYS.map((k) => h('th', { class: 'num' }, k)), init.readOnly ? null : h('th', {}, 'Actions'))),
    h('tbody', {}, ...o.queues.map(queueRow)),
  );
  replaceChildren(
    overviewMain,
    cards,
    h('h2', {}, 'Throughput'),
    throughputChart(o.throughput),
    h('p', { class: 'muted', id: 'throughput-basis' }, throughputBasisText(o.scanned, o.truncated)),
    h('h2', {}, 'Queues'),
    o.queues.length > 0 ? queues : h('p', { class: 'muted' }, 'No active queues.'),
  );
}

function queueRow(q: OverviewQueue): HTMLElement {
  // Not paused is "active", not "running": whether anything runs on it is in the running column.
  const state = q.paused ? (q.pausedUntil ? `paused until ${formatDate(q.pausedUntil)}` : 'paused') : 'active';
  const stateCell = h('td', { class: q.paused ? 'queue-state paused' : 'queue-state', title: q.pauseReason ?? undefined }, state, q.paused && q.pauseReason ? h('span', { class: 'muted' }, ` (${q.pauseReason})`) : null);
  const actions = init.readOnly
    ? null
    : h(
        'td',
        { class: 'queue-actions' },
        q.paused
          ? queueAction('resume', 'Resume', () => request('resumeQueue', { queue: q.id }))
          : queueAction('pause', 'Pause', () => request('pauseQueue', { queue: q.id })),
        q.counts.failed > 0 ? queueAction('requeue-failed', 'Requeue failed', () => request('requeueFailed', { queue: q.id })) : null,
      );
  return h('tr', { 'data-queue': q.name, 'data-queue-id': q.id, 'data-paused': q.paused ? 'true' : 'false' }, h('td', {}, q.name), h('td', {}, q.session), stateCell, ...COUNT_KEYS.map((k) => h('td', { class: 'num' }, fmtInt(q.counts[k]))), actions);
}

/** A queue's button: runs the request, says how it went under the table, and redraws the overview. */
function queueAction(action: string, label: string, run: () => Promise<unknown>): HTMLElement {
  const b = button(undefined, label, true);
  b.dataset['action'] = action;
  b.addEventListener('click', () => {
    if (b.disabled) return;
    b.disabled = true;
    queueMessage.className = '';
    queueMessage.textContent = `${label}…`;
    run().then(
      (r) => {
        const n = (r as { requeued?: number }).requeued;
        queueMessage.textContent = n === undefined ? `${label}: done.` : `${label}: ${plural(n, 'task')} requeued.`;
        void loadOverview();
      },
      (e: unknown) => {
        queueMessage.className = 'error';
        queueMessage.textContent = `${label} failed: ${errorText(e)}`;
        b.disabled = false;
      },
    );
  });
  return b;
}

const fmtCost = (usd: number) => `$${usd.toFixed(4)}`;

function renderUsage(r: UsageReport): void {
  const hasUsage = r.total.inputTokens + r.total.outputTokens > 0 || r.total.costUsd > 0;
  if (!hasUsage) {
    replaceChildren(usagePanel, h('h2', {}, 'Usage and cost'), h('p', { class: 'muted', id: 'usage-empty' }, 'No task reported usage yet.'));
    return;
  }
  const totals = `${fmtInt(r.total.inputTokens)} input (${fmtInt(r.total.cachedInputTokens)} cached) · ${fmtInt(r.total.outputTokens)} output tokens · ${fmtCost(r.total.costUsd)}`;
  replaceChildren(
    usagePanel,
    h('h2', {}, 'Usage and cost'),
    h('p', { id: 'usage-total' }, totals),
    usageChart(r.byDay),
    h('div', { class: 'usage-tables' }, h('div', {}, h('h3', {}, 'By tool'), usageTable('usage-by-tool', 'Tool', r.byTool)), h('div', {}, h('h3', {}, 'By model'), usageTable('usage-by-model', 'Model', r.byModel))),
  );
}

function usageTable(id: string, keyLabel: string, rows: ReportRow[]): HTMLElement {
  const cols: [string, (x: ReportRow) => string][] = [
    ['Tasks', (x) => fmtInt(x.tasks)],
    ['Input', (x) => fmtInt(x.inputTokens)],
    ['Cached', (x) => fmtInt(x.cachedInputTokens)],
    ['Output', (x) => fmtInt(x.outputTokens)],
    ['Reasoning', (x) => fmtInt(x.reasoningTokens)],
    ['Cost', (x) => fmtCost(x.costUsd)],
  ];
  return h(
    'table',
    { id, class: 'usage' },
    h('thead', {}, h('tr', {}, h('th', {}, keyLabel), ...cols.map(([c]) => h('th', { class: 'num' }, c)))),
    h('tbody', {}, ...rows.map((x) => h('tr', { 'data-key': x.key }, h('td', {}, x.key), ...cols.map(([, f]) => h('td', { class: 'num' }, f(x)))))),
  );
}

const USAGE_DAYS = 30;
const DAY_MS = 86_400_000;

/** Cost per day (tokens when no task reported a cost) over the last USAGE_DAYS days that have any, drawn like the throughput chart. */
function usageChart(byDay: ReportRow[]): HTMLElement {
  const days = byDay.filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d.key));
  const wrap = h('div', { id: 'usage-chart' });
  if (days.length === 0) return wrap;
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
  const show = (v: number) => (byCost ? fmtCost(v) : `${fmtInt(v)} tokens`);
  const bars = series.map(({ key, v }, i) => {
    const bh = (v / max) * (H - 14);
    return svg('rect', { x: i * bw + 1, y: H - bh, width: bw - 2, height: bh, class: 'bar-cost', 'data-day': key }, svg('title', {}, `${key}: ${show(v)}`));
  });
  const label = byCost ? 'Cost per day' : 'Tokens per day';
  wrap.appendChild(svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label }, ...bars, svg('text', { x: 2, y: 10, class: 'axis' }, `max ${show(max)} per day`)));
  append(wrap, h('div', { class: 'muted legend' }, h('span', { class: 'key cost' }), `${label} (UTC), ${series[0]!.key} to ${series[series.length - 1]!.key}`));
  return wrap;
}

function throughputChart(t: Overview['throughput']): HTMLElement {
  const n = t.succeeded.length;
  const W = 600;
  const H = 120;
  const bw = W / n;
  const max = Math.max(1, ...t.succeeded.map((s, i) => s + (t.failed[i] ?? 0)));
  const bars: SVGElement[] = [];
  for (let i = 0; i < n; i++) {
    const s = t.succeeded[i] ?? 0;
    const f = t.failed[i] ?? 0;
    const hs = (s / max) * (H - 14);
    const hf = (f / max) * (H - 14);
    const x = i * bw + 1;
    const when = formatDate(t.start + i * t.bucketMs);
    bars.push(svg('rect', { x, y: H - hs, width: bw - 2, height: hs, class: 'bar-ok' }, svg('title', {}, `${when}: ${s} succeeded, ${f} failed`)));
    if (f > 0) bars.push(svg('rect', { x, y: H - hs - hf, width: bw - 2, height: hf, class: 'bar-fail' }, svg('title', {}, `${when}: ${f} failed`)));
  }
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'Tasks finished over time' }, ...bars, svg('text', { x: 2, y: 10, class: 'axis' }, `max ${max} per ${describeBucket(t.bucketMs)}`));
  const wrap = h('div', { id: 'throughput' });
  wrap.appendChild(chart);
  append(wrap, h('div', { class: 'muted legend' }, h('span', { class: 'key ok' }), 'succeeded ', h('span', { class: 'key fail' }), 'failed'));
  return wrap;
}

function describeBucket(ms: number): string {
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  if (ms < 86_400_000) return `${ms / 3_600_000} h`;
  return `${ms / 86_400_000} d`;
}

// ---- tasks ----------------------------------------------------------------------------------------------------

const COLUMNS: [SortKey, string][] = [
  ['id', 'ID'],
  ['status', 'Status'],
  ['queue', 'Queue'],
  ['tool', 'Tool'],
  ['created', 'Created'],
  ['duration', 'Duration'],
  ['priority', 'Priority'],
];

function renderHead(): void {
  replaceChildren(
    tableHead,
    ...COLUMNS.slice(0, 4).map(([k, label]) => sortHeader(k, label)),
    h('th', {}, 'Task'),
    ...COLUMNS.slice(4).map(([k, label]) => sortHeader(k, label)),
  );
}
function sortHeader(key: SortKey, label: string): HTMLElement {
  const active = ui.sort.key === key;
  const th = h('th', { 'data-sort': key, 'aria-sort': active ? (ui.sort.dir === 1 ? 'ascending' : 'descending') : 'none', tabindex: '0' }, label, active ? (ui.sort.dir === 1 ? ' ▲' : ' ▼') : '');
  th.addEventListener('click', () => {
    ui.sort = { key, dir: active ? (ui.sort.dir === 1 ? -1 : 1) : 1 };
    persist();
    renderHead();
    renderRows();
  });
  return th;
}

function lookOf(t: Pick<Task, 'status' | 'stale'>): string {
  return t.status === 'running' && t.stale ? 'stale' : t.status;
}

function taskLabel(t: TaskRow): string {
  const p = t.payload;
  if (p !== null && typeof p === 'object' && !Array.isArray(p) && typeof p['script'] === 'string') {
    const args = Array.isArray(p['args']) ? p['args'].filter((a): a is string => typeof a === 'string') : [];
    return [p['script'], ...args].join(' ');
  }
  const line = (t.prompt ?? '').split(/\r?\n/).find((l) => l.trim() !== '')?.trim();
  return line && line.length > 0 ? (line.length > 100 ? `${line.slice(0, 99)}…` : line) : t.tool;
}

function duration(t: Pick<Task, 'status' | 'createdAt' | 'startedAt' | 'finishedAt'>, now: number): number | null {
  const started = t.startedAt ? Date.parse(t.startedAt) : null;
  if (t.status === 'running') return now - (started ?? Date.parse(t.createdAt));
  if (t.finishedAt) return Date.parse(t.finishedAt) - (started ?? Date.parse(t.createdAt));
  return null;
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

function statusCell(t: TaskRow): HTMLElement {
  const look = lookOf(t);
  return h(
    'td',
    {},
    h('span', { class: `status status-${t.status}` }, t.status),
    t.stale ? h('vscode-badge', { class: 'stale-badge', variant: 'counter', title: 'running past its timeout' }, 'stale') : null,
    look === 'stale' ? '' : null,
    ...dependencyBadges(t),
  );
}

/** Why a queued task is not claimable yet: failed tasks it waits on, tasks not done yet, a retry delay. */
function dependencyBadges(t: Pick<TaskRow, 'status' | 'waitingOn' | 'blockedBy' | 'notBefore'>): (HTMLElement | null)[] {
  if (t.status !== 'queued') return [];
  const waiting = t.waitingOn.filter((id) => !t.blockedBy.includes(id));
  return [
    t.blockedBy.length > 0
      ? h(
          'span',
          { class: 'blocked', title: `Blocked by ${t.blockedBy.length === 1 ? 'a failed task' : 'failed tasks'}: ${t.blockedBy.join(', ')}. Requeue ${t.blockedBy.length === 1 ? 'it' : 'them'} to release this task.` },
          h('vscode-badge', { class: 'blocked-badge' }, 'blocked'),
          h('span', { class: 'blocked-ids mono' }, ` ${t.blockedBy.slice(0, 3).join(', ')}${t.blockedBy.length > 3 ? ` +${t.blockedBy.length - 3}` : ''}`),
        )
      : null,
    waiting.length > 0 ? h('vscode-badge', { class: 'waiting-badge', title: `Waiting on ${waiting.join(', ')}` }, `waiting ${waiting.length}`) : null,
    t.notBefore ? h('span', { class: 'retry-at muted', title: t.notBefore }, ` retry at ${formatDate(t.notBefore)}`) : null,
  ];
}

function renderRows(): void {
  const now = Date.now();
  const rows = [...page.tasks].sort((a, b) => {
    const x = sortValue(a, ui.sort.key, now);
    const y = sortValue(b, ui.sort.key, now);
    return (x < y ? -1 : x > y ? 1 : 0) * ui.sort.dir;
  });
  const trs = rows.map((t) => {
    const d = duration(t, now);
    const durationCell =
      t.status === 'running'
        ? h('td', { class: 'num elapsed', 'data-started': t.startedAt ?? t.createdAt }, d === null ? '' : formatDuration(d))
        : h('td', { class: 'num' }, d === null ? '' : formatDuration(d));
    const tr = h(
      'tr',
      { 'data-task-id': t.id, class: t.id === ui.selected ? 'selected' : undefined, tabindex: '0' },
      h('td', { class: 'mono' }, t.id),
      statusCell(t),
      h('td', {}, t.queue),
      h('td', {}, t.tool),
      h('td', { class: 'label' }, taskLabel(t)),
      h('td', { title: t.createdAt }, formatDate(t.createdAt)),
      durationCell,
      h('td', { class: 'num' }, t.priority),
    );
    tr.addEventListener('click', () => selectTask(t.id));
    tr.addEventListener('keydown', (e) => e.key === 'Enter' && selectTask(t.id));
    return tr;
  });
  if (trs.length === 0) trs.push(h('tr', { class: 'empty' }, h('td', { colspan: '8', class: 'muted' }, init.problem ?? 'No task matches these filters.')));
  replaceChildren(tableBody, ...trs);
  pageLabel.textContent = `Page ${ui.cursors.length + 1} · ${plural(page.tasks.length, 'task')}`;
  prevBtn.disabled = ui.cursors.length === 0;
  nextBtn.disabled = page.next === null;
}

/** Elapsed time of running tasks ticks here, in the webview: nothing is asked of the host for it. */
setInterval(() => {
  const now = Date.now();
  for (const cell of document.querySelectorAll<HTMLElement>('td.elapsed')) {
    const started = Date.parse(cell.dataset['started'] ?? '');
    if (Number.isFinite(started)) cell.textContent = formatDuration(now - started);
  }
  const el = document.getElementById('detail-elapsed');
  if (el?.dataset['started']) el.textContent = formatDuration(now - Date.parse(el.dataset['started']));
}, 1000);

/** Shows the page `ui` says (asked now, or the one already asked for); a later call wins over an earlier one. */
async function loadPage(asked: Promise<TaskPageView> = requestPage()): Promise<void> {
  const n = ++pageRequest;
  try {
    const result = await asked;
    if (n !== pageRequest) return;
    page = result;
    pageError = null;
    renderRows();
  } catch (e) {
    if (n !== pageRequest) return;
    page = { tasks: [], next: null };
    pageError = `The tasks cannot be listed: ${errorText(e)}`;
    renderRows();
  }
  showBanner(init.problem ?? pageError);
  // Answered either way: the page is ready once the pickers are drawn too.
  void Promise.all([componentsReady, initShown]).then(() => (app.dataset['state'] = 'ready'));
}

function filtersChanged(): void {
  const val = (el: Valued) => (el.value.trim() === '' ? undefined : el.value.trim());
  const status = val(fStatus);
  const size = Number(fSize.value);
  ui.query = {
    limit: PAGE_SIZES.includes(size as (typeof PAGE_SIZES)[number]) ? size : 50,
    ...(val(fSession) ? { session: val(fSession)! } : {}),
    ...(val(fQueue) ? { queue: val(fQueue)! } : {}),
    ...(status && (STATUS_FILTERS as readonly string[]).includes(status) ? { status: status as (typeof STATUS_FILTERS)[number] } : {}),
    ...(val(fTool) ? { tool: val(fTool)! } : {}),
    ...(val(fText) ? { text: val(fText)! } : {}),
  };
  ui.cursors = [];
  persist();
  void loadPage();
}

let textTimer: ReturnType<typeof setTimeout> | undefined;
for (const el of [fSession, fQueue, fStatus, fSize]) el.addEventListener('change', filtersChanged);
for (const el of [fTool, fText]) {
  el.addEventListener('input', () => {
    clearTimeout(textTimer);
    textTimer = setTimeout(filtersChanged, 250);
  });
}
nextBtn.addEventListener('click', () => {
  if (nextBtn.disabled || page.next === null) return;
  ui.cursors.push(page.next);
  persist();
  void loadPage();
});
prevBtn.addEventListener('click', () => {
  if (prevBtn.disabled) return;
  ui.cursors.pop();
  persist();
  void loadPage();
});

function renderFilters(): void {
  const q = ui.query;
  setOptions(fSession, [['', 'All sessions'], ...init.sessions.map((s): [string, string] => [s.id, s.name])], q.session ?? '');
  setOptions(fQueue, [['', 'All queues'], ...init.queues.map((x): [string, string] => [x.id, `${x.session} / ${x.name}${x.active ? '' : ' (ended)'}`])], q.queue ?? '');
  setOptions(fStatus, [['', 'Any status'], ...STATUS_FILTERS.map((s): [string, string] => [s, s])], q.status ?? '');
  setOptions(fSize, PAGE_SIZES.map((n): [string, string] => [String(n), `${n} per page`]), String(q.limit));
  fTool.value = q.tool ?? '';
  fText.value = q.text ?? '';
}

// ---- task detail ----------------------------------------------------------------------------------------------

function selectTask(id: string): void {
  ui.selected = id;
  persist();
  for (const tr of tableBody.querySelectorAll('tr')) tr.classList.toggle('selected', tr.dataset['taskId'] === id);
  void loadDetail();
}

async function loadDetail(): Promise<void> {
  const id = ui.selected;
  if (!id) return;
  try {
    const t = await request('getTask', { task: id });
    if (ui.selected !== id) return;
    detail = t;
    renderDetail(t);
  } catch (e) {
    if (ui.selected !== id) return;
    detailPane.hidden = false;
    replaceChildren(detailPane, h('p', { class: 'error' }, `Task ${id} cannot be shown: ${errorText(e)}`));
  }
}

function pre(text: string, id?: string): HTMLElement {
  return h('pre', { class: 'mono', id }, text);
}

function renderDetail(t: TaskDetail): void {
  const now = Date.now();
  const d = duration(t, now);
  const rows: [string, Node | string][] = [
    ['Status', statusCell(t)],
    ['Session / queue', `${t.session} / ${t.queue}`],
    ['Tool', `${t.tool} (${t.taskClass}, timeout ${t.timeoutSeconds} s)`],
    ['Priority', String(t.priority)],
    ['Attempt', String(t.attempt)],
    ['Worker', t.worker ?? '—'],
    ['Created', t.createdAt],
    ['Started', t.startedAt ?? '—'],
    ['Finished', t.finishedAt ?? '—'],
    ['Duration', t.status === 'running' ? h('span', { id: 'detail-elapsed', 'data-started': t.startedAt ?? t.createdAt }, d === null ? '' : formatDuration(d)) : d === null ? '—' : formatDuration(d)],
    ['Waited', t.timings.waitMs === null ? '—' : formatDuration(t.timings.waitMs)],
  ];
  if (t.stale) rows.push(['Stale since', t.staleAt ?? '']);
  if (t.retryOf) rows.push(['Retry of', t.retryOf]);
  if (t.after.length > 0) {
    const state = (id: string) => (t.blockedBy.includes(id) ? 'failed' : t.waitingOn.includes(id) ? 'waiting' : 'done');
    rows.push(['Waits on', h('ul', { id: 'detail-after', class: 'deps' }, ...t.after.map((id) => h('li', { 'data-state': state(id) }, taskLink(id), h('span', { class: `dep-${state(id)}` }, ` ${state(id)}`))))]);
  }
  if (t.blockedBy.length > 0) rows.push(['Blocked by', h('span', { id: 'detail-blocked' }, ...t.blockedBy.flatMap((id, i) => [i > 0 ? ', ' : '', taskLink(id)]))]);
  if (t.notBefore) rows.push(['Retry after', h('span', { id: 'detail-retry', title: t.notBefore }, formatDate(t.notBefore))]);
  if (t.plan) rows.push(['Plan', h('span', { id: 'detail-plan' }, t.planKey ? `${t.plan} / ${t.planKey}` : t.plan)]);
  if (t.usage) {
    const u = t.usage;
    rows.push(['Usage', [u.model, u.inputTokens !== undefined ? `${fmtInt(u.inputTokens)} in` : '', u.outputTokens !== undefined ? `${fmtInt(u.outputTokens)} out` : ''].filter(Boolean).join(' · ') || '—']);
    if (u.costUsd !== undefined) rows.push(['Cost', `$${u.costUsd.toFixed(4)}`]);
  }
  const table = h('table', { class: 'kv' }, h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), typeof v === 'string' ? h('td', {}, v) : h('td', {}, v)))));
  const sections: HTMLElement[] = [];
  const section = (title: string, body: HTMLElement) => sections.push(h('h3', {}, title), body);
  if (t.prompt) section('Prompt', pre(t.prompt, 'detail-prompt'));
  if (t.payload !== null) section('Payload', pre(JSON.stringify(t.payload, null, 2), 'detail-payload'));
  if (t.instructions) section('Queue instructions', pre(t.instructions));
  if (t.result) {
    if (t.result.summary !== null) section('Result summary', pre(t.result.summary, 'detail-summary'));
    if (t.result.data !== null) section(t.result.summary === null ? 'Partial results' : 'Result data', pre(JSON.stringify(t.result.data, null, 2), 'detail-data'));
  }
  if (t.error) section('Error', pre(t.error, 'detail-error'));
  if (t.stdout) section('Output', pre(stripAnsi(t.stdout), 'detail-stdout'));
  if (t.stderr) section('Errors output', pre(stripAnsi(t.stderr), 'detail-stderr'));
  if (t.attempts.length > 0) {
    section(
      'Attempts',
      h(
        'table',
        { id: 'detail-attempts' },
        h('thead', {}, h('tr', {}, ...['#', 'Worker', 'Started', 'Ended', 'Outcome', 'Error'].map((c) => h('th', {}, c)))),
        h('tbody', {}, ...t.attempts.map((a) => h('tr', {}, h('td', {}, a.n), h('td', {}, a.worker ?? ''), h('td', {}, a.startedAt), h('td', {}, a.endedAt ?? ''), h('td', {}, a.outcome), h('td', {}, a.error ?? '')))),
      ),
    );
  }
  detailPane.hidden = false;
  replaceChildren(detailPane, h('h2', {}, `Task ${t.id}`), detailActions(t), table, ...sections);
}

/** A task id that opens that task's detail. */
function taskLink(id: string): HTMLElement {
  const a = h('a', { href: '#', class: 'mono task-link', 'data-task-link': id }, id);
  a.addEventListener('click', (e) => {
    e.preventDefault();
    selectTask(id);
  });
  return a;
}

function detailActions(t: TaskDetail): HTMLElement {
  const message = h('div', { id: 'action-message', role: 'status' });
  const bar = h('div', { class: 'actions' });
  const ro = init.readOnly;
  const act = (id: string, label: string, run: () => Promise<unknown>, enabled: boolean, secondary = true) => {
    const b = button(id, label, secondary);
    b.disabled = !enabled;
    b.addEventListener('click', () => {
      if (b.disabled) return;
      b.disabled = true;
      message.className = '';
      message.textContent = `${label}…`;
      run().then(
        () => {
          message.textContent = `${label}: done.`;
          b.disabled = false;
        },
        (e: unknown) => {
          message.className = 'error';
          message.textContent = `${label} failed: ${errorText(e)}`;
          b.disabled = false;
        },
      );
    });
    bar.appendChild(b);
  };
  const reason = textfield('action-text', 'Summary or error', t.status === 'running' ? 'summary (complete) or error (fail)' : '');
  act('act-requeue', 'Requeue', () => request('taskAction', { task: t.id, action: 'requeue' }), !ro && t.status === 'failed');
  if (t.status === 'running') {
    reason.disabled = ro;
    bar.appendChild(reason);
  }
  act('act-complete', 'Complete', () => request('taskAction', { task: t.id, action: 'complete', text: reason.value }), !ro && t.status === 'running');
  act('act-fail', 'Fail', () => request('taskAction', { task: t.id, action: 'fail', text: reason.value }), !ro && t.status === 'running');
  act('act-log', 'Open full log', () => request('taskAction', { task: t.id, action: 'openLog' }), true);
  act('act-worker', 'Start worker', () => request('startWorker', { queue: t.queueId }), !ro);
  return h('div', {}, bar, message);
}

// ---- enqueue --------------------------------------------------------------------------------------------------

function renderEnqueueChoices(): void {
  const active = init.queues.filter((q) => q.active);
  setOptions(eQueue, active.map((q): [string, string] => [q.id, `${q.session} / ${q.name}`]), eQueue.value);
  setOptions(eTool, init.tools.map((t): [string, string] => [t.name, `${t.name} (${t.kind})`]), eTool.value);
  toolChanged();
  const ro = init.readOnly;
  for (const el of [eQueue, eTool, eScript, eArgs, ePrompt, eTimeout, ePriority, eAfter, eSubmit]) el.disabled = ro;
  if (ro) setMessage('Restricted Mode: the dashboard is read-only. Trust this workspace to enqueue tasks.', 'error');
}

function toolChanged(): void {
  const tool = init.tools.find((t) => t.name === eTool.value);
  scriptFields.hidden = !tool?.script;
  promptField.hidden = !!tool?.script;
  eTimeout.setAttribute('placeholder', tool ? `default ${tool.timeoutSeconds}` : '');
}
eTool.addEventListener('change', toolChanged);

let scriptTimer: ReturnType<typeof setTimeout> | undefined;
eScript.addEventListener('input', () => {
  clearTimeout(scriptTimer);
  scriptTimer = setTimeout(() => void suggestScripts(eScript.value), 150);
});
eScript.addEventListener('focus', () => void suggestScripts(eScript.value));
async function suggestScripts(query: string): Promise<void> {
  try {
    const scripts = await request('scripts', { query });
    replaceChildren(
      eSuggest,
      ...scripts.map((s) => {
        const li = h('li', { role: 'option', 'data-script': s.name }, h('span', {}, s.name), h('span', { class: 'muted' }, ` ${s.description}`));
        li.addEventListener('mousedown', (e) => {
          e.preventDefault();
          eScript.value = s.name;
          if (s.inputs) eArgs.setAttribute('placeholder', s.inputs);
          eSuggest.hidden = true;
        });
        return li;
      }),
    );
    eSuggest.hidden = scripts.length === 0;
  } catch {
    eSuggest.hidden = true;
  }
}
eScript.addEventListener('blur', () => setTimeout(() => (eSuggest.hidden = true), 150));

function setMessage(text: string, kind: 'error' | 'ok' | '' = ''): void {
  eMessage.textContent = text;
  eMessage.className = kind;
}

function clearFieldErrors(): void {
  for (const el of enqueuePanel.querySelectorAll<HTMLElement>('.field-error')) el.textContent = '';
  for (const el of [eQueue, eTool, eScript, eArgs, ePrompt, eTimeout, ePriority, eAfter]) el.invalid = false;
}

/** Checks the After field as it is typed: each word must be a task id. Whether the tasks exist, the owner says. */
function checkAfter(): boolean {
  const problem = afterProblem(eAfter.value);
  const slot = enqueuePanel.querySelector<HTMLElement>('.field-error[data-for="after"]');
  if (slot) slot.textContent = problem ?? '';
  eAfter.invalid = problem !== null;
  return problem === null;
}
let afterTimer: ReturnType<typeof setTimeout> | undefined;
eAfter.addEventListener('input', () => {
  clearTimeout(afterTimer);
  afterTimer = setTimeout(checkAfter, 150);
});
eAfter.addEventListener('change', checkAfter);

const FIELD_CONTROLS: Record<EnqueueField, Valued> = { queue: eQueue, tool: eTool, script: eScript, args: eArgs, prompt: ePrompt, timeoutSeconds: eTimeout, priority: ePriority, after: eAfter };

async function submitEnqueue(): Promise<void> {
  if (eSubmit.disabled) return;
  clearFieldErrors();
  if (!checkAfter()) {
    setMessage('Fix the marked fields.', 'error');
    return;
  }
  setMessage('Enqueueing…');
  const tool = init.tools.find((t) => t.name === eTool.value);
  try {
    const task = await request('enqueue', {
      queue: eQueue.value,
      tool: eTool.value,
      ...(tool?.script ? { script: eScript.value, args: eArgs.value } : { prompt: ePrompt.value }),
      timeoutSeconds: eTimeout.value,
      priority: ePriority.value,
      after: eAfter.value,
    });
    setMessage(`Enqueued ${task.id} on ${task.queue}${task.after.length > 0 ? `, after ${task.after.join(', ')}` : ''}.`, 'ok');
    ePrompt.value = '';
    eAfter.value = '';
  } catch (e) {
    if (e instanceof RequestError && Object.keys(e.fields).length > 0) {
      for (const [k, msg] of Object.entries(e.fields)) {
        const slot = enqueuePanel.querySelector<HTMLElement>(`.field-error[data-for="${k}"]`);
        if (slot) slot.textContent = msg;
        const control = FIELD_CONTROLS[k as EnqueueField];
        if (control) control.invalid = true;
      }
      setMessage('Fix the marked fields.', 'error');
    } else setMessage(`Enqueue failed: ${errorText(e)}`, 'error');
  }
}
eSubmit.addEventListener('click', () => void submitEnqueue());
enqueuePanel.addEventListener('submit', (e) => {
  e.preventDefault();
  void submitEnqueue();
});

// ---- host messages ----------------------------------------------------------------------------------------------

function showBanner(text: string | null): void {
  banner.hidden = text === null;
  banner.textContent = text ?? '';
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// Host messages other than answers wait for the components: `init` fills the pickers, which must be defined first.
// (Each waits on the same promise, so they are still handled in the order they came.)
onHostMessage((m) => void componentsReady.then(() => handleHostMessage(m)));
function handleHostMessage(m: Exclude<HostMessage, { type: 'response' }>): void {
  if (m.type === 'init') {
    init = m.init;
    readOnlyBadge.hidden = !init.readOnly;
    showBanner(init.problem ?? pageError);
    renderFilters();
    renderEnqueueChoices();
    void loadOverview();
    initWasShown();
    return;
  }
  // changed: refresh what is on screen; the host already batched the events.
  void loadPage();
  if (ui.tab === 'overview') void loadOverview();
  if (detail && (m.all || m.tasks.includes(detail.id))) void loadDetail();
}

// The first page was asked for in boot, before this module ran.
void loadPage(firstPage);

/**
 * The vscode-elements components are defined after the first page is on screen (or from COMPONENTS_AT_LATEST_MS on,
 * if the host is slow to answer), one per task: defining them and rendering every control costs the page's main
 * thread tens of milliseconds, and the host's answer waits in the queue while it is busy. Until then the elements are
 * in place but undefined (dashboard.css shows only the selected tab's panel); each definition upgrades them.
 */
const COMPONENTS_AT_LATEST_MS = 100;
/** The first `init` is rendered: with the first page, the dashboard is ready (#app[data-state="ready"]). */
let initWasShown!: () => void;
const initShown = new Promise<void>((resolve) => (initWasShown = resolve));
const componentsReady: Promise<void> = new Promise((resolve, reject) => {
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    void (async () => {
      for (const define of definitions) {
        await new Promise((r) => setTimeout(r, 0));
        await define();
      }
    })().then(resolve, reject);
  };
  firstPage.then(start, start);
  setTimeout(start, COMPONENTS_AT_LATEST_MS);
});

renderHead();
if (page.tasks.length === 0 && app.dataset['state'] !== 'ready') pageLabel.textContent = 'Loading…';
if (ui.selected) void loadDetail();
