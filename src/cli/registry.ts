import type { Command } from 'commander';
import type { CliIo } from './io';

/**
 * One command or command group (`session create|list|end`). Each lives in its own module under `commands/` and adds
 * itself to the program; `commands/index.ts` lists them in help order. A new command (`sparkq run`) is a new module
 * and one line there.
 */
export interface CommandGroup {
  register(program: Command, io: CliIo): void;
}
