import * as vscode from 'vscode';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';
import { askText, confirm, pickQueue, pickSession } from './pickers';
import { isolationFor, pruneEndedQueue } from './changeCommands';

/** Sessions and queues: create and end. Each returns the session or queue as it now is. */

export const createSession: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.CreateSession, ArgSchemas.createSession, raw);
  const api = await ctx.connection.api('create a session');
  const name = args.name ?? (await askText({ title: 'SparkQ: Create Session', prompt: 'Session name', placeHolder: 'e.g. api-v2' })).trim();
  const description = args.description ?? (interactive && args.name === undefined ? await askText({ title: 'SparkQ: Create Session', prompt: 'Description (optional)', required: false }) : undefined);
  const session = await withProgress(`Creating session ${name}…`, () => api.createSession({ name, ...(description ? { description } : {}) }));
  ctx.log.info(`created session ${session.name} (${session.id})`);
  await ctx.views.refreshNow();
  return session;
};

export const endSession: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.EndSession, ArgSchemas.endSession, raw);
  const api = await ctx.connection.api('end a session');
  const ref = args.session ?? (await pickSession(api, ctx.views.selection.session)).id;
  if (interactive) {
    const s = await api.getSession(ref);
    await confirm(`End session "${s.name}"? Its queues end too; their tasks stay readable.`, 'End Session');
  }
  const session = await withProgress('Ending session…', () => api.endSession(ref));
  for (const q of await api.listQueues({ session: session.id, includeEnded: true })) if (ctx.workers.has(q.id)) await ctx.workers.stop(q.id);
  ctx.log.info(`ended session ${session.name}`);
  await ctx.views.refreshNow();
  return session;
};

export const createQueue: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.CreateQueue, ArgSchemas.createQueue, raw);
  const api = await ctx.connection.api('create a queue');
  const session = args.session ?? (await pickSession(api, ctx.views.selection.session)).id;
  const name = args.name ?? (await askText({ title: 'SparkQ: Create Queue', prompt: 'Queue name', placeHolder: 'e.g. Back End' })).trim();
  const instructions =
    args.instructions ??
    (interactive && args.name === undefined ? await askText({ title: 'SparkQ: Create Queue', prompt: 'Instructions for every task of this queue (optional)', required: false }) : undefined);
  const isolation = await isolationFor(ctx, { interactive, isolation: args.isolation, base: args.base, baseFollow: args.baseFollow, workdir: args.workdir });
  const queue = await withProgress(`Creating queue ${name}…`, () =>
    api.createQueue({
      name,
      session,
      ...(isolation ? { isolation } : {}),
      ...(instructions ? { instructions } : {}),
      ...(args.workdir ? { workdir: args.workdir } : {}),
      ...(args.maxWorkers ? { maxWorkers: args.maxWorkers } : {}),
      ...(args.maxAttempts ? { maxAttempts: args.maxAttempts } : {}),
    }),
  );
  ctx.log.info(`created queue ${queue.name} in ${queue.session} (${queue.id})${queue.isolation ? `, a worktree per task from ${queue.isolation.baseRef ?? queue.isolation.baseCommit}` : ''}`);
  await ctx.views.refreshNow();
  return queue;
};

export const endQueue: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.EndQueue, ArgSchemas.endQueue, raw);
  const api = await ctx.connection.api('end a queue');
  const ref = args.queue ?? (await pickQueue(api, ctx.views.selection.queue, ctx.views.selection.session)).id;
  const current = await api.getQueue(ref);
  if (interactive) await confirm(`End queue "${current.name}"? Its tasks stay readable; no new tasks can be added.`, 'End Queue');
  if (ctx.workers.has(current.id)) await ctx.workers.stop(current.id);
  const queue = await withProgress('Ending queue…', () => api.endQueue(ref));
  ctx.log.info(`ended queue ${queue.name}`);
  await ctx.views.refreshNow();
  if (current.isolation && ctx.isTrusted()) {
    // A worktree queue: offer to prune its merged worktrees (asked in a notification, so the command returns at once).
    const pruning = pruneEndedQueue(ctx, api, queue, { interactive, prune: args.prune });
    if (!interactive) {
      const pruned = await pruning;
      ctx.log.info(`ended queue ${queue.name}: pruned ${pruned.removed} merged worktree(s) or branch(es), ${pruned.unmerged} unmerged kept`);
    } else void pruning.catch((e: unknown) => ctx.log.error(`could not offer to prune the worktrees of ${queue.name}`, e));
  } else if (interactive) void vscode.window.showInformationMessage(`Queue "${queue.name}" ended.`);
  return queue;
};
