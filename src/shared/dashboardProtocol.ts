import type { PlanReport, ReportRow, Task, TaskDetail, TaskStatus, TaskValidation } from '../core/model';
import type { PatternStatsRow } from '../core/patternStats';
import type { ScriptEntry } from '../core/scriptIndex';

/**
 * The one protocol between the dashboard webview and the extension host, imported by both bundles: types, constants
 * and small pure functions only (no `vscode`, no zod, only `import type` from the core), so the page's bundle carries
 * nothing it does not run. The host's zod schemas for what the page sends are in src/extension/dashboard/
 * dashboardSchemas.ts, checked at compile time against the types here.
 *
 * The webview speaks first (`ready`); the host answers with `init` and from then on pushes `changed` (batched) and
 * answers each `request` with exactly one `response` carrying the same id, an error response when the request is bad.
 */

export const PAGE_SIZES = [25, 50, 100, 200] as const;
export const STATUS_FILTERS = ['queued', 'running', 'stale', 'succeeded', 'failed'] as const;
export type StatusFilter = (typeof STATUS_FILTERS)[number];

/** The Tasks table's filters and page. */
export interface TaskQuery {
  session?: string | undefined;
  queue?: string | undefined;
  status?: StatusFilter | undefined;
  tool?: string | undefined;
  text?: string | undefined;
  limit: number;
  /** The last task of the previous page (the owner pages newest first). */
  before?: string | undefined;
}

/** The enqueue form as typed: numbers still as text, so that the host can say which field is wrong. */
export interface EnqueueForm {
  queue: string;
  tool: string;
  script?: string | undefined;
  args?: string | undefined;
  prompt?: string | undefined;
  timeoutSeconds?: string | undefined;
  priority?: string | undefined;
  /** Ids of tasks the new one waits on, comma or space separated (`parseAfter`). */
  after?: string | undefined;
  /**
   * A prompt pattern to make the prompt from (as `sparkq enqueue --pattern`): its rendering comes first, then the
   * Prompt field's text, if any; the task records the pattern and its file's hash. `tool` may be empty to use the
   * pattern's tool.
   */
  pattern?: string | undefined;
  /** Values of the pattern's variables; an empty value counts as not given (its default applies). */
  vars?: Record<string, string> | undefined;
  /**
   * The tool that checks the task's result (`sparkq enqueue --validate-with`); empty or absent: none given here, so
   * the pattern's validator applies, else its tool's in sparkq.yml. Named, it replaces the pattern's, as the CLI does.
   */
  validateWith?: string | undefined;
  /** With validateWith: what the validator checks (a script validator: the script and its arguments). */
  validatePrompt?: string | undefined;
  /** With validateWith: the validation task's queue; empty: the task's own. */
  validateQueue?: string | undefined;
  /** With validateWith: rounds before the task stays failed, 1 to VALIDATE_ROUNDS.max; empty: VALIDATE_ROUNDS.default. */
  maxRounds?: string | undefined;
}
/** A validator's rounds: the core's DEFAULT_MAX_ROUNDS and ValidateSpecSchema's bound (a unit test holds them equal). */
export const VALIDATE_ROUNDS = { default: 2, max: 10 } as const;
/** A field of the enqueue form the host can mark wrong; a pattern variable's field is `var:NAME`. */
export type EnqueueField = keyof EnqueueForm | `var:${string}`;

/** The form field of a pattern variable, as errors name it. */
export function variableField(name: string): `var:${string}` {
  return `var:${name}`;
}

/** A variable of a prompt pattern, as the enqueue form offers it. */
export interface PatternVariableInfo {
  name: string;
  description: string;
  /** Pre-filled in the form; null: the variable must be given. */
  default: string | null;
}

/** A prompt pattern of the patterns folder, as the enqueue form and the Patterns tab list it. */
export interface PatternInfo {
  name: string;
  description: string;
  tool: string | null;
  hash: string;
  /** In the order the front matter declares them. */
  variables: PatternVariableInfo[];
  /** The validator tool of tasks made from it (unless they name another), or null. */
  validator: string | null;
}

export interface PatternsOverview {
  /** The patterns folder (absolute); null when it is not read (no folder, or Restricted Mode, where sparkq.yml is not read). */
  folder: string | null;
  patterns: PatternInfo[];
  /** Pattern files that do not parse, each with its first problem. */
  problems: { file: string; message: string }[];
  /** The patterns table from history (`sparkq patterns stats`); empty when not asked for. */
  stats: PatternStatsRow[];
  /** How many tasks (newest first) the table was computed from, and whether there were more. */
  scanned: number;
  truncated: boolean;
}

/** A task id as the queue hands them out (src/core/ids.ts); the form checks `after` with it before asking the host. */
export const TASK_ID_PATTERN = /^tsk_[0-9a-km-z]{12}$/;

/** The After field's ids (comma or space separated, deduplicated) and the words that are not task ids. */
export function parseAfter(text: string | undefined): { ids: string[]; bad: string[] } {
  const words = (text ?? '').split(/[\s,]+/).filter((w) => w !== '');
  const ids = [...new Set(words.filter((w) => TASK_ID_PATTERN.test(w)))];
  return { ids, bad: words.filter((w) => !TASK_ID_PATTERN.test(w)) };
}

/** Says what is wrong with the After field, or null. */
export function afterProblem(text: string | undefined): string | null {
  const { bad } = parseAfter(text);
  if (bad.length === 0) return null;
  const shown = bad.slice(0, 3).map((w) => JSON.stringify(w.length > 40 ? `${w.slice(0, 39)}…` : w)).join(', ');
  return `Not a task id: ${shown}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''}. A task id is tsk_ and 12 letters and digits.`;
}

/**
 * What the task detail's buttons do. The change actions (a task on a worktree queue) run the same commands as the
 * Tasks view's menu: sparkq.showChanges, sparkq.mergeChange, sparkq.openWorktree, sparkq.discardChange.
 */
export const TASK_ACTIONS = ['requeue', 'complete', 'fail', 'openLog', 'showChanges', 'mergeChange', 'openWorktree', 'discardChange'] as const;
export const CHANGE_ACTIONS = ['showChanges', 'mergeChange', 'openWorktree', 'discardChange'] as const satisfies readonly TaskAction[];
export type ChangeAction = (typeof CHANGE_ACTIONS)[number];
export type TaskAction = (typeof TASK_ACTIONS)[number];

type NoParams = Record<string, never>;

/** Each request's parameters (validated at the host). The result types are in `DashboardResults`. */
export interface DashboardRequests {
  overview: NoParams;
  listTasks: TaskQuery;
  getTask: { task: string };
  scripts: { query: string };
  enqueue: EnqueueForm;
  taskAction: { task: string; action: TaskAction; text?: string | undefined };
  startWorker: { queue: string };
  /** Token usage and cost from the queue's report: by tool, by model and by day. */
  usage: NoParams;
  pauseQueue: { queue: string };
  resumeQueue: { queue: string };
  requeueFailed: { queue: string };
  /** The plans seen among the newest tasks, and the report of one of them (the newest when none is named). */
  plans: { plan?: string | undefined };
  /** The prompt patterns of the patterns folder, and with `stats` the patterns table from the queue's history. */
  patterns: { stats?: boolean | undefined };
}
export type DashboardMethod = keyof DashboardRequests;
export type DashboardParams<M extends DashboardMethod> = DashboardRequests[M];

/** The queue's report three ways (`QueueApi.report`), over every task, live and archived. */
export interface UsageReport {
  byTool: ReportRow[];
  byModel: ReportRow[];
  /** Oldest first; keys are UTC days (YYYY-MM-DD) of finishing. */
  byDay: ReportRow[];
  total: Omit<ReportRow, 'key'>;
}

/** A plan the Plans tab offers: one seen among the newest tasks. */
export interface PlanChoice {
  id: string;
  /** Its tasks among those scanned, and when the newest of them was created. */
  tasks: number;
  newestAt: string;
}

/** One plan as `sparkq report --plan` gives it: what running it in parallel bought, and its tokens and cost by tool and model. */
export interface PlanView {
  plan: PlanReport;
  byTool: ReportRow[];
  byModel: ReportRow[];
  total: Omit<ReportRow, 'key'>;
}

export interface PlansOverview {
  /** Newest first. */
  plans: PlanChoice[];
  /** How many of the newest tasks were scanned for plans, and whether there were more. */
  scanned: number;
  truncated: boolean;
  /** The plan reported: the one asked for, else the newest; null when there is none. */
  selected: string | null;
  report: PlanView | null;
  /** Why the selected plan cannot be reported (no such plan any more, say), or null. */
  problem: string | null;
}

export interface OverviewQueue {
  id: string;
  name: string;
  session: string;
  counts: Record<TaskStatus | 'stale', number>;
  paused: boolean;
  /** When a timed pause ends by itself; null for a pause until resumed. */
  pausedUntil: string | null;
  pauseReason: string | null;
}

export interface Overview {
  counts: Record<TaskStatus | 'stale', number>;
  queues: OverviewQueue[];
  /** Tasks finished per bucket, oldest first, over the finished tasks scanned. */
  throughput: { bucketMs: number; start: number; succeeded: number[]; failed: number[] };
  /** How many finished tasks the throughput was computed from, and whether there were more. */
  scanned: number;
  truncated: boolean;
}

/**
 * A task as a row of the Tasks table: what the table shows and sorts by, no more. A page of whole tasks carried every
 * prompt, payload, result, error and output tail (up to megabytes for 50 tasks) to a table that shows one line of each;
 * the detail asks for the whole task (getTask). `prompt` is its first line that is not blank (the host cuts it short),
 * and `payload` only a script tool's script and arguments: what the row's label is made of.
 */
export type TaskRow = Pick<
  Task,
  'id' | 'status' | 'stale' | 'queue' | 'tool' | 'priority' | 'createdAt' | 'startedAt' | 'finishedAt' | 'waitingOn' | 'blockedBy' | 'notBefore' | 'prompt' | 'payload' | 'validates'
> & {
  /** Where its validation stands, without the validator's spec and feedback (the detail has those). */
  validation: ValidationState | null;
};

/** The part of a task's validation its badge is made of. */
export type ValidationState = Pick<TaskValidation, 'status' | 'round' | 'maxRounds'>;

/**
 * A validated task's badge, in the words `sparkq tasks` uses (validating, passed, check failed, round) with the round
 * written out: "validating · round 1 of 2" (succeeded, waiting for its verdict), "round 2 of 2" (requeued with the
 * feedback, not finished yet), "passed" (or "passed · round 2 of 2" when it took a fix round), "check failed · round
 * 2 of 2". Null for a task that is not validated. The Tasks view and the dashboard both show it.
 */
export function validationBadge(task: { status: TaskStatus; validation: ValidationState | null }): string | null {
  const v = task.validation;
  if (v === null) return null;
  const round = `round ${v.round} of ${v.maxRounds}`;
  if (v.status === 'passed') return v.round <= 1 ? 'passed' : `passed · ${round}`;
  if (v.status === 'failed') return `check failed · ${round}`;
  return task.status === 'succeeded' ? `validating · ${round}` : round;
}

/** "checks tsk_…": what a validation task's row says of the task whose result it checks; null for other tasks. */
export function validatesText(task: Pick<Task, 'validates'>): string | null {
  return task.validates === null ? null : `checks ${task.validates}`;
}

/** A pattern's file hash as the views show it: its first 12 hex digits (like a short commit). */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}
export interface TaskPageView {
  tasks: TaskRow[];
  next: string | null;
}

/** What each request resolves to: `request('getTask', …)` is typed `Promise<TaskDetail>` from this map. */
export interface DashboardResults {
  overview: Overview;
  listTasks: TaskPageView;
  getTask: TaskDetail;
  scripts: ScriptEntry[];
  enqueue: Task;
  taskAction: { done: true; task: string | null };
  startWorker: { started: boolean };
  usage: UsageReport;
  pauseQueue: { paused: boolean };
  resumeQueue: { paused: boolean };
  requeueFailed: { requeued: number };
  plans: PlansOverview;
  patterns: PatternsOverview;
}

export type DashboardRequest = { [M in DashboardMethod]: { type: 'request'; id: number; method: M; params: DashboardParams<M> } }[DashboardMethod];

export type WebviewMessage = { type: 'ready' } | DashboardRequest;

export interface ToolInfo {
  name: string;
  kind: string;
  script: boolean;
  timeoutSeconds: number;
}

export interface DashboardInit {
  readOnly: boolean;
  /** Why the queue cannot be shown (no folder, not set up, failed), or null. */
  problem: string | null;
  tools: ToolInfo[];
  queues: { id: string; name: string; session: string; active: boolean }[];
  sessions: { id: string; name: string }[];
}

export type HostMessage =
  | { type: 'init'; init: DashboardInit }
  | { type: 'changed'; all: boolean; tasks: string[] }
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: string; fields?: Partial<Record<EnqueueField, string>> };

/** What the webview keeps across reloads with `setState`: UI state only, never queue data. */
export interface DashboardUiState {
  tab: 'overview' | 'tasks' | 'enqueue' | 'plans' | 'patterns';
  query: TaskQuery;
  /** Cursors of the pages before the current one, so "Previous" needs no offset scan. */
  cursors: (string | undefined)[];
  sort: { key: SortKey; dir: 1 | -1 };
  selected: string | null;
  /** The plan chosen on the Plans tab; null for the newest. */
  plan: string | null;
}
export const SORT_KEYS = ['id', 'status', 'queue', 'tool', 'created', 'duration', 'priority'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** "+10 −2 · 3 files", "no changes", or null: the short badge of a task's change (as the Tasks view shows it). */
export function changeSummary(task: Pick<Task, 'status' | 'change'>): string | null {
  const c = task.change;
  if (!c) return null;
  if (c.commit === null) return task.status === 'succeeded' ? 'no changes' : task.status === 'failed' ? 'worktree kept' : null;
  return `+${c.insertions} −${c.deletions} · ${c.filesChanged} file${c.filesChanged === 1 ? '' : 's'}`;
}

/** Strips ANSI escape sequences (colours, cursor moves, OSC titles) from program output. */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-Z\\-_]|\u009b[0-?]*[ -/]*[@-~]/g, '');
}
