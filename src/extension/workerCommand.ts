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
