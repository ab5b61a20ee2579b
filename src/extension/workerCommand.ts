/*
 * What a worker terminal runs, decided without vscode so that it can be tested in plain Node. Bypass modes of agent
 * tools (sandbox/approval off) come only from the user's machine-scoped setting, and only in a trusted workspace:
 * sparkq.yml can never ask for them, and in Restricted Mode nothing runs anyway.
 */

export const ALLOW_BYPASS_SETTING = 'sparkq.agents.allowBypass';

export interface WorkerCommandInput {
  cliPath: string;
  queueId: string;
  worker: string;
  /** The value of `sparkq.agents.allowBypass`. */
  allowBypass: boolean;
  /** Whether the workspace is trusted; without trust the setting is ignored. */
  trusted: boolean;
}

/** The arguments after the runtime's executable: `cli.js run --queue Q --watch --worker W [--allow-bypass]`. */
export function workerShellArgs(input: WorkerCommandInput): string[] {
  const args = [input.cliPath, 'run', '--queue', input.queueId, '--watch', '--worker', input.worker];
  if (input.allowBypass && input.trusted) args.push('--allow-bypass');
  return args;
}

export interface WorkerTerminalEnvInput {
  /** What makes the runtime behave as Node (ELECTRON_RUN_AS_NODE on desktop). */
  runtimeEnv: Record<string, string>;
  /** The folder of the `sparkq` launcher, put first on PATH. */
  binDir: string;
  /** The PATH the terminal would have otherwise. */
  path: string;
  pathDelimiter: string;
  workspaceDir: string;
  worker: string;
  /** The embedded queue's owner, reached straight through its socket; null in team mode (there is no owner). */
  owner: { socketPath: string; token: string } | null;
  /** Team mode: SPARKQ_DATABASE_URL for the terminal (see terminalDatabaseEnv), empty otherwise. */
  database: Record<string, string>;
}

/**
 * The environment of a SparkQ terminal: the workspace, `sparkq` first on PATH, the worker name, the runtime's own, and
 * how to reach the queue: the owner's socket and token (embedded store) or the team database's URL (team mode), so
 * that `sparkq run` and `sparkq complete` in it reach the queue this window shows without anyone exporting anything.
 */
export function workerTerminalEnv(input: WorkerTerminalEnvInput): Record<string, string> {
  return {
    ...input.runtimeEnv,
    ...(input.owner ? { SPARKQ_SOCKET: input.owner.socketPath, SPARKQ_TOKEN: input.owner.token } : {}),
    ...input.database,
    SPARKQ_WORKSPACE: input.workspaceDir,
    SPARKQ_WORKER: input.worker,
    PATH: `${input.binDir}${input.pathDelimiter}${input.path}`,
  };
}
