import { errorMessage, isSparkqError } from '../../core/errors';
import { LIMITS, type JsonValue, type ListTasksInput, type Task, type TaskStatus, type ValidateSpec } from '../../core/model';
import { listPatterns, type Pattern, type PatternLoader } from '../../core/patterns';
import { patternStats } from '../../core/patternStats';
import type { ChangeEvent } from '../../api/contract';
import type { QueueApi } from '../../api/contract';
import {
  type DashboardInit,
  type DashboardMethod,
  type DashboardParams,
  type DashboardResults,
  type EnqueueField,
  type HostMessage,
  type Overview,
  type PatternInfo,
  type PatternsOverview,
  type PlanChoice,
  type PlansOverview,
  type TaskQuery,
  type ToolInfo,
  type UsageReport,
  type ChangeAction,
  CHANGE_ACTIONS,
  VALIDATE_ROUNDS,
  afterProblem,
  parseAfter,
} from '../../shared/dashboardProtocol';
import { checkWebviewMessage, toTaskRow } from './dashboardSchemas';
import { splitShellWords } from '../../worker/shellWords';
import { type FromPattern, patternProblem, taskFromPattern } from '../patternEnqueue';
import type { QueueReader } from '../queueReader';

/** The commands the dashboard's actions run (the same ones the tree views and the palette use). */
export type DashboardCommand = 'requeue' | 'complete' | 'fail' | 'startWorker' | ChangeAction;

/** What the controller needs from its surroundings; the panel passes VS Code's, the unit tests fakes. */
export interface DashboardDeps {
  /** The reading side: the live queue or Restricted Mode's copy. */
  reader(): Promise<QueueReader>;
  /** The full queue; rejects (with the way out) in Restricted Mode. */
  api(action: string): Promise<QueueApi>;
  isReadOnly(): boolean;
  /** Why there is no queue to show, or null. */
  problem(): string | null;
  tools(): ToolInfo[];
  post(message: HostMessage): unknown;
  /** Runs an existing SparkQ command with an arguments object; resolves undefined when the command failed. */
  runCommand(command: DashboardCommand, args: Record<string, unknown>): Promise<unknown>;
  openLog(taskId: string): Promise<void>;
  log?(message: string): void;
  /** The time the throughput chart ends at (tests pass the queue's fake clock). */
  now?(): number;
  /**
   * The prompt patterns folder of sparkq.yml (`patterns:`), read afresh on each call; null when it is not to be read
   * (no folder, or Restricted Mode, where sparkq.yml is not read). Absent: no patterns.
   */
  patterns?(): PatternLoader | null;
}

const CHANGE_ACTION_WORDS: Record<ChangeAction, string> = {
  showChanges: "show a task's changes",
  mergeChange: "merge a task's change",
  openWorktree: "open a task's worktree",
  discardChange: "discard a task's change",
};

/** The host batches change events for at most this long before telling the webview. */
export const CHANGE_BATCH_MS = 100;

/** Finished tasks scanned (newest first) for throughput: bounded, so 100k tasks cost the same as 2k. */
export const OVERVIEW_SCAN_LIMIT = 2_000;
/** Tasks scanned (newest first) for the plans the Plans tab offers. */
export const PLAN_SCAN_LIMIT = 2_000;
/** Tasks scanned (newest first) for the patterns table: the whole history up to this many, so the work is bounded. */
export const PATTERN_SCAN_LIMIT = 50_000;
const THROUGHPUT_BUCKETS = 24;
const BUCKET_SIZES_MS = [60_000, 5 * 60_000, 15 * 60_000, 3_600_000, 6 * 3_600_000, 86_400_000, 7 * 86_400_000];

type Handlers = { [M in DashboardMethod]: (params: DashboardParams<M>) => Promise<DashboardResults[M]> };

class FieldErrors extends Error {
  constructor(readonly fields: Partial<Record<EnqueueField, string>>) {
    super(Object.values(fields)[0] ?? 'invalid input');
  }
}

/**
 * The host side of the dashboard protocol, free of `vscode`: validates what the webview sends, answers each request
 * from the queue (a malformed one with an error), and batches the queue's change events into one `changed` message.
 */
export class DashboardController {
  private ready = false;
  private pendingAll = false;
  private readonly pendingTasks = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;
  private readonly handlers: Handlers;
  /** Resolves on the first `ready` (tests wait for the real webview with it). */
  readonly whenReady: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly deps: DashboardDeps) {
    this.whenReady = new Promise((r) => (this.markReady = r));
    this.handlers = {
      overview: () => this.overview(),
      listTasks: (p) => this.listTasks(p),
      getTask: async (p) => (await this.deps.reader()).getTask(p.task),
      scripts: (p) => this.scripts(p.query),
      enqueue: (p) => this.enqueue(p),
      taskAction: (p) => this.taskAction(p),
      startWorker: (p) => this.startWorker(p.queue),
      usage: () => this.usage(),
      pauseQueue: async (p) => ({ paused: (await (await this.changer('pause a queue')).pauseQueue({ queue: p.queue })).paused }),
      resumeQueue: async (p) => ({ paused: (await (await this.changer('resume a queue')).resumeQueue(p.queue)).paused }),
      requeueFailed: async (p) => ({ requeued: (await (await this.changer('requeue failed tasks')).requeueFailed({ queue: p.queue })).length }),
      plans: (p) => this.plans(p.plan),
      patterns: (p) => this.patterns(p.stats === true),
    };
  }

  get isReady(): boolean {
    return this.ready;
  }

  /**
   * One message from the webview. Never throws, and every request gets exactly one response: its result, or an error
   * the page shows (a bad method or bad parameters included). Only messages that carry no request id are ignored.
   */
  async handleMessage(raw: unknown): Promise<void> {
    if (this.disposed) return;
    const checked = checkWebviewMessage(raw);
    if (checked.kind === 'ignored') {
      this.deps.log?.('ignored a dashboard message that is neither ready nor a request with an id');
      return;
    }
    if (checked.kind === 'ready') {
      this.ready = true;
      this.markReady();
      await this.sendInit();
      return;
    }
    if (checked.kind === 'bad-request') {
      this.deps.log?.(`refused dashboard request ${checked.id} (${checked.method}): ${checked.error}`);
      this.post({ type: 'response', id: checked.id, ok: false, error: checked.error });
      return;
    }
    const { id, method, params } = checked.request;
    const handler = this.handlers[method] as (p: unknown) => Promise<unknown>;
    try {
      const result = await handler(params);
      this.post({ type: 'response', id, ok: true, result });
    } catch (e) {
      if (e instanceof FieldErrors) this.post({ type: 'response', id, ok: false, error: e.message, fields: e.fields });
      else this.post({ type: 'response', id, ok: false, error: errorMessage(e) });
    }
  }

  /** The queue changed: tell the webview once per batch window (an empty list means "everything"). */
  queueChanged(events: readonly ChangeEvent[]): void {
    if (this.disposed || !this.ready) return;
    if (events.length === 0) this.pendingAll = true;
    for (const e of events) if (e.kind === 'task') this.pendingTasks.add(e.id);
    else this.pendingAll = true;
    this.timer ??= setTimeout(() => this.flush(), CHANGE_BATCH_MS);
  }

  /** The connection or trust changed: the webview gets a fresh `init`. */
  async stateChanged(): Promise<void> {
    if (this.ready && !this.disposed) await this.sendInit();
  }

  private flush(): void {
    this.timer = undefined;
    if (this.disposed) return;
    const tasks = [...this.pendingTasks];
    const all = this.pendingAll;
    this.pendingTasks.clear();
    this.pendingAll = false;
    // Sessions or queues may have changed: the pickers' lists travel in `init`, so send it before `changed`.
    if (all) void this.sendInit().then(() => this.post({ type: 'changed', all, tasks }));
    else this.post({ type: 'changed', all, tasks });
  }

  private post(message: HostMessage): void {
    if (this.disposed) return;
    try {
      const r = this.deps.post(message);
      if (r instanceof Promise) r.catch(() => undefined);
    } catch {
      // the panel went away between the check and the post
    }
  }

  private async sendInit(): Promise<void> {
    const init: DashboardInit = { readOnly: this.deps.isReadOnly(), problem: this.deps.problem(), tools: this.deps.tools(), queues: [], sessions: [] };
    if (init.problem === null) {
      try {
        const reader = await this.deps.reader();
        const [queues, sessions] = await Promise.all([reader.listQueues({ includeEnded: true }), reader.listSessions()]);
        init.queues = queues.map((q) => ({ id: q.id, name: q.name, session: q.session, active: q.status === 'active' }));
        init.sessions = sessions.map((s) => ({ id: s.id, name: s.name }));
      } catch (e) {
        init.problem = errorMessage(e);
      }
    }
    this.post({ type: 'init', init });
  }

  private async listTasks(q: TaskQuery): Promise<DashboardResults['listTasks']> {
    const reader = await this.deps.reader();
    const page = await reader.listTasks(toListInput(q));
    return { tasks: page.tasks.map(toTaskRow), next: page.next };
  }

  private async overview(): Promise<Overview> {
    const reader = await this.deps.reader();
    const status = await reader.status();
    const finished: Task[] = [];
    let before: string | undefined;
    let truncated = false;
    for (;;) {
      const page = await reader.listTasks({ status: ['succeeded', 'failed'], limit: 1000, ...(before ? { before } : {}) });
      finished.push(...page.tasks);
      if (page.next === null) break;
      if (finished.length >= OVERVIEW_SCAN_LIMIT) {
        truncated = true;
        break;
      }
      before = page.next;
    }
    return {
      counts: status.counts,
      queues: status.queues.map((q) => ({
        id: q.id,
        name: q.name,
        session: q.session,
        counts: { ...q.counts, stale: q.stale },
        paused: q.paused,
        pausedUntil: q.pausedUntil,
        pauseReason: q.pauseReason,
      })),
      throughput: throughputOf(finished, this.deps.now?.() ?? Date.now()),
      scanned: finished.length,
      truncated,
    };
  }

  /** The webview asks for this after the first page, with the overview: it reads every task, live and archived. */
  private async usage(): Promise<UsageReport> {
    const reader = await this.deps.reader();
    const [byTool, byModel, byDay] = await Promise.all([reader.report({ by: 'tool' }), reader.report({ by: 'model' }), reader.report({ by: 'day' })]);
    return { byTool: byTool.rows, byModel: byModel.rows, byDay: byDay.rows, total: byTool.total };
  }

  /**
   * The plans among the newest PLAN_SCAN_LIMIT tasks (the contract has no list of plans), and the report of the one
   * asked for, else of the newest: the figures of `sparkq report --plan` and the plan's tokens and cost by tool and model.
   */
  private async plans(asked: string | undefined): Promise<PlansOverview> {
    const reader = await this.deps.reader();
    const found = new Map<string, PlanChoice>();
    let scanned = 0;
    let truncated = false;
    let before: string | undefined;
    for (;;) {
      const page = await reader.listTasks({ limit: 1000, ...(before ? { before } : {}) });
      for (const t of page.tasks) {
        if (t.plan === null) continue;
        const seen = found.get(t.plan);
        if (seen) seen.tasks++;
        else found.set(t.plan, { id: t.plan, tasks: 1, newestAt: t.createdAt });
      }
      scanned += page.tasks.length;
      if (page.next === null) break;
      if (scanned >= PLAN_SCAN_LIMIT) {
        truncated = true;
        break;
      }
      before = page.next;
    }
    const plans = [...found.values()];
    const selected = asked ?? plans[0]?.id ?? null;
    const result: PlansOverview = { plans, scanned, truncated, selected, report: null, problem: null };
    if (selected === null) return result;
    try {
      const [byTool, byModel] = await Promise.all([reader.report({ by: 'tool', plan: selected }), reader.report({ by: 'model', plan: selected })]);
      if (!byTool.plan) throw new Error(`the queue gave no figures for plan ${selected}`);
      result.report = { plan: byTool.plan, byTool: byTool.rows, byModel: byModel.rows, total: byTool.total };
    } catch (e) {
      result.problem = `Plan ${selected} cannot be reported: ${errorMessage(e)}`;
    }
    return result;
  }

  /**
   * The patterns of the folder, and with `withStats` the patterns table of `sparkq patterns stats` (the same pure
   * function) over the queue's history, paged through newest first as the CLI does, up to PATTERN_SCAN_LIMIT tasks.
   */
  private async patterns(withStats: boolean): Promise<PatternsOverview> {
    const loader = this.deps.patterns?.() ?? null;
    const result: PatternsOverview = { folder: loader?.dir ?? null, patterns: [], problems: [], stats: [], scanned: 0, truncated: false };
    if (loader) {
      const { patterns, errors } = listPatterns(loader);
      result.patterns = patterns.map(patternInfo);
      result.problems = errors.map((e) => ({ file: e.file, message: patternProblem(e) }));
    }
    if (!withStats) return result;
    const reader = await this.deps.reader();
    const made: Task[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await reader.listTasks({ limit: 1000, ...(before ? { before } : {}) });
      for (const t of page.tasks) if (t.pattern !== null) made.push(t);
      result.scanned += page.tasks.length;
      if (page.next === null) break;
      if (result.scanned >= PATTERN_SCAN_LIMIT) {
        result.truncated = true;
        break;
      }
      before = page.next;
    }
    result.stats = patternStats(made);
    return result;
  }

  /** The enqueue form's pattern and variables (taskFromPattern, as `sparkq enqueue --pattern`); problems become field errors. */
  private fromPattern(form: DashboardParams<'enqueue'>, fields: Partial<Record<EnqueueField, string>>): FromPattern | null {
    const name = form.pattern?.trim() ?? '';
    if (name === '') return null;
    const r = taskFromPattern(this.deps.patterns?.() ?? null, name, form.vars ?? {}, form.prompt);
    for (const p of r.problems ?? []) fields[p.field] = fields[p.field] === undefined ? p.message : `${fields[p.field]!}\n${p.message}`;
    return r.made ?? null;
  }

  /** The full queue for a change the dashboard makes itself; refused in Restricted Mode like the other actions. */
  private async changer(action: string): Promise<QueueApi> {
    this.refuseWhenReadOnly(action);
    return this.deps.api(action);
  }

  private async scripts(query: string): Promise<DashboardResults['scripts']> {
    if (this.deps.isReadOnly()) return [];
    const api = await this.deps.api('search the script index');
    return (await api.scripts(query.trim() === '' ? undefined : query)).slice(0, 50);
  }

  private async enqueue(form: DashboardParams<'enqueue'>): Promise<Task> {
    this.refuseWhenReadOnly('enqueue a task');
    const fields: Partial<Record<EnqueueField, string>> = {};
    const made = this.fromPattern(form, fields);
    const toolName = form.tool.trim() === '' && made?.pattern.tool ? made.pattern.tool : form.tool;
    const tool = this.deps.tools().find((t) => t.name === toolName);
    if (form.queue.trim() === '') fields.queue = 'Choose a queue.';
    if (toolName.trim() === '') fields.tool = made ? `Pattern ${made.pattern.name} names no tool: choose one.` : 'Choose a tool.';
    else if (!tool) fields.tool = `sparkq.yml has no tool "${toolName}".`;
    const usesPattern = (form.pattern?.trim() ?? '') !== '';
    const prompt = made ? made.prompt : form.prompt?.trim() ? form.prompt : undefined;
    let payload: JsonValue | undefined;
    if (tool?.script) {
      const script = form.script?.trim() ?? '';
      if (script === '') fields.script = 'Choose a script for this script tool.';
      else {
        try {
          payload = { script, args: splitShellWords(form.args ?? '') };
        } catch (e) {
          fields.args = errorMessage(e);
        }
      }
    } else if (tool && prompt === undefined && !usesPattern) fields.prompt = 'Say what the task should do.';
    const timeoutSeconds = intField(form.timeoutSeconds, 1, LIMITS.maxTimeoutSeconds, 'Timeout', fields, 'timeoutSeconds');
    const priority = intField(form.priority, -LIMITS.maxPriority, LIMITS.maxPriority, 'Priority', fields, 'priority');
    const after = parseAfter(form.after).ids;
    const badAfter = afterProblem(form.after);
    if (badAfter !== null) fields.after = badAfter;
    else if (after.length > LIMITS.maxAfter) fields.after = `A task can wait on at most ${LIMITS.maxAfter} tasks.`;
    const validate = await this.validatorOf(form, made, fields);
    if (Object.keys(fields).length > 0) throw new FieldErrors(fields);
    const api = await this.deps.api('enqueue a task');
    return api.enqueue({
      queue: form.queue.trim(),
      tool: toolName,
      ...(prompt !== undefined ? { prompt } : {}),
      ...(made ? { pattern: made.record } : {}),
      ...(validate !== undefined ? { validate } : {}),
      ...(payload !== undefined ? { payload } : {}),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      ...(priority !== undefined ? { priority } : {}),
      ...(after.length > 0 ? { after } : {}),
    });
  }

  /**
   * The form's validator, as `sparkq enqueue --validate-with TOOL [--validate-prompt] [--validate-queue] [--max-rounds]`
   * makes it: named, it replaces the pattern's; not named, the pattern's applies (and, in the core, else the tool's in
   * sparkq.yml), and a prompt, queue or rounds without a tool are refused as the CLI refuses them. What the core would
   * refuse (an unknown tool, a script validator with nothing to run, rounds out of range, a queue that is not there or
   * has ended) becomes an error on its field, so that nothing is enqueued and the form says which field to fix.
   */
  private async validatorOf(form: DashboardParams<'enqueue'>, made: FromPattern | null, fields: Partial<Record<EnqueueField, string>>): Promise<ValidateSpec | undefined> {
    const name = form.validateWith?.trim() ?? '';
    const prompt = form.validatePrompt?.trim() ? form.validatePrompt : undefined;
    const queue = form.validateQueue?.trim() ?? '';
    const rounds = form.maxRounds?.trim() ?? '';
    if (name === '') {
      if (prompt !== undefined || queue !== '' || rounds !== '') {
        fields.validateWith = 'Choose a tool to check with: a validator prompt, queue and max rounds go with one.';
      }
      return made?.validate;
    }
    const tools = this.deps.tools();
    const validator = tools.find((t) => t.name === name);
    if (!validator) {
      fields.validateWith = `sparkq.yml has no tool "${name}": choose one of ${tools.map((t) => t.name).join(', ') || '(none: add a tool to sparkq.yml)'}.`;
    } else if (validator.script && prompt === undefined) {
      fields.validatePrompt = `${name} runs a script: give the script to run and its arguments (e.g. "check.sh --strict"); its exit status is the verdict.`;
    }
    const maxRounds = intField(form.maxRounds, 1, VALIDATE_ROUNDS.max, 'Max rounds', fields, 'maxRounds');
    if (queue !== '') {
      try {
        const q = await (await this.deps.reader()).getQueue(queue);
        if (q.status !== 'active') fields.validateQueue = `Queue ${q.session} / ${q.name} has ended: choose an active queue, or the task's own.`;
      } catch (e) {
        if (!isSparkqError(e, 'not-found')) throw e;
        fields.validateQueue = `There is ${errorMessage(e)}; or choose the task's own queue.`;
      }
    }
    return {
      tool: name,
      ...(prompt !== undefined ? { prompt } : {}),
      ...(queue !== '' ? { queue } : {}),
      ...(maxRounds !== undefined ? { maxRounds } : {}),
    };
  }

  private async taskAction(p: DashboardParams<'taskAction'>): Promise<DashboardResults['taskAction']> {
    if (p.action === 'openLog') {
      await this.deps.openLog(p.task);
      return { done: true, task: p.task };
    }
    if ((CHANGE_ACTIONS as readonly string[]).includes(p.action)) return this.changeAction(p.task, p.action as ChangeAction);
    this.refuseWhenReadOnly(`${p.action} a task`);
    let args: Record<string, unknown>;
    if (p.action === 'requeue') args = { task: p.task };
    else {
      const text = p.text?.trim() ?? '';
      if (text === '') throw new Error(p.action === 'complete' ? 'Write a summary: say what was done.' : 'Write an error: say what went wrong.');
      args = p.action === 'complete' ? { task: p.task, summary: text } : { task: p.task, error: text };
    }
    const result = (await this.deps.runCommand(p.action, args)) as Task | undefined;
    if (result === undefined) throw new Error(`The ${p.action} did not happen; the notification says why.`);
    return { done: true, task: result.id };
  }

  /** A task's change: the same commands as the Tasks view's menu (git runs only in a trusted workspace). Discard asks first. */
  private async changeAction(task: string, action: ChangeAction): Promise<DashboardResults['taskAction']> {
    this.refuseWhenReadOnly(CHANGE_ACTION_WORDS[action]);
    const result = await this.deps.runCommand(action, action === 'discardChange' ? { task, confirm: true } : { task });
    if (result === undefined) throw new Error(`Could not ${CHANGE_ACTION_WORDS[action]}; the notification says why (or it was cancelled).`);
    return { done: true, task };
  }

  private async startWorker(queue: string): Promise<DashboardResults['startWorker']> {
    this.refuseWhenReadOnly('start a worker');
    const r = await this.deps.runCommand('startWorker', { queue });
    if (r === undefined) throw new Error('The worker did not start; the notification says why.');
    return { started: true };
  }

  private refuseWhenReadOnly(action: string): void {
    if (this.deps.isReadOnly()) throw new Error(`SparkQ is read-only in Restricted Mode and cannot ${action}. Trust this workspace to change the queue.`);
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
  }
}

function patternInfo(p: Pattern): PatternInfo {
  return {
    name: p.name,
    description: p.description,
    tool: p.tool,
    hash: p.hash,
    variables: Object.entries(p.variables).map(([name, v]) => ({ name, description: v.description, default: v.default })),
    validator: p.validate?.tool ?? null,
  };
}

function intField(
  text: string | undefined,
  min: number,
  max: number,
  label: string,
  fields: Partial<Record<EnqueueField, string>>,
  key: EnqueueField,
): number | undefined {
  const t = text?.trim() ?? '';
  if (t === '') return undefined;
  if (!/^-?\d+$/.test(t)) {
    fields[key] = `${label} must be a whole number.`;
    return undefined;
  }
  const n = Number(t);
  if (n < min || n > max) {
    fields[key] = `${label} must be between ${min} and ${max}.`;
    return undefined;
  }
  return n;
}

export function toListInput(q: TaskQuery): ListTasksInput {
  const clean = (s: string | undefined) => (s !== undefined && s.trim() !== '' ? s.trim() : undefined);
  const session = clean(q.session);
  const queue = clean(q.queue);
  const tool = clean(q.tool);
  const text = clean(q.text);
  const status: TaskStatus | undefined = q.status === 'stale' ? 'running' : q.status;
  return {
    limit: q.limit,
    ...(session ? { session } : {}),
    ...(queue ? { queue } : {}),
    ...(tool ? { tool } : {}),
    ...(text ? { text } : {}),
    ...(status ? { status } : {}),
    ...(q.status === 'stale' ? { stale: true } : {}),
    ...(q.before ? { before: q.before } : {}),
  };
}

export function throughputOf(finished: readonly Task[], now: number): Overview['throughput'] {
  const times = finished.map((t) => (t.finishedAt ? Date.parse(t.finishedAt) : NaN)).filter((n) => Number.isFinite(n));
  const oldest = times.length > 0 ? Math.min(...times) : now;
  const span = Math.max(1, now - oldest);
  const bucketMs = BUCKET_SIZES_MS.find((b) => b * THROUGHPUT_BUCKETS >= span) ?? BUCKET_SIZES_MS[BUCKET_SIZES_MS.length - 1]!;
  const start = Math.floor(now / bucketMs) * bucketMs - (THROUGHPUT_BUCKETS - 1) * bucketMs;
  const succeeded = new Array<number>(THROUGHPUT_BUCKETS).fill(0);
  const failed = new Array<number>(THROUGHPUT_BUCKETS).fill(0);
  for (const t of finished) {
    if (!t.finishedAt) continue;
    const i = Math.floor((Date.parse(t.finishedAt) - start) / bucketMs);
    if (i < 0 || i >= THROUGHPUT_BUCKETS) continue;
    if (t.status === 'failed') failed[i]!++;
    else succeeded[i]!++;
  }
  return { bucketMs, start, succeeded, failed };
}
