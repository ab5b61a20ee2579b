import type { Queue } from '../../core/model';
import { intOption } from '../args';
import { action } from '../context';
import { queueJson } from '../json';
import { type Cell, type Output, shortTime } from '../output';
import type { CommandGroup } from '../registry';

interface CreateOptions {
  session: string;
  instructions?: string;
  workdir?: string;
  maxWorkers?: number;
}
interface ListOptions {
  session?: string;
  all?: boolean;
}

export const QUEUE_HEADER = ['QUEUE', 'SESSION', 'STATUS', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STALE', 'ID'];

export function queueRows(out: Output, queues: Queue[]): Cell[][] {
  const n = (v: number, style: 'cyan' | 'yellow' | 'green' | 'red' | 'magenta'): Cell => ({ text: String(v), style: v > 0 ? style : undefined });
  return queues.map((q) => [
    q.name,
    q.session,
    { text: q.status, style: q.status === 'ended' ? 'dim' : undefined },
    n(q.counts.queued, 'cyan'),
    n(q.counts.running, 'yellow'),
    n(q.counts.succeeded, 'green'),
    n(q.counts.failed, 'red'),
    n(q.stale, 'magenta'),
    { text: q.id, style: out.colour ? 'dim' : undefined },
  ]);
}

export const queueCommands: CommandGroup = {
  register(program, io) {
    const queue = program.command('queue').description('queues inside a session: create, list, end');

    queue
      .command('create')
      .description('create a queue in a session')
      .argument('<name>', 'queue name')
      .requiredOption('--session <session>', 'the session (name or id) the queue belongs to')
      .option('--instructions <text>', 'instructions handed to every worker with each task it claims')
      .option('--workdir <dir>', 'folder the queue’s tasks run in')
      .option('--max-workers <n>', 'how many workers may work the queue at once (default 1)', intOption('--max-workers', 1, 64))
      .action(
        action<CreateOptions>(io, (ctx, [name], opts) =>
          ctx.withQueue(async (q) => {
            const created = await q.createQueue({
              name: name!,
              session: opts.session,
              ...(opts.instructions !== undefined ? { instructions: opts.instructions } : {}),
              ...(opts.workdir !== undefined ? { workdir: opts.workdir } : {}),
              ...(opts.maxWorkers !== undefined ? { maxWorkers: opts.maxWorkers } : {}),
            });
            if (ctx.json) ctx.out.printJson(queueJson(created));
            else ctx.out.line(`Created queue ${created.name} (${created.id}) in session ${created.session}`);
          }),
        ),
      );

    queue
      .command('list')
      .description('list active queues with their task counts')
      .option('--session <session>', 'only the queues of this session (name or id)')
      .option('--all', 'include ended queues')
      .action(
        action<ListOptions>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q) => {
            const queues = await q.listQueues({ ...(opts.session !== undefined ? { session: opts.session } : {}), includeEnded: opts.all === true });
            if (ctx.json) {
              ctx.out.printJson(queues.map(queueJson));
              return;
            }
            if (queues.length === 0) {
              ctx.out.line('No queues. Create one: sparkq queue create NAME --session NAME');
              return;
            }
            ctx.out.table(QUEUE_HEADER, queueRows(ctx.out, queues));
          }),
        ),
      );

    queue
      .command('end')
      .description('end a queue: it takes no new tasks (its tasks stay readable)')
      .argument('<queue>', 'queue name or id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q) => {
            const ended = await q.endQueue(ref!);
            if (ctx.json) ctx.out.printJson(queueJson(ended));
            else ctx.out.line(`Ended queue ${ended.name} (${ended.id}) at ${shortTime(ended.endedAt)}`);
          }),
        ),
      );
  },
};
