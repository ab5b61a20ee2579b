/**
 * The whole `sparkq` program: bundled to dist/cli-app.js, which dist/cli.js (main.ts) loads when a command needs more
 * than an answer it knows by heart (see fastPaths.ts). See program.ts for the contract and commands/ for each command.
 */
import { processIo } from './io';
import { runCli } from './program';

export { fastPathTable } from './fastPaths';

/** Runs one command line in this process; resolves to the exit code. */
export function main(argv: string[]): Promise<number> {
  return runCli(argv, processIo());
}
