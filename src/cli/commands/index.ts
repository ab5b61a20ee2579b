/* eslint-disable @typescript-eslint/no-require-imports -- each command group is required when it is used (see below) */
import type { CommandGroup } from '../registry';
import type * as init from './init';
import type * as mcp from './mcp';
import type * as migrate from './migrate';
import type * as patterns from './patterns';
import type * as plan from './plan';
import type * as purge from './purge';
import type * as queue from './queue';
import type * as report from './report';
import type * as run from './run';
import type * as scripts from './scripts';
import type * as serve from './serve';
import type * as session from './session';
import type * as status from './status';
import type * as tasks from './tasks';
import type * as worker from './worker';
import type * as worktree from './worktree';

/**
 * A command group as the program knows it before loading it: the top-level commands it adds, and how to load it.
 * `sparkq peek` loads only the group that adds `peek` — with `require`, so that the bundle evaluates a group's module
 * and what it imports (zod schemas, the config parser, the worker's executors) only when that group is loaded.
 */
export interface LazyCommandGroup {
  readonly names: readonly string[];
  load(): CommandGroup;
}

/** Every command, in the order `sparkq --help` lists them. A test checks each group's `names` against what it adds. */
export const COMMAND_GROUPS: readonly LazyCommandGroup[] = [
  { names: ['init'], load: () => (require('./init') as typeof init).initCommand },
  { names: ['status'], load: () => (require('./status') as typeof status).statusCommand },
  { names: ['session'], load: () => (require('./session') as typeof session).sessionCommands },
  { names: ['queue'], load: () => (require('./queue') as typeof queue).queueCommands },
  { names: ['enqueue', 'peek', 'tasks', 'task', 'requeue'], load: () => (require('./tasks') as typeof tasks).taskCommands },
  { names: ['plan'], load: () => (require('./plan') as typeof plan).planCommands },
  { names: ['patterns'], load: () => (require('./patterns') as typeof patterns).patternsCommands },
  { names: ['claim', 'complete', 'fail', 'verdict'], load: () => (require('./worker') as typeof worker).workerCommands },
  { names: ['run', 'guide'], load: () => (require('./run') as typeof run).runCommands },
  { names: ['scripts'], load: () => (require('./scripts') as typeof scripts).scriptsCommand },
  { names: ['merge', 'worktree'], load: () => (require('./worktree') as typeof worktree).worktreeCommands },
  { names: ['report'], load: () => (require('./report') as typeof report).reportCommand },
  { names: ['purge'], load: () => (require('./purge') as typeof purge).purgeCommand },
  { names: ['serve'], load: () => (require('./serve') as typeof serve).serveCommand },
  { names: ['mcp'], load: () => (require('./mcp') as typeof mcp).mcpCommand },
  { names: ['migrate'], load: () => (require('./migrate') as typeof migrate).migrateCommand },
];
