import type { SparkqConfig, ToolConfig } from '../core/config';
import type { JsonValue, Queue, Task, Usage } from '../core/model';
import type { Spawner } from './spawner';

/** Where an executor's output line goes: the terminal (live) and the capture (bounded tail + whole log file). */
export type OutputStream = 'stdout' | 'stderr' | 'info';

/** Everything an executor needs to run one claimed task. Executors never see the queue API: the runner records. */
export interface ExecContext {
  task: Task;
  queue: Queue;
  /** The queue's standing instructions (also on `queue`, repeated for convenience). */
  instructions: string;
  tool: ToolConfig;
  config: SparkqConfig;
  workspaceDir: string;
  /** Where the tool runs: the queue's working directory, else the workspace. Absolute. */
  cwd: string;
  /** The environment for the tool process: the worker's, plus SPARKQ_TASK_ID, SPARKQ_QUEUE, SPARKQ_LEASE, SPARKQ_WORKSPACE, PATH with sparkq, plus tool.env. */
  env: NodeJS.ProcessEnv;
  /** `.sparkq/runs/<task>/`, created; executors may put files there (the prompt, codex's -o file…). */
  runDir: string;
  /** Aborted when the task must stop (Ctrl+C, 2× timeout, lease lost): stop the tool's process group and return. */
  signal: AbortSignal;
  /** Live output: to the terminal and into the capture. Human-readable progress for agents goes here as 'info'. */
  output: (text: string, stream: OutputStream) => void;
  /** User-level or CLI-flag settings that may loosen safety (never from sparkq.yml). */
  userSettings: { allowBypass: boolean };
  /** The worker's spawn helper (see spawner.ts), for executors that start many short processes; absent: spawn directly. */
  spawner?: Spawner;
}

export interface ExecOutcomeBase {
  data?: JsonValue;
  usage?: Usage;
  /** Bounded tails for the database (the runner also has the whole output in the log file). */
  stdout?: string;
  stderr?: string;
  /** Agent continuity to store on the queue: the Codex thread / Claude session this task ran in. */
  agentSession?: { codexThreadId?: string; claudeSessionId?: string };
  /** Things worth telling the person at the terminal (e.g. "the old Codex thread was unknown; started a new one"). */
  notes?: string[];
}

export type ExecOutcome =
  | (ExecOutcomeBase & { status: 'succeeded'; summary: string })
  | (ExecOutcomeBase & { status: 'failed'; error: string })
  /**
   * The agent stopped because of a usage or rate limit of its account/API, not because of the task: the runner puts
   * the task back (queued, not failed) and pauses its queue until `resetAt` (epoch ms) when the agent said when the
   * limit resets, else for the configured delay.
   */
  | (ExecOutcomeBase & { status: 'rate-limited'; error: string; resetAt?: number });

export interface Executor {
  /** Runs the task to an outcome. Throws only for bugs; every expected failure is an outcome with status 'failed'. */
  run(ctx: ExecContext): Promise<ExecOutcome>;
}
