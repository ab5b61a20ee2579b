import * as vscode from 'vscode';
import type { Queue } from '../../core/model';
import { UserFacingError } from '../errors';
import { formatClock } from '../views/taskPresentation';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';
import { type RequeueScope, askText, pickPauseDuration, pickQueue, pickRequeueScope } from './pickers';
import { plural } from '../../core/text';

/** Pausing and resuming a queue, and requeueing the failed tasks of a queue, plan or session at once. */

function pausedText(q: Queue): string {
  return q.pausedUntil ? `until ${formatClock(q.pausedUntil)}` : 'until resumed';
}

export const pauseQueue: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.PauseQueue, ArgSchemas.pauseQueue, raw);
  const api = await ctx.connection.api('pause a queue');
  let ref = args.queue;
  if (ref === undefined) {
    const active = (await api.listQueues(ctx.views.selection.session ? { session: ctx.views.selection.session.id } : {})).filter((q) => !q.paused);
    if (active.length === 0) throw new UserFacingError('Every active queue is paused already (or there is none).');
    ref = (await pickQueue({ ...api, listQueues: () => Promise.resolve(active) }, ctx.views.selection.queue)).id;
  }
  let forSeconds = args.forSeconds;
  let reason = args.reason;
  if (interactive && forSeconds === undefined) {
    const current = await api.getQueue(ref);
    forSeconds = await pickPauseDuration(current);
    if (reason === undefined) reason = (await askText({ title: `SparkQ: Pause ${current.name}`, prompt: 'Why? (optional, shown with the queue)', required: false })).trim() || undefined;
  }
  const queueRef = ref;
  const paused = await withProgress('Pausing the queue…', () =>
    api.pauseQueue({ queue: queueRef, ...(forSeconds !== undefined ? { forSeconds } : {}), ...(reason !== undefined ? { reason } : {}) }),
  );
  ctx.log.info(`paused queue ${paused.name} ${pausedText(paused)}${paused.pauseReason ? ` (${paused.pauseReason})` : ''}`);
  await ctx.views.refreshNow();
  if (interactive) void vscode.window.showInformationMessage(`Paused queue "${paused.name}" ${pausedText(paused)}. Running tasks go on.`);
  return paused;
};

export const resumeQueue: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.ResumeQueue, ArgSchemas.resumeQueue, raw);
  const api = await ctx.connection.api('resume a queue');
  let ref = args.queue;
  if (ref === undefined) {
    const paused = (await api.listQueues({})).filter((q) => q.paused);
    if (paused.length === 0) throw new UserFacingError('No queue is paused.');
    ref = (await pickQueue({ ...api, listQueues: () => Promise.resolve(paused) }, ctx.views.selection.queue)).id;
  }
  const queueRef = ref;
  const resumed = await withProgress('Resuming the queue…', () => api.resumeQueue(queueRef));
  ctx.log.info(`resumed queue ${resumed.name}`);
  await ctx.views.refreshNow();
  if (interactive) void vscode.window.showInformationMessage(`Resumed queue "${resumed.name}".`);
  return resumed;
};

/** `{ queue }`, `{ plan }`, `{ session }` or `{}` (every failed task); from the palette, asks which. */
export const requeueFailed: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.RequeueFailed, ArgSchemas.requeueFailed, raw);
  const given = [args.queue, args.plan, args.session].filter((x) => x !== undefined).length;
  if (given > 1) throw new UserFacingError(`${CommandId.RequeueFailed}: give one of queue, plan or session (or none for every failed task).`);
  const api = await ctx.connection.api('requeue failed tasks');
  let scope: RequeueScope | { plan: string } =
    args.queue !== undefined ? { queue: args.queue } : args.session !== undefined ? { session: args.session } : args.plan !== undefined ? { plan: args.plan } : {};
  let label: string;
  if (given === 0 && interactive) ({ scope, label } = await pickRequeueScope(api, ctx.views.selection.queue));
  else if (args.queue !== undefined) label = (await api.getQueue(args.queue)).name;
  else if (args.session !== undefined) label = (await api.getSession(args.session)).name;
  else label = args.plan !== undefined ? `plan ${args.plan}` : 'every queue';
  const requeued = await withProgress('Requeueing failed tasks…', () => api.requeueFailed(scope));
  ctx.log.info(`requeued ${plural(requeued.length, 'failed task')} of ${label}`);
  await ctx.views.refreshNow();
  if (interactive) {
    void vscode.window.showInformationMessage(
      requeued.length === 0 ? `No failed task of ${label} needed requeueing.` : `Requeued ${requeued.length} failed task${requeued.length === 1 ? '' : 's'} of ${label}.`,
    );
  }
  return requeued;
};
