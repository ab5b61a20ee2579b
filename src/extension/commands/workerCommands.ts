import { UserFacingError } from '../errors';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';
import { pickQueue } from './pickers';

/** Worker terminals: start one on a queue, stop it. */

export const startWorker: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.StartWorker, ArgSchemas.startWorker, raw);
  // A worker runs the tools of sparkq.yml: never in Restricted Mode, whatever the menus show.
  const api = await ctx.connection.api('start a worker');
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined) throw new UserFacingError('Open a folder first.');
  const queue = args.queue !== undefined ? await api.getQueue(args.queue) : await pickQueue(api, ctx.views.selection.queue, ctx.views.selection.session);
  if (queue.status === 'ended') throw new UserFacingError(`Queue "${queue.name}" has ended; create a new queue to run more tasks.`);
  const started = await withProgress(`Starting a worker on ${queue.name}…`, () => ctx.workers.start(queue, dir));
  return { queueId: queue.id, queue: queue.name, worker: started.record.worker, pid: started.record.pid ?? null, terminal: started.terminal.name, reused: started.reused };
};

export const stopWorker: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.StopWorker, ArgSchemas.stopWorker, raw);
  const running = ctx.workers.list();
  let queueId: string;
  if (args.queue !== undefined) {
    const match = running.find((w) => w.record.queueId === args.queue || w.record.queueName === args.queue);
    if (!match) return { stopped: false };
    queueId = match.record.queueId;
  } else {
    if (running.length === 0) throw new UserFacingError('No worker terminal is open in this window.');
    const reader = await ctx.connection.reader();
    const queues = (await reader.listQueues({ includeEnded: true })).filter((q) => ctx.workers.has(q.id));
    queueId = (await pickQueue({ ...reader, listQueues: () => Promise.resolve(queues) }, ctx.views.selection.queue)).id;
  }
  const stopped = await withProgress('Stopping the worker…', () => ctx.workers.stop(queueId));
  return { stopped };
};
