/**
 * The whole `sparkq` program: bundled to dist/cli-app.js, which dist/cli.js (main.ts) loads when a command needs more
 * than an answer it knows by heart (see fastPaths.ts). See program.ts for the contract and commands/ for each command.
 */
import { ownerCodeLoaded } from '../client/open';
import { processIo } from './io';
import { groupsLoaded, runCli } from './program';

export { fastPathTable } from './fastPaths';

/** Runs one command line in this process; resolves to the exit code. */
export function main(argv: string[], hooks: { prepareToOwn?: () => void } = {}): Promise<number> {
  const io = processIo();
  if (hooks.prepareToOwn) io.prepareToOwn = hooks.prepareToOwn;
  return runCli(argv, io);
}

/** The parts of the program this process has run (command groups, the owner's code), for the code cache. */
export function partsLoaded(): string[] {
  return ownerCodeLoaded() ? [...groupsLoaded(), 'owner'] : groupsLoaded();
}
