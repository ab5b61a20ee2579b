import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { openQueue, type QueueHandle } from '../client/open';
import type { Clock } from '../core/clock';
import { findWorkspace } from '../owner/workspace';
import { CliError } from './errors';
import type { CliIo } from './io';
import { Output } from './output';

/** The options every command takes (declared once on the program; commander accepts them before or after the command). */
export interface GlobalOptions {
  json?: boolean;
  workspace?: string;
}

/**
 * How long a command that owned the queue keeps serving the commands that came to it before handing over (see
 * OpenOptions.linger): while any is connected, and 500 ms after the last left (an agent's next command reaches the
 * socket within that, on a busy machine too), 1 s at most. A command that no other process came to hands over at
 * once. 8 agents x 10 enqueues at once with no long-lived owner, 4 alternating rounds at load 3-8: 6-10 owners instead
 * of 80, median 9.7 s instead of 15.5 s, against 7.4 s with a live `sparkq serve` (1 s or 2 s at most, and 250 ms of
 * grace, measured the same within the noise).
 */
const LINGER = { graceMs: 500, maxMs: 1_000 };

/** What one command invocation works with: its streams, the global options, the workspace and the queue. */
export class CommandContext {
  readonly out: Output;
  readonly globals: GlobalOptions;

  constructor(
    readonly io: CliIo,
    /** The leaf command being run, e.g. `session create`. */
    readonly command: Command,
  ) {
    this.globals = command.optsWithGlobals<GlobalOptions>();
    this.out = new Output(io, this.globals.json === true);
  }

  get json(): boolean {
    return this.out.json;
  }

  /** `session create`, as the owner's log names this client. */
  get commandName(): string {
    const names: string[] = [];
    for (let c: Command | null = this.command; c?.parent; c = c.parent) names.unshift(c.name());
    return names.join(' ');
  }

  /** The workspace: --workspace, else SPARKQ_WORKSPACE, else the nearest folder upward with sparkq.yml or .sparkq/. */
  workspace(): string {
    this.givenWorkspace();
    return findWorkspace(this.io.cwd, this.globals.workspace, this.io.env);
  }

  /**
   * The folder --workspace (else SPARKQ_WORKSPACE) names, resolved, or undefined when neither is given. A CliError
   * when it names something that exists but is not a folder, rather than calling it missing.
   */
  givenWorkspace(): string | undefined {
    const from = this.globals.workspace !== undefined ? '--workspace' : 'SPARKQ_WORKSPACE';
    const given = this.globals.workspace ?? this.io.env['SPARKQ_WORKSPACE'];
    if (given === undefined || given === '') return undefined;
    const dir = path.resolve(this.io.cwd, given);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(dir);
    } catch {
      return dir; // missing: findWorkspace says so, and init creates it
    }
    if (!st.isDirectory()) throw new CliError(`${dir} (from ${from}) is a file, not a folder; point ${from} at the workspace folder (the one that holds sparkq.yml or .sparkq/)`);
    return dir;
  }

  /**
   * Runs `fn` against the workspace queue — through the live owner, or owning it for the duration of this command —
   * and always lets go of it afterwards, so a command that became the owner snapshots and releases the lock.
   */
  async withQueue<T>(fn: (q: QueueHandle, workspace: string) => Promise<T>, role = 'cli'): Promise<T> {
    const workspace = this.workspace();
    // The CLI's event loop serves the queue: its fdatasync runs there, without the thread hand-offs (see SyncOn).
    const clock = clockOf(this.io.env);
    const q = await openQueue(workspace, {
      role,
      client: `sparkq ${this.commandName}`,
      syncOn: 'event-loop',
      ...(clock ? { clock } : {}),
      ...(this.io.prepareToOwn ? { beforeOwning: this.io.prepareToOwn } : {}),
      ...(role === 'cli' ? { linger: LINGER } : {}),
    });
    try {
      return await fn(q, workspace);
    } finally {
      await q.close();
    }
  }
}

/**
 * SPARKQ_CLOCK_OFFSET_MS shifts the clock of the owner this command may become, so tests can show what time does to
 * the queue (timeouts, pauses) without waiting for it. It changes nothing when another process owns the queue.
 */
function clockOf(env: NodeJS.ProcessEnv): Clock | undefined {
  const raw = env['SPARKQ_CLOCK_OFFSET_MS'];
  if (raw === undefined || raw === '') return undefined;
  const offset = Number(raw);
  if (!Number.isSafeInteger(offset)) throw new CliError(`SPARKQ_CLOCK_OFFSET_MS must be a whole number of milliseconds, not ${JSON.stringify(raw)}`);
  return { now: () => Date.now() + offset };
}

/**
 * Adapts a command handler to commander's action signature (positional arguments, then options, then the command).
 * Handlers get a context, their positional arguments and their typed options.
 */
export function action<O>(io: CliIo, handler: (ctx: CommandContext, args: string[], opts: O) => Promise<void> | void) {
  return async (...raw: unknown[]): Promise<void> => {
    const command = raw[raw.length - 1] as Command;
    const args = command.processedArgs as string[];
    await handler(new CommandContext(io, command), args, command.opts<O & object>());
  };
}
