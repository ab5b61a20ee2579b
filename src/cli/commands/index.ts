import type { CommandGroup } from '../registry';
import { initCommand } from './init';
import { planCommands } from './plan';
import { purgeCommand } from './purge';
import { queueCommands } from './queue';
import { reportCommand } from './report';
import { runCommands } from './run';
import { scriptsCommand } from './scripts';
import { serveCommand } from './serve';
import { sessionCommands } from './session';
import { statusCommand } from './status';
import { taskCommands } from './tasks';
import { workerCommands } from './worker';

/** Every command, in the order `sparkq --help` lists them. */
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  initCommand,
  statusCommand,
  sessionCommands,
  queueCommands,
  taskCommands,
  planCommands,
  workerCommands,
  runCommands,
  scriptsCommand,
  reportCommand,
  purgeCommand,
  serveCommand,
];
