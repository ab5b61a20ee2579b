import * as vscode from 'vscode';
import { terminalName, type WorkerRecord } from '../workerTerminals';
import type { Queue } from '../../core/model';
import { UserFacingError } from '../errors';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';
import { pickQueue, pickQueueOrSession, pickWorkerCount } from './pickers';

/** Worker terminals: start one on a queue, start several (a queue's maxWorkers, or one per queue of a session), stop. */

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

interface StartedWorkers {
  queueId: string;
  queue: string;
  /** Worker names of the terminals this call opened. */
  opened: string[];
  /** Worker names of terminals that were open already and now count towards `count`. */
  kept: string[];
  terminals: string[];
}

/**
 * `SparkQ: Start Workers`: `{ queue, count? }` makes `count` (default: the queue's maxWorkers) worker terminals work
 * the queue; `{ session }` opens one worker terminal on each active queue of the session that has none.
 */
export const startWorkers: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.StartWorkers, ArgSchemas.startWorkers, raw);
  if (args.queue !== undefined && args.session !== undefined) throw new UserFacingError(`${CommandId.StartWorkers}: give either queue or session, not both.`);
  if (args.session !== undefined && args.count !== undefined) throw new UserFacingError(`${CommandId.StartWorkers}: count goes with queue; with session, each queue gets one worker.`);
  // Workers run the tools of sparkq.yml: never in Restricted Mode, whatever the menus show.
  const api = await ctx.connection.api('start workers');
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined) throw new UserFacingError('Open a folder first.');

  let target: { queue: Queue } | { session: string };
  if (args.queue !== undefined) target = { queue: await api.getQueue(args.queue) };
  else if (args.session !== undefined) target = { session: args.session };
  else target = await pickQueueOrSession(api, ctx.views.selection.queue, ctx.views.selection.session);

  if ('session' in target) {
    const session = await api.getSession(target.session);
    if (session.status === 'ended') throw new UserFacingError(`Session "${session.name}" has ended; its queues take no more work.`);
    const queues = await api.listQueues({ session: session.id });
    if (queues.length === 0) throw new UserFacingError(`Session "${session.name}" has no active queue. Create one first ("SparkQ: Create Queue").`, [{ title: 'Create Queue', command: CommandId.CreateQueue }]);
    const results: StartedWorkers[] = [];
    await withProgress(`Starting workers for ${session.name}…`, async () => {
      for (const queue of queues) results.push(startedWorkers(queue, await ctx.workers.startMany(queue, dir, Math.max(1, ctx.workers.countOf(queue.id)))));
    });
    const opened = results.reduce((n, r) => n + r.opened.length, 0);
    ctx.log.info(`started ${opened} worker(s) for session ${session.name}`);
    if (interactive) void vscode.window.showInformationMessage(`Started ${opened} worker terminal${opened === 1 ? '' : 's'} for session ${session.name} (${queues.length} queue${queues.length === 1 ? '' : 's'}).`);
    return { session: session.name, queues: results };
  }

  const queue = target.queue;
  if (queue.status === 'ended') throw new UserFacingError(`Queue "${queue.name}" has ended; create a new queue to run more tasks.`);
  const count = args.count ?? (interactive && queue.maxWorkers > 1 ? await pickWorkerCount(queue, ctx.workers.countOf(queue.id)) : queue.maxWorkers);
  const started = await withProgress(`Starting ${count} worker${count === 1 ? '' : 's'} on ${queue.name}…`, () => ctx.workers.startMany(queue, dir, count));
  const result = startedWorkers(queue, started);
  ctx.log.info(`workers on ${queue.name}: opened ${result.opened.length}, kept ${result.kept.length}`);
  if (interactive && result.opened.length === 0) void vscode.window.showInformationMessage(`Queue "${queue.name}" already has ${result.kept.length} worker terminal${result.kept.length === 1 ? '' : 's'} in this window.`);
  return result;
};

function startedWorkers(queue: Queue, started: { opened: WorkerRecord[]; kept: WorkerRecord[] }): StartedWorkers {
  const all = [...started.kept, ...started.opened];
  return {
    queueId: queue.id,
    queue: queue.name,
    opened: started.opened.map((r) => r.worker),
    kept: started.kept.map((r) => r.worker),
    terminals: all.map((r) => terminalName(queue.name, r.terminalIndex ?? 1)),
  };
}
