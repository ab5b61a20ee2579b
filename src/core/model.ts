import { z } from 'zod';
import { LIMITS, type LifecycleStatus, REPORT_GROUPS, type ReportGroup, TASK_STATUSES, type TaskStatus } from './constants';

/**
 * The domain as callers see it. Timestamps are ISO-8601 UTC strings at this boundary (the store keeps milliseconds).
 * Input schemas are zod and strict: a misspelt option is an error, never silently ignored.
 */

export { FINISHED_STATUSES, LIMITS, type LifecycleStatus, REPORT_GROUPS, type ReportGroup, TASK_STATUSES, type TaskStatus } from './constants';
export const TaskStatusSchema = z.enum(TASK_STATUSES);

export const UsageSchema = z
  .object({
    inputTokens: z.number().int().nonnegative().optional(),
    cachedInputTokens: z.number().int().nonnegative().optional(),
    outputTokens: z.number().int().nonnegative().optional(),
    reasoningTokens: z.number().int().nonnegative().optional(),
    costUsd: z.number().nonnegative().finite().optional(),
    model: z.string().max(200).optional(),
  })
  .strict();
export type Usage = z.infer<typeof UsageSchema>;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export const JsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number().finite(), z.string(), z.array(JsonValueSchema), z.record(z.string(), JsonValueSchema)]),
);

export interface Session {
  id: string;
  name: string;
  description: string;
  status: LifecycleStatus;
  createdAt: string;
  endedAt: string | null;
}

export type StatusCounts = Record<TaskStatus, number>;

export interface Queue {
  id: string;
  name: string;
  sessionId: string;
  session: string;
  instructions: string;
  workdir: string | null;
  status: LifecycleStatus;
  maxWorkers: number;
  /** Attempts before a failing task stays failed (overrides the tool's maxAttempts); null: the tool decides. */
  maxAttempts: number | null;
  /** A paused queue hands out no tasks (running ones go on). */
  paused: boolean;
  /** When the pause ends by itself; null while paused until resumed (or when not paused). */
  pausedUntil: string | null;
  pauseReason: string | null;
  codexThreadId: string | null;
  claudeSessionId: string | null;
  /** Each task runs in a git worktree of its own (`isolation: worktree`); null: in the queue's working directory. */
  isolation: QueueIsolation | null;
  createdAt: string;
  endedAt: string | null;
  counts: StatusCounts;
  stale: number;
}

/**
 * A queue whose tasks each run in a git worktree of their own, on a branch `sparkq/<queue>/<task>`. The branch starts
 * at `baseCommit`, or at the tip of `baseRef` when the queue follows its base. Changes merge into `baseRef`.
 */
export interface QueueIsolation {
  kind: 'worktree';
  /** The branch the queue's changes are for (the one HEAD named when the queue was made, or --base); null when that was a bare commit. */
  baseRef: string | null;
  /** The commit the base named when the queue was made. */
  baseCommit: string;
  /** Start each task at the current tip of baseRef rather than at baseCommit. */
  follow: boolean;
}

const gitRef = z.string().min(1).max(LIMITS.name * 2).refine((s) => !/[\p{Cc}\s]/u.test(s) && !s.startsWith('-'), 'a git ref must not contain spaces or control characters, nor start with "-"');
const gitCommit = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a commit is a full hexadecimal object name (40 or 64 characters)');

export const QueueIsolationSchema = z
  .object({ kind: z.literal('worktree'), baseRef: gitRef.nullable(), baseCommit: gitCommit, follow: z.boolean() })
  .strict();

/** A file a task changed, relative to the repository's top: its path and git's status letter (A, M, D, R, T). */
export interface ChangedFile {
  path: string;
  status: string;
}

/**
 * What a task on a worktree queue changed: where it ran, its branch, and the commit that holds its change (made with
 * the summary as message when it succeeded). A failed task has no commit; its worktree is kept for inspection.
 */
export interface TaskChange {
  /** The worktree, relative to the workspace folder, with forward slashes. */
  worktree: string;
  branch: string;
  /** The branch the change is for; null when the queue's base is a bare commit. */
  baseRef: string | null;
  /** The commit the task's branch started from. */
  baseCommit: string;
  /** The task's commit; null when it changed nothing or did not succeed. */
  commit: string | null;
  /** Up to LIMITS.changedFiles of the changed files; `filesChanged` counts them all. */
  files: ChangedFile[];
  filesChanged: number;
  insertions: number;
  deletions: number;
}

export const TaskChangeSchema = z
  .object({
    worktree: z.string().min(1).max(4096),
    branch: gitRef,
    baseRef: gitRef.nullable(),
    baseCommit: gitCommit,
    commit: gitCommit.nullable(),
    files: z
      .array(z.object({ path: z.string().min(1).max(4096), status: z.string().min(1).max(8) }).strict())
      .max(LIMITS.changedFiles, `at most ${LIMITS.changedFiles} changed files are listed; count the rest in filesChanged`),
    filesChanged: z.number().int().nonnegative(),
    insertions: z.number().int().nonnegative(),
    deletions: z.number().int().nonnegative(),
  })
  .strict();

/** The prompt pattern a task was made from (`sparkq/patterns/NAME.md`) and the SHA-256 of that file then. */
export interface TaskPattern {
  name: string;
  hash: string;
}
export const TaskPatternSchema = z
  .object({ name: z.string().min(1).max(LIMITS.name), hash: z.string().regex(/^[0-9a-f]{64}$/, 'a pattern hash is the SHA-256 of its file, 64 hexadecimal digits') })
  .strict();

/**
 * A validator: when the task succeeds, a validation task runs `tool` on its result (on `queue`, default the task's
 * own) and gives a verdict; a fail requeues the task with the feedback, up to `maxRounds` rounds in all.
 */
export const ValidateSpecSchema = z
  .object({
    tool: z.string().min(1, 'say which tool validates the result').max(LIMITS.name, `a tool name is at most ${LIMITS.name} characters`),
    prompt: z.string().max(LIMITS.prompt, `a validator prompt is longer than ${LIMITS.prompt} bytes`).optional(),
    queue: z.string().min(1, 'a validator queue must not be empty').max(LIMITS.name * 2).optional(),
    maxRounds: z.number().int().min(1, 'maxRounds is at least 1').max(10, 'maxRounds is at most 10').optional(),
  })
  .strict();
export type ValidateSpec = z.infer<typeof ValidateSpecSchema>;

/** Rounds of a validated task when its spec does not say. */
export const DEFAULT_MAX_ROUNDS = 2;

/**
 * Where a validated task stands: `pending` until a validator's verdict on its current round (its dependents wait),
 * then `passed`, or `failed` after the last round. `by` lists its validation tasks, oldest first.
 */
export interface TaskValidation {
  status: 'pending' | 'passed' | 'failed';
  round: number;
  maxRounds: number;
  by: string[];
  feedback: string | null;
  spec: ValidateSpec;
}

/** What a task produced: the summary of a succeeded task, and data (also partial results a failed task reported). */
export interface TaskResult {
  /** Always set for a succeeded task; null for a failed one (its `error` says what went wrong). */
  summary: string | null;
  data: JsonValue | null;
}

export interface Task {
  id: string;
  sessionId: string;
  session: string;
  queueId: string;
  queue: string;
  tool: string;
  taskClass: string;
  prompt: string | null;
  payload: JsonValue | null;
  status: TaskStatus;
  priority: number;
  timeoutSeconds: number;
  attempt: number;
  worker: string | null;
  createdAt: string;
  startedAt: string | null;
  heartbeatAt: string | null;
  finishedAt: string | null;
  stale: boolean;
  staleAt: string | null;
  result: TaskResult | null;
  error: string | null;
  stdout: string | null;
  stderr: string | null;
  usage: Usage | null;
  retryOf: string | null;
  /** The key of the enqueue or requeue that made this task, if it was given one (see IdempotencyKey). */
  idempotencyKey: string | null;
  /** Tasks this one waits on: it is claimable only once all of them have succeeded. */
  after: string[];
  /** Of those, the ones that have not succeeded yet (a queued task with any is not claimable). */
  waitingOn: string[];
  /** Of those, the ones that failed: requeue them to release this task. */
  blockedBy: string[];
  /** A retry after a failed attempt waits until then. */
  notBefore: string | null;
  /** The plan the task came from and its name in that plan. */
  plan: string | null;
  planKey: string | null;
  /** Where it ran in a worktree (isolation: worktree): its branch, commit and changed files. */
  change: TaskChange | null;
  /** The prompt pattern it was made from. */
  pattern: TaskPattern | null;
  /**
   * Tasks of one merge group (a plan batch with `merge: auto`) are merged into their base by the worker that finishes
   * the last of them, all together, in order, stopping at the first conflict.
   */
  mergeGroup: string | null;
  /** Its validator and where it stands (see ValidateSpec); null when it is not validated. */
  validation: TaskValidation | null;
  /** On a validation task: the task whose result it checks. */
  validates: string | null;
  /** True when the task lives in an archive file (finished long enough ago to leave the live database). */
  archived: boolean;
}

export interface Attempt {
  n: number;
  worker: string | null;
  startedAt: string;
  endedAt: string | null;
  /** released: handed back unfailed (the agent hit a usage/rate limit). */
  outcome: 'running' | 'succeeded' | 'failed' | 'released';
  error: string | null;
}

export interface TaskDetail extends Task {
  attempts: Attempt[];
  instructions: string;
  /** Milliseconds from creation to start and from start to finish, where known. */
  timings: { waitMs: number | null; runMs: number | null };
}

export interface Claim {
  task: Task;
  instructions: string;
  lease: string;
}

// ---- inputs -------------------------------------------------------------------------------------------------

const name = (what: string) =>
  z
    .string()
    .trim()
    .min(1, `${what} name must not be empty`)
    .max(LIMITS.name, `${what} name is longer than ${LIMITS.name} characters`)
    .refine((s) => !/\p{Cc}/u.test(s), `${what} name must not contain control characters`)
    .refine((s) => !/^(ses|que|tsk)_/.test(s), `${what} name must not start with an id prefix (ses_, que_, tsk_)`);

export const CreateSessionInput = z
  .object({
    name: name('session'),
    description: z.string().max(LIMITS.description).optional(),
  })
  .strict();
export type CreateSessionInput = z.input<typeof CreateSessionInput>;

export const CreateQueueInput = z
  .object({
    name: name('queue'),
    session: z.string().min(1, 'a queue needs a session (its name or id)'),
    instructions: z.string().max(LIMITS.instructions).optional(),
    workdir: z.string().min(1).max(4096).optional(),
    maxWorkers: z.number().int().min(1).max(64).optional(),
    maxAttempts: z.number().int().min(1).max(100).optional(),
    /** Run each task in a git worktree of its own; the client resolves the base in the repository (see src/git). */
    isolation: QueueIsolationSchema.optional(),
  })
  .strict();
export type CreateQueueInput = z.input<typeof CreateQueueInput>;

/**
 * Names one enqueue (or requeue) so that repeating it returns the task it made instead of making a second one: unique
 * per queue, kept with the task. A client that lost an answer repeats the call with the same key.
 */
export const MergeGroup = z
  .string()
  .min(1, 'a merge group must not be empty')
  .max(LIMITS.name * 2 + 1, `a merge group is at most ${LIMITS.name * 2 + 1} characters`)
  .refine((s) => !/\p{Cc}/u.test(s), 'a merge group must not contain control characters');

export const IdempotencyKey = z
  .string()
  .min(1, 'an idempotency key must not be empty')
  .max(LIMITS.idempotencyKey, `an idempotency key is at most ${LIMITS.idempotencyKey} characters`)
  .refine((s) => !/\p{Cc}/u.test(s), 'an idempotency key must not contain control characters');

export const RequeueOptions = z.object({ idempotencyKey: IdempotencyKey.optional() }).strict();
export type RequeueOptions = z.input<typeof RequeueOptions>;

export const EnqueueInput = z
  .object({
    queue: z.string().min(1, 'say which queue (its name or id)'),
    tool: z.string().min(1, 'say which tool runs the task'),
    prompt: z.string().max(LIMITS.prompt, `prompt is longer than ${LIMITS.prompt} bytes`).optional(),
    payload: JsonValueSchema.optional(),
    timeoutSeconds: z.number().int().positive().max(LIMITS.maxTimeoutSeconds).optional(),
    priority: z.number().int().min(-LIMITS.maxPriority).max(LIMITS.maxPriority).optional(),
    /** Ids of existing tasks this one waits on: it runs only after all of them have succeeded. */
    after: z.array(z.string().min(1)).max(LIMITS.maxAfter, `a task can wait on at most ${LIMITS.maxAfter} tasks`).optional(),
    idempotencyKey: IdempotencyKey.optional(),
    /** The prompt pattern the prompt was rendered from. */
    pattern: TaskPatternSchema.optional(),
    /** Merge this task's change automatically with the rest of its group once all of them succeeded (worktree queues). */
    mergeGroup: MergeGroup.optional(),
    /** Check the result with a validator before its dependents start (default: the tool's `validate` in sparkq.yml). */
    validate: ValidateSpecSchema.optional(),
  })
  .strict();
export type EnqueueInput = z.input<typeof EnqueueInput>;

export const ClaimInput = z
  .object({
    queue: z.string().min(1, 'say which queue to claim from'),
    worker: z.string().min(1).max(LIMITS.worker).optional(),
  })
  .strict();
export type ClaimInput = z.input<typeof ClaimInput>;

const agentId = z.string().min(1).max(200).nullable().optional();
/** The agent conversation a task ran in, recorded on its queue so that the queue's next task continues it. */
export const AgentSessionSchema = z.object({ codexThreadId: agentId, claudeSessionId: agentId }).strict();
export type AgentSession = z.input<typeof AgentSessionSchema>;

/** What a worker reports with any end of a running task (complete, fail, hand back): results, output, usage, agent. */
const outcomeDetails = {
  data: JsonValueSchema.optional(),
  stdout: z.string().optional(),
  stderr: z.string().optional(),
  usage: UsageSchema.optional(),
  agentSession: AgentSessionSchema.optional(),
  /** The task ran in a worktree: what it changed there (see TaskChange). */
  change: TaskChangeSchema.optional(),
};

export const CompleteInput = z
  .object({
    task: z.string().min(1),
    lease: z.string().min(1).optional(),
    summary: z
      .string()
      .refine((s) => s.trim().length > 0, 'a summary is required: say what was done')
      .refine((s) => s.length <= LIMITS.summary, `summary is longer than ${LIMITS.summary} characters; put details in data`),
    ...outcomeDetails,
  })
  .strict();
export type CompleteInput = z.input<typeof CompleteInput>;

export const FailInput = z
  .object({
    task: z.string().min(1),
    lease: z.string().min(1).optional(),
    error: z.string().refine((s) => s.trim().length > 0, 'an error text is required: say what went wrong'),
    ...outcomeDetails,
  })
  .strict();
export type FailInput = z.input<typeof FailInput>;

/**
 * What a finished attempt changed in its worktree and the tokens its agent used, recorded by its worker after the task
 * was finished without it (by its agent through SparkQ's tools, or by hand for a manual task): only for the attempt
 * that finished, once finished. At least one of the two.
 */
export const RecordRunInput = z
  .object({ task: z.string().min(1), attempt: z.number().int().positive(), change: TaskChangeSchema.optional(), usage: UsageSchema.optional() })
  .strict();
export type RecordRunInput = z.input<typeof RecordRunInput>;

export const HeartbeatInput = z.object({ task: z.string().min(1), lease: z.string().min(1) }).strict();
export type HeartbeatInput = z.input<typeof HeartbeatInput>;

export const ListTasksInput = z
  .object({
    session: z.string().min(1).optional(),
    queue: z.string().min(1).optional(),
    status: z.union([TaskStatusSchema, z.array(TaskStatusSchema)]).optional(),
    stale: z.boolean().optional(),
    tool: z.string().min(1).optional(),
    text: z.string().min(1).max(500).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
    plan: z.string().min(1).optional(),
    /** Continue after this task (the last one of the previous page); newest first. */
    before: z.string().min(1).optional(),
    offset: z.number().int().min(0).optional(),
  })
  .strict();
export type ListTasksInput = z.input<typeof ListTasksInput>;

export interface TaskPage {
  tasks: Task[];
  /** Pass as `before` to get the next page; null when this page is the last. */
  next: string | null;
}

export const PauseQueueInput = z
  .object({
    queue: z.string().min(1, 'say which queue to pause'),
    /** Resume by itself after this many seconds; without it the queue stays paused until resumed. */
    forSeconds: z.number().positive().max(LIMITS.maxTimeoutSeconds).optional(),
    reason: z.string().max(LIMITS.description).optional(),
  })
  .strict();
export type PauseQueueInput = z.input<typeof PauseQueueInput>;

/**
 * Hands a running task back unfailed (status queued, the attempt recorded as released) because the agent hit a usage
 * or rate limit, and pauses its queue until `resetAt` (ISO time or epoch ms) or for the configured delay.
 */
export const ReleaseInput = z
  .object({
    task: z.string().min(1),
    lease: z.string().min(1).optional(),
    reason: z.string().refine((s) => s.trim().length > 0, 'say why the task is handed back'),
    resetAt: z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })]).optional(),
    ...outcomeDetails,
  })
  .strict();
export type ReleaseInput = z.input<typeof ReleaseInput>;

export const RequeueFailedInput = z
  .object({ queue: z.string().min(1).optional(), plan: z.string().min(1).optional(), session: z.string().min(1).optional() })
  .strict();
export type RequeueFailedInput = z.input<typeof RequeueFailedInput>;

/**
 * A validator's verdict on the task its running validation task checks: completes that task (summary `pass: …` or
 * `fail: …`, data `{verdict, feedback}`) and passes or fails the checked task's round.
 */
export const VerdictInput = z
  .object({
    task: z.string().min(1, 'say which validation task gives the verdict'),
    lease: z.string().min(1).optional(),
    verdict: z.enum(['pass', 'fail'], 'a verdict is pass or fail'),
    feedback: z.string().max(LIMITS.summary - 6, `feedback is longer than ${LIMITS.summary - 6} characters`).optional(),
  })
  .strict();
export type VerdictInput = z.input<typeof VerdictInput>;

export const ReportInput = z
  .object({
    session: z.string().min(1).optional(),
    by: z.enum(REPORT_GROUPS).optional(),
    /** Only the tasks of this plan (its id), with the plan's figures: wall clock, speed-up, critical path, repricing. */
    plan: z.string().min(1).optional(),
    /** With plan: the orchestrator's model, to price the naive plan at (default sparkq.yml's orchestrator). */
    orchestrator: z.string().min(1).max(200).optional(),
  })
  .strict();
export type ReportInput = z.input<typeof ReportInput>;

export interface ReportRow {
  /** The tool, model, queue name or day (YYYY-MM-DD, UTC, of finishing); "(none)" when a task has no model. */
  key: string;
  tasks: number;
  succeeded: number;
  failed: number;
  /** Summed run time of finished tasks, ms. */
  runMs: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  costUsd: number;
}
export interface Report {
  by: ReportGroup;
  session: string | null;
  rows: ReportRow[];
  total: Omit<ReportRow, 'key'>;
  /** Only with `plan` in the input: what running the plan's tasks in parallel bought. */
  plan?: PlanReport;
}

/** A task of a plan's critical path: the newest task of that plan name, with the run time of all its attempts. */
export interface PlanPathTask {
  key: string;
  id: string;
  runMs: number;
}

/** What the plan's Codex tokens would have cost at one priced model (sparkq.yml `pricing:`). */
export interface RepricedCost {
  model: string;
  costUsd: number;
}

/**
 * A plan as it ran. Run times are those of attempts: every attempt of every task of the plan counts, the failed and
 * the handed-back ones and requeued copies included, because each kept a worker busy for that long and the wall clock
 * contains them too.
 */
export interface PlanReport {
  id: string;
  /** Tasks of the plan (a requeued copy is a task of its own), and how many of them are not finished. */
  tasks: number;
  unfinished: number;
  /** Validation tasks among `tasks` (a check is part of the plan of the task it checks). */
  checks: number;
  /** The start of the first attempt and the end of the last one; null before any attempt ended. */
  firstStartAt: string | null;
  lastFinishAt: string | null;
  wallClockMs: number;
  /** The summed run time of every ended attempt: how long one worker would have taken doing the same work in turn. */
  serialMs: number;
  /** serialMs / wallClockMs, rounded to 3 decimals; null while the wall clock is 0. */
  speedup: number | null;
  /** Share of serialMs during which at least one other ended attempt of the plan ran too, 0..1, 3 decimals. */
  parallelShare: number | null;
  /** The chain of `after` waits between plan tasks with the largest summed run time, first to last; empty before any ran. */
  criticalPath: { runMs: number; tasks: PlanPathTask[] };
  /** The tokens of the plan's tasks run by Codex tools (kind codex), their recorded cost, and their cost at each priced model. */
  codex: { tasks: number; inputTokens: number; cachedInputTokens: number; outputTokens: number; costUsd: number; pricedAt: RepricedCost[] };
  /** Against the naive plan: every task's tokens run on the orchestrator's model, one task after another. */
  naive: NaivePlan;
}

/**
 * What the plan would have cost had the orchestrator's model done every task itself, in turn: the tokens of all the
 * plan's tasks priced at that model against their recorded cost, and the serial sum against the wall clock.
 */
export interface NaivePlan {
  /** The orchestrator's model; null when none is set or it has no price (then the costs are null). */
  model: string | null;
  /** Tasks that recorded token usage, and their tokens. */
  tasks: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  /** Those tokens at the orchestrator's price. */
  costUsd: number | null;
  /** What the plan's tasks recorded (a Codex subscription run records 0). */
  actualCostUsd: number;
  savedUsd: number | null;
  /** savedUsd / costUsd, 0..1, 3 decimals; null without a naive cost. */
  savedShare: number | null;
  /** serialMs − wallClockMs: the time the parallel run saved over running the tasks one after another. */
  timeSavedMs: number;
}

/** A plan as the queue applies it (src/core/plan.ts parses and checks the YAML file into one). */
export interface PlanTaskInput {
  /** The task's name in the plan. */
  key: string;
  queue: string;
  tool: string;
  prompt?: string;
  payload?: JsonValue;
  timeoutSeconds?: number;
  priority?: number;
  /** Names of plan tasks that come earlier in `tasks`, and/or ids of existing tasks. */
  after: string[];
  /** The prompt pattern the prompt was rendered from. */
  pattern?: TaskPattern;
  /** Its batch merges automatically (`merge: auto`): the plan's id and the batch's name. */
  mergeGroup?: string;
  /** Its validator (the task's, else its batch's, else the plan defaults'). */
  validate?: ValidateSpec;
}
export interface PlanInput {
  id: string;
  description: string | null;
  /** In a topological order: a task comes after every plan task it waits on. */
  tasks: PlanTaskInput[];
}

const planKey = z.string().min(1).max(LIMITS.name);
/** The wire form of applyPlan's input: the service checks each task again as an enqueue. */
export const ApplyPlanInput = z
  .object({
    plan: z
      .object({
        id: planKey,
        description: z.string().max(LIMITS.description).nullable(),
        tasks: z
          .array(
            z
              .object({
                key: planKey,
                queue: z.string().min(1),
                tool: z.string().min(1),
                prompt: z.string().optional(),
                payload: JsonValueSchema.optional(),
                timeoutSeconds: z.number().optional(),
                priority: z.number().optional(),
                after: z.array(z.string().min(1)).max(LIMITS.maxAfter),
                pattern: TaskPatternSchema.optional(),
                mergeGroup: MergeGroup.optional(),
                validate: ValidateSpecSchema.optional(),
              })
              // The parser's own fields (batch, line) may come along; they are not needed here.
              .loose(),
          )
          .max(10_000),
      })
      .loose(),
    file: z.string().max(4096).optional(),
  })
  .strict();
export type ApplyPlanInput = { plan: PlanInput; file?: string };

export interface PlanApplyResult {
  plan: string;
  /** Tasks enqueued by this apply, by their name in the plan. */
  created: { key: string; task: Task }[];
  /** Names already enqueued by an earlier apply of the same plan: left as they are. */
  existing: { key: string; id: string; status: TaskStatus }[];
}
