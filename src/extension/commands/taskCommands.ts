import * as path from 'node:path';
import * as vscode from 'vscode';
import { splitShellWords } from '../../worker/shellWords';
import type { JsonValue, Task, ValidateSpec } from '../../core/model';
import { listPatterns, type PatternLoader, patternLoader } from '../../core/patterns';
import { type FromPattern, taskFromPattern } from '../patternEnqueue';
import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { UserFacingError } from '../errors';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandContext, type CommandFactory, withProgress } from './commandContext';
import { askPatternVariables, askText, confirm, pickDependencies, pickPattern, pickQueue, pickScript, pickTask, pickTool } from './pickers';
import { plural } from '../../core/text';

/** Tasks: enqueue, claim, complete, fail, requeue, show, purge. */

function workspaceDir(ctx: CommandContext): string {
  const dir = ctx.connection.workspaceDir;
  if (dir === undefined) throw new UserFacingError('Open a folder first: SparkQ keeps its queue in a workspace folder.');
  return dir;
}

function offerShow(task: Task, message: string): void {
  void vscode.window.showInformationMessage(message, 'Show').then((c) => {
    if (c === 'Show') void vscode.commands.executeCommand(CommandId.ShowTask, { task: task.id });
  });
}

/** The patterns folder sparkq.yml names (the command runs only in a trusted workspace: api() refuses otherwise). */
function patternsOf(ctx: CommandContext): PatternLoader {
  const dir = workspaceDir(ctx);
  return patternLoader(path.resolve(dir, loadWorkspaceConfig(dir).patternsDir));
}

export const enqueue: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Enqueue, ArgSchemas.enqueue, raw);
  const api = await ctx.connection.api('enqueue a task');
  const queue = args.queue ?? (await pickQueue(api, ctx.views.selection.queue, ctx.views.selection.session)).id;
  let tool = args.tool;
  let prompt = args.prompt;
  let payload: JsonValue | undefined = args.payload;
  // A prompt pattern, as `sparkq enqueue --pattern NAME --var k=v`: named, or offered from the palette when the folder has some.
  let made: FromPattern | undefined;
  let patternName = args.pattern;
  let values = args.vars;
  if (patternName === undefined && interactive && tool === undefined && prompt === undefined && payload === undefined) {
    const { patterns } = listPatterns(patternsOf(ctx));
    if (patterns.length > 0) {
      const chosen = await pickPattern(patterns);
      if (chosen !== null) {
        patternName = chosen.name;
        values ??= await askPatternVariables(chosen);
      }
    }
  }
  if (patternName !== undefined) {
    const r = taskFromPattern(patternsOf(ctx), patternName, values ?? {}, prompt);
    if (r.problems) throw new UserFacingError(r.problems.map((p) => p.message).join('\n'));
    made = r.made;
    prompt = made.prompt;
    tool ??= made.pattern.tool ?? undefined;
  }
  if (tool === undefined && !interactive) throw new UserFacingError(made ? `Pattern ${made.pattern.name} names no tool: say which tool runs the task (tool).` : 'Say which tool runs the task (tool).');
  if (tool === undefined) {
    const config = loadWorkspaceConfig(workspaceDir(ctx));
    const chosen = await pickTool(Object.values(config.tools));
    tool = chosen.name;
    if (chosen.knownKind === 'script' && prompt === undefined && payload === undefined) {
      const script = await pickScript(await api.scripts());
      const argText = await askText({ title: `SparkQ: Arguments for ${script.name}`, prompt: script.inputs || 'Arguments (shell words; optional)', required: false });
      payload = { script: script.name, args: splitShellWords(argText) };
    }
  }
  if (prompt === undefined && payload === undefined && interactive) {
    prompt = await askText({ title: `SparkQ: Enqueue for ${tool}`, prompt: 'What should the task do?', placeHolder: 'The prompt' });
  }
  const validate: ValidateSpec | undefined = args.validate ?? made?.validate;
  let after = args.after;
  if (after === undefined && interactive) after = await pickDependencies(api, (await api.getQueue(queue)).sessionId);
  const task = await withProgress('Enqueueing…', () =>
    api.enqueue({
      queue,
      tool: tool,
      ...(prompt !== undefined ? { prompt } : {}),
      ...(payload !== undefined ? { payload } : {}),
      ...(args.timeoutSeconds !== undefined ? { timeoutSeconds: args.timeoutSeconds } : {}),
      ...(args.priority !== undefined ? { priority: args.priority } : {}),
      ...(after !== undefined && after.length > 0 ? { after } : {}),
      ...(made ? { pattern: made.record } : {}),
      ...(validate !== undefined ? { validate } : {}),
    }),
  );
  ctx.log.info(`enqueued ${task.id} (${task.tool}) on ${task.queue}${made ? ` from pattern ${made.pattern.name}` : ''}`);
  if (interactive) offerShow(task, `Enqueued ${task.id} on ${task.queue}.`);
  return task;
};

export const claim: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Claim, ArgSchemas.claim, raw);
  const api = await ctx.connection.api('claim a task');
  const queue = args.queue ?? (await pickQueue(api, ctx.views.selection.queue, ctx.views.selection.session)).id;
  const result = await withProgress('Claiming…', () => api.claim({ queue, worker: args.worker ?? `vscode-user-${process.pid}` }));
  if (interactive) {
    if (!result) void vscode.window.showInformationMessage('Nothing to claim: that queue has no queued task.');
    else offerShow(result.task, `Claimed ${result.task.id}; finish it with "SparkQ: Complete Task" or "SparkQ: Fail Task".`);
  }
  if (result) ctx.log.info(`claimed ${result.task.id} from ${result.task.queue}`);
  return result;
};

export const complete: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Complete, ArgSchemas.complete, raw);
  const api = await ctx.connection.api('complete a task');
  const task = args.task ?? (await pickTask(api, { status: 'running', queue: ctx.views.selection.queue, title: 'Complete which task?', empty: 'No task is running.' })).id;
  const summary = args.summary ?? (await askText({ title: 'SparkQ: Complete Task', prompt: 'Summary: what was done?' }));
  const done = await withProgress('Completing…', () =>
    api.complete({ task, summary, ...(args.data !== undefined ? { data: args.data } : {}), ...(args.lease ? { lease: args.lease } : {}) }),
  );
  ctx.log.info(`completed ${done.id}`);
  if (interactive) void vscode.window.showInformationMessage(`Completed ${done.id}.`);
  return done;
};

export const fail: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Fail, ArgSchemas.fail, raw);
  const api = await ctx.connection.api('fail a task');
  const task = args.task ?? (await pickTask(api, { status: 'running', queue: ctx.views.selection.queue, title: 'Fail which task?', empty: 'No task is running.' })).id;
  const error = args.error ?? (await askText({ title: 'SparkQ: Fail Task', prompt: 'What went wrong?' }));
  const failed = await withProgress('Failing…', () =>
    api.fail({ task, error, ...(args.data !== undefined ? { data: args.data } : {}), ...(args.lease ? { lease: args.lease } : {}) }),
  );
  ctx.log.info(`failed ${failed.id}`);
  if (interactive) void vscode.window.showInformationMessage(`Failed ${failed.id}.`);
  return failed;
};

export const requeue: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Requeue, ArgSchemas.requeue, raw);
  const api = await ctx.connection.api('requeue a task');
  const task = args.task ?? (await pickTask(api, { status: 'failed', queue: ctx.views.selection.queue, title: 'Requeue which failed task?', empty: 'No task has failed.' })).id;
  const fresh = await withProgress('Requeueing…', () => api.requeue(task));
  ctx.log.info(`requeued ${task} as ${fresh.id}`);
  if (interactive) offerShow(fresh, `Requeued as ${fresh.id}.`);
  return fresh;
};

export const showTask: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.ShowTask, ArgSchemas.showTask, raw);
  const reader = await ctx.connection.reader();
  const task = args.task ?? (await pickTask(reader, { queue: ctx.views.selection.queue, title: 'Show which task?', empty: 'There are no tasks yet.' })).id;
  return ctx.taskDocuments.show(task, { preview: args.preview ?? true });
};

export const purge: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Purge, ArgSchemas.purge, raw);
  const api = await ctx.connection.api('purge finished tasks');
  let days = args.olderThanDays;
  if (days === undefined) {
    const configured = loadWorkspaceConfig(workspaceDir(ctx)).purgeAfterDays ?? 30;
    const text = await askText({
      title: 'SparkQ: Purge Finished Tasks',
      prompt: 'Delete finished tasks older than this many days',
      value: String(configured),
      validateInput: (v) => (/^\d+(\.\d+)?$/.test(v.trim()) ? null : 'A number of days, e.g. 30'),
    });
    days = Number(text.trim());
  }
  if (interactive) await confirm(`Delete every finished task older than ${plural(days, 'day')}? This cannot be undone.`, 'Purge');
  const olderThanDays = days;
  const result = await withProgress(`Purging tasks older than ${plural(olderThanDays, 'day')}…`, () => api.purge({ olderThanDays }), true);
  ctx.log.info(`purged ${plural(result.purged, 'finished task')} older than ${plural(olderThanDays, 'day')}`);
  if (interactive) void vscode.window.showInformationMessage(`Purged ${plural(result.purged, 'finished task')}.`);
  await ctx.views.refreshNow();
  return result;
};
