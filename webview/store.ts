import type { ScriptEntry } from '../src/core/scriptIndex';
import type { TaskDetail } from '../src/core/model';
import {
  type DashboardInit,
  type DashboardMethod,
  type DashboardParams,
  type DashboardResults,
  type DashboardUiState,
  type EnqueueField,
  type EnqueueForm,
  type HostMessage,
  type Overview,
  type PatternsOverview,
  type PlansOverview,
  type SortKey,
  type TaskPageView,
  type TaskQuery,
  type UsageReport,
  afterProblem,
} from '../src/shared/dashboardProtocol';
import { plural } from '../src/core/text';
import { TABS, requestPage, ui } from './boot';
import { RequestError, request, saveUiState } from './bridge';
import { errorText } from './view';

/** A line that says how something went: in progress, done, or failed. */
export interface Note {
  text: string;
  kind: '' | 'ok' | 'error';
}

/**
 * Everything the dashboard shows: the UI state the page keeps with setState, and what the host answered and pushed.
 * Components read it and call its actions; nothing else holds dashboard state.
 */
export interface DashboardState {
  ui: DashboardUiState;
  init: DashboardInit;
  /** The first `init` came (the pickers can be drawn). */
  initShown: boolean;
  page: TaskPageView;
  /** The current page's request was answered (rows or an error). */
  pageAnswered: boolean;
  /** Why the page of tasks cannot be shown, or null. */
  pageError: string | null;
  overview: Overview | null;
  overviewError: string | null;
  usage: UsageReport | null;
  usageError: string | null;
  /** The Plans tab: the plans seen and the chosen one's report. */
  plans: PlansOverview | null;
  plansError: string | null;
  /** The prompt patterns (for the enqueue form) and, once the Patterns tab asked, the patterns table. */
  patterns: PatternsOverview | null;
  /** `patterns` carries the table from history (asked by the Patterns tab), not only the list of patterns. */
  patternsTable: boolean;
  patternsError: string | null;
  detail: TaskDetail | null;
  /** Why the selected task cannot be shown, or null. */
  detailError: string | null;
  /** What became of the last queue action (pause, resume, requeue failed) of the overview. */
  queueNote: Note | null;
  /** What became of the last action on the task in detail. */
  taskNote: Note | null;
  /** Buttons whose request is under way, by key (see `busyKey`). */
  busy: ReadonlySet<string>;
  enqueueNote: Note | null;
  enqueueErrors: Partial<Record<EnqueueField, string>>;
  /** Scripts suggested for the enqueue form's Script field; empty when none is to be shown. */
  suggestions: ScriptEntry[];
}

type Listener = () => void;

/** The usage report reads every task: while changes keep coming it is asked for at most every USAGE_EVERY_MS. */
const USAGE_EVERY_MS = 2_000;
/** A plan's report reads every task of the plan and the newest tasks for the list of plans: likewise at most this often. */
const PLANS_EVERY_MS = 2_000;

export class DashboardStore {
  private readonly listeners = new Set<Listener>();
  private pageRequest = 0;
  private detailRequest = 0;
  private usageAskedAt = -Infinity;
  private usageLater: ReturnType<typeof setTimeout> | null = null;
  private plansRequest = 0;
  private plansAskedAt = -Infinity;
  private plansLater: ReturnType<typeof setTimeout> | null = null;
  private patternsRequest = 0;
  private patternsAskedAt = -Infinity;
  private patternsLater: ReturnType<typeof setTimeout> | null = null;
  state: DashboardState;

  constructor(uiState: DashboardUiState) {
    this.state = {
      ui: uiState,
      init: { readOnly: true, problem: null, tools: [], queues: [], sessions: [] },
      initShown: false,
      page: { tasks: [], next: null },
      pageAnswered: false,
      pageError: null,
      overview: null,
      overviewError: null,
      usage: null,
      usageError: null,
      plans: null,
      plansError: null,
      patterns: null,
      patternsTable: false,
      patternsError: null,
      detail: null,
      detailError: null,
      queueNote: null,
      taskNote: null,
      busy: new Set(),
      enqueueNote: null,
      enqueueErrors: {},
      suggestions: [],
    };
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(patch: Partial<DashboardState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  private setUi(patch: Partial<DashboardUiState>): void {
    const next = { ...this.state.ui, ...patch };
    saveUiState(next);
    this.set({ ui: next });
  }

  // ---- host messages ----------------------------------------------------------------------------------------

  hostMessage(m: Exclude<HostMessage, { type: 'response' }>): void {
    if (m.type === 'init') {
      this.set({ init: m.init, initShown: true });
      void this.loadOverview();
      if (this.state.ui.tab === 'plans') void this.loadPlans();
      if (this.state.ui.tab === 'patterns' || this.state.ui.tab === 'enqueue') void this.loadPatterns();
      return;
    }
    // changed: refresh what is on screen; the host already batched the events.
    void this.loadPage();
    if (this.state.ui.tab === 'overview') void this.loadOverview();
    if (this.state.ui.tab === 'plans') void this.loadPlans(false);
    if (this.state.ui.tab === 'patterns') void this.loadPatterns(false);
    const shown = this.state.detail;
    if (shown && (m.all || m.tasks.includes(shown.id))) void this.loadDetail();
  }

  // ---- tasks --------------------------------------------------------------------------------------------------

  /** Shows the page the UI state says (asked now, or the one already asked for); a later call wins over an earlier one. */
  async loadPage(asked: Promise<TaskPageView> = requestPage(this.state.ui)): Promise<void> {
    const n = ++this.pageRequest;
    try {
      const page = await asked;
      if (n === this.pageRequest) this.set({ page, pageError: null, pageAnswered: true });
    } catch (e) {
      if (n === this.pageRequest) this.set({ page: { tasks: [], next: null }, pageError: `The tasks cannot be listed: ${errorText(e)}`, pageAnswered: true });
    }
  }

  setQuery(query: TaskQuery): void {
    this.setUi({ query, cursors: [] });
    void this.loadPage();
  }

  nextPage(): void {
    const next = this.state.page.next;
    if (next === null) return;
    this.setUi({ cursors: [...this.state.ui.cursors, next] });
    void this.loadPage();
  }

  previousPage(): void {
    if (this.state.ui.cursors.length === 0) return;
    this.setUi({ cursors: this.state.ui.cursors.slice(0, -1) });
    void this.loadPage();
  }

  sortBy(key: SortKey): void {
    const { sort } = this.state.ui;
    this.setUi({ sort: { key, dir: sort.key === key ? (sort.dir === 1 ? -1 : 1) : 1 } });
  }

  setTab(index: number): void {
    const tab = TABS[index] ?? 'overview';
    this.setUi({ tab });
    if (tab === 'overview') void this.loadOverview();
    if (tab === 'plans') void this.loadPlans();
    if (tab === 'patterns' || tab === 'enqueue') void this.loadPatterns();
  }

  // ---- task detail ----------------------------------------------------------------------------------------------

  selectTask(id: string): void {
    this.setUi({ selected: id });
    this.set({ taskNote: null });
    void this.loadDetail();
  }

  async loadDetail(): Promise<void> {
    const id = this.state.ui.selected;
    if (!id) return;
    const n = ++this.detailRequest;
    try {
      const detail = await request('getTask', { task: id });
      if (n === this.detailRequest) this.set({ detail, detailError: null });
    } catch (e) {
      if (n === this.detailRequest) this.set({ detail: null, detailError: `Task ${id} cannot be shown: ${errorText(e)}` });
    }
  }

  /** An action on the task in detail (its button's id is the busy key); says how it went under the buttons. */
  taskAction<M extends 'taskAction' | 'startWorker'>(button: string, label: string, method: M, params: DashboardParams<M>): void {
    void this.run(button, label, 'taskNote', method, params, () => `${label}: done.`);
  }

  // ---- overview -------------------------------------------------------------------------------------------------

  /** Asks for the overview and the usage report together; each is shown when it comes (the report reads every task). */
  loadOverview(): Promise<void> {
    const overview = request('overview', {}).then(
      (o) => this.set({ overview: o, overviewError: null }),
      (e: unknown) => this.set({ overviewError: `The overview cannot be shown: ${errorText(e)}` }),
    );
    return Promise.all([overview, this.loadUsage()]).then(() => undefined);
  }

  private loadUsage(): Promise<void> {
    const wait = this.usageAskedAt + USAGE_EVERY_MS - Date.now();
    if (wait > 0) {
      this.usageLater ??= setTimeout(() => {
        this.usageLater = null;
        if (this.state.ui.tab === 'overview') void this.loadUsage();
      }, wait);
      return Promise.resolve();
    }
    this.usageAskedAt = Date.now();
    return request('usage', {}).then(
      (usage) => this.set({ usage, usageError: null }),
      (e: unknown) => this.set({ usageError: `Usage and cost cannot be shown: ${errorText(e)}` }),
    );
  }

  // ---- plans ----------------------------------------------------------------------------------------------------

  /**
   * Asks for the plans and the chosen plan's report. `now` (a person chose a plan or the tab) asks at once; a change
   * of the queue asks at most every PLANS_EVERY_MS. A later answer wins over an earlier one.
   */
  loadPlans(now = true): Promise<void> {
    const wait = this.plansAskedAt + PLANS_EVERY_MS - Date.now();
    if (!now && wait > 0) {
      this.plansLater ??= setTimeout(() => {
        this.plansLater = null;
        if (this.state.ui.tab === 'plans') void this.loadPlans();
      }, wait);
      return Promise.resolve();
    }
    this.plansAskedAt = Date.now();
    const n = ++this.plansRequest;
    const plan = this.state.ui.plan;
    return request('plans', plan !== null ? { plan } : {}).then(
      (plans) => {
        if (n === this.plansRequest) this.set({ plans, plansError: null });
      },
      (e: unknown) => {
        if (n === this.plansRequest) this.set({ plansError: `Plans cannot be shown: ${errorText(e)}` });
      },
    );
  }

  /** A person chose a plan: it stays the one shown (kept with the UI state) even when newer plans come. */
  choosePlan(id: string): void {
    if (id === this.state.ui.plan) return;
    this.setUi({ plan: id });
    void this.loadPlans();
  }

  // ---- patterns -------------------------------------------------------------------------------------------------

  /**
   * Asks for the prompt patterns, with the patterns table when the Patterns tab is shown (it reads the history). Like
   * the plans, a change of the queue asks at most every PLANS_EVERY_MS; a later answer wins over an earlier one.
   */
  loadPatterns(now = true): Promise<void> {
    const wait = this.patternsAskedAt + PLANS_EVERY_MS - Date.now();
    if (!now && wait > 0) {
      this.patternsLater ??= setTimeout(() => {
        this.patternsLater = null;
        if (this.state.ui.tab === 'patterns') void this.loadPatterns();
      }, wait);
      return Promise.resolve();
    }
    this.patternsAskedAt = Date.now();
    const n = ++this.patternsRequest;
    const stats = this.state.ui.tab === 'patterns';
    return request('patterns', stats ? { stats } : {}).then(
      (patterns) => {
        // The form's list without the table must not hide a table already shown.
        if (n !== this.patternsRequest) return;
        const old = this.state.patterns;
        const keep = !stats && old !== null && this.state.patternsTable;
        this.set({ patterns: keep ? { ...patterns, stats: old.stats, scanned: old.scanned, truncated: old.truncated } : patterns, patternsTable: stats || keep, patternsError: null });
      },
      (e: unknown) => {
        if (n === this.patternsRequest) this.set({ patternsError: `Patterns cannot be shown: ${errorText(e)}` });
      },
    );
  }

  /** A queue's button (pause, resume, requeue failed): says how it went under the table, and redraws the overview. */
  queueAction(button: string, label: string, method: 'pauseQueue' | 'resumeQueue' | 'requeueFailed', queue: string): void {
    void this.run(button, label, 'queueNote', method, { queue }, (r) => {
      const n = (r as { requeued?: number }).requeued;
      void this.loadOverview();
      return n === undefined ? `${label}: done.` : `${label}: ${plural(n, 'task')} requeued.`;
    });
  }

  private async run<M extends DashboardMethod>(
    button: string,
    label: string,
    note: 'queueNote' | 'taskNote',
    method: M,
    params: DashboardParams<M>,
    done: (r: DashboardResults[M]) => string,
  ): Promise<void> {
    if (this.state.busy.has(button)) return;
    this.set({ busy: new Set([...this.state.busy, button]), [note]: { text: `${label}…`, kind: '' } });
    let outcome: Note;
    try {
      outcome = { text: done(await request(method, params)), kind: '' };
    } catch (e) {
      outcome = { text: `${label} failed: ${errorText(e)}`, kind: 'error' };
    }
    const busy = new Set(this.state.busy);
    busy.delete(button);
    this.set({ busy, [note]: outcome });
  }

  // ---- enqueue --------------------------------------------------------------------------------------------------

  /** Checks the After field as it is typed: each word must be a task id. Whether the tasks exist, the owner says. */
  checkAfter(text: string): boolean {
    const problem = afterProblem(text);
    const { after: _old, ...others } = this.state.enqueueErrors;
    this.set({ enqueueErrors: problem === null ? others : { ...others, after: problem } });
    return problem === null;
  }

  /** Sends the form; resolves true when the task was enqueued (the form then clears its prompt and After fields). */
  async enqueue(form: EnqueueForm): Promise<boolean> {
    this.set({ enqueueErrors: {} });
    if (!this.checkAfter(form.after ?? '')) {
      this.set({ enqueueNote: { text: 'Fix the marked fields.', kind: 'error' } });
      return false;
    }
    this.set({ enqueueNote: { text: 'Enqueueing…', kind: '' } });
    try {
      const task = await request('enqueue', form);
      const after = task.after.length > 0 ? `, after ${task.after.join(', ')}` : '';
      const check = task.validation ? `, checked by ${task.validation.spec.tool} (up to ${task.validation.maxRounds} rounds)` : '';
      this.set({ enqueueNote: { text: `Enqueued ${task.id} on ${task.queue}${after}${check}.`, kind: 'ok' } });
      return true;
    } catch (e) {
      if (e instanceof RequestError && Object.keys(e.fields).length > 0) this.set({ enqueueErrors: e.fields, enqueueNote: { text: 'Fix the marked fields.', kind: 'error' } });
      else this.set({ enqueueNote: { text: `Enqueue failed: ${errorText(e)}`, kind: 'error' } });
      return false;
    }
  }

  async suggestScripts(query: string): Promise<void> {
    try {
      const suggestions = await request('scripts', { query });
      const { script: _old, ...others } = this.state.enqueueErrors;
      this.set({ suggestions, enqueueErrors: others });
    } catch (e) {
      this.set({ suggestions: [], enqueueErrors: { ...this.state.enqueueErrors, script: `Scripts cannot be listed: ${errorText(e)}` } });
    }
  }

  hideSuggestions(): void {
    if (this.state.suggestions.length > 0) this.set({ suggestions: [] });
  }
}

/** The dashboard's one store, over the UI state boot restored. */
export const store = new DashboardStore(ui);
