/** The `sparkq` command line (bundled to dist/cli.js). See program.ts for the contract and commands/ for each command. */
import { setFlagsFromString } from 'node:v8';
import { processIo } from './io';
import { runCli } from './program';

const argv = process.argv.slice(2);

// A short command lives for a fraction of a second: too short for optimised WebAssembly (sql.js) to pay back its
// compile time, so baseline code only (about a third less CPU per command). Long-running commands keep the default.
if (!argv.some((a) => a === 'serve' || a === 'run')) setFlagsFromString('--liftoff-only');

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

void runCli(argv, processIo()).then(async (code) => {
  // Exit explicitly once output is flushed: a command is over when it has answered, whatever timers or sockets a
  // library may still hold open.
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
});
