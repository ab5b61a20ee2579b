import { isSparkqError } from '../core/errors';

/**
 * A failure the command explains itself: wrong values, files that cannot be read, a state that does not allow the
 * command. Printed as one `error: …` line, exit 1. Usage errors (unknown command or option, missing argument) are
 * commander's and exit 2 with the command's usage.
 */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The contract says one line: multi-line messages (a config file with several issues) are joined with "; ". */
export function oneLine(message: string): string {
  return message
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join('; ');
}

/** The text after `error: ` for anything a command threw. */
export function describeError(e: unknown): string {
  if (e instanceof CliError || isSparkqError(e)) return oneLine(e.message);
  const message = e instanceof Error ? e.message : String(e);
  return oneLine(`unexpected failure: ${message} (set SPARKQ_DEBUG=1 for the stack trace; please report it)`);
}

/** Ends a command with a specific exit code and no `error:` line (e.g. 130 after Ctrl+C stopped `sparkq run`). */
export class ExitWith extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'ExitWith';
  }
}
