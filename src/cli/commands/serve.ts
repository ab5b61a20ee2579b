import * as path from 'node:path';
import { openQueue, type QueueHandle } from '../../client/open';
import { teamStoreOf } from '../../client/teamStore';
import { sparkqDirOf } from '../../owner/workspace';
import { action } from '../context';
import { CliError } from '../errors';
import type { CommandGroup } from '../registry';

/** How long `serve` waits for a short command that owns the queue for a moment to finish. */
const WAIT_FOR_SHORT_OWNER_MS = 10_000;

/**
 * Owns the workspace queue, or explains who does. A short `sparkq` command owns it only while it runs, so that one is
 * waited for; any other owner (the extension host, another `serve`, a worker) already serves everyone.
 */
async function becomeOwner(workspace: string): Promise<QueueHandle> {
  if (teamStoreOf(workspace)) {
    throw new CliError(
      'this workspace is in team mode (sparkq.yml: store.kind postgres): there is no owner to serve, every sparkq process is a client of the team database; ' +
        'run workers with sparkq run --queue Q --watch',
    );
  }
  const deadline = Date.now() + WAIT_FOR_SHORT_OWNER_MS;
  for (;;) {
    const q = await openQueue(workspace, { role: 'serve', client: 'sparkq serve', syncOn: 'event-loop' });
    if (q.isOwner) return q;
    const o = q.ownerInfo;
    await q.close();
    if (o.role !== 'cli' || Date.now() >= deadline) {
      throw new CliError(
        `the queue is already owned by process ${o.pid} (${o.role}, generation ${o.generation}, since ${o.since}), which serves ` +
          'every command already; stop that process first if this one should serve instead',
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const serveCommand: CommandGroup = {
  register(program, io) {
    program
      .command('serve')
      .description('own the queue and serve other processes over IPC until interrupted (SIGINT/SIGTERM)')
      .action(
        action(io, async (ctx) => {
          const workspace = ctx.workspace();
          const q = await becomeOwner(workspace);
          const owner = q.owner;
          const info = q.ownerInfo;
          let stop!: (why: { signal: NodeJS.Signals } | { lost: true }) => void;
          const stopped = new Promise<{ signal: NodeJS.Signals } | { lost: true }>((r) => (stop = r));
          const unsubscribe = io.onStopSignal((signal) => stop({ signal }));
          owner?.onLost(() => stop({ lost: true }));
          const socketPath = owner?.socketPath ?? null;
          if (ctx.json) {
            ctx.out.printJson({ workspace, pid: info.pid, role: info.role, generation: info.generation, since: info.since, socketPath });
          } else {
            ctx.out.fields([
              ['serving', workspace],
              ['pid', String(info.pid)],
              ['generation', String(info.generation)],
              ['socket', socketPath ?? '(none)'],
              ['log', path.join(sparkqDirOf(workspace), 'logs', 'owner.log')],
            ]);
            ctx.out.line('Other sparkq commands, workers and VS Code reach the queue through this process. Stop with Ctrl+C.');
          }
          const why = await stopped;
          unsubscribe();
          await q.close();
          if ('lost' in why) {
            throw new CliError(`another process took over the queue from this one (generation ${info.generation}); see ${path.join(sparkqDirOf(workspace), 'logs', 'owner.log')}`);
          }
          if (!ctx.json) ctx.out.line(`Stopped on ${why.signal}: the queue is saved and ownership released; the next command takes over.`);
        }),
      );
  },
};
