import * as path from 'node:path';
import { Option } from 'commander';
import { isSparkqError } from '../../core/errors';
import { LIMITS } from '../../core/constants';
import type { JsonValue, ListTasksInput, Task, TaskPage, TaskPattern, TaskStatus, ValidateSpec } from '../../core/model';
import type * as Patterns from '../../core/patterns';
import type * as ConfigWatcher from '../../owner/configWatcher';
import type { QueueApi } from '../../api/contract';
import { intOption, parseJsonText, readTextArg, statusOption } from '../args';
import { action, type CommandContext } from '../context';
import { CliError, EXIT_USAGE } from '../errors';
import { taskDetailJson, taskJson } from '../json';
import type { CommandGroup } from '../registry';
import { printTaskBrief, printTaskDetail, TASK_HEADER, taskRows } from '../taskView';

interface EnqueueOptions {
  queue: string;
  prompt?: string;
  promptFile?: string;
  payload?: string;
  timeout?: number;
  priority?: number;
  after?: string[];
  idempotencyKey?: string;
  pattern?: string;
  var?: [string, string][];
  validateWith?: string;
  validatePrompt?: string;
  validateQueue?: string;
  maxRounds?: number;
}
interface RequeueOptions {
  failed?: boolean;
  idempotencyKey?: string;
  queue?: string;
  plan?: string;
  session?: string;
}
interface PeekOptions {
  queue: string;
}
interface ListOptions {
  session?: string;
  queue?: string;
  status?: TaskStatus[];
  stale?: boolean;
  tool?: string;
  plan?: string;
  limit: number;
  all?: boolean;
  jsonl?: boolean;
}

/** --limit of `tasks`: any whole number from 1 up (longer listings are fetched a page at a time). */
function limitOption(value: string): number {
  const n = /^\+?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new CliError(`--limit must be a whole number of at least 1 (or --all for every task), not ${JSON.stringify(value)}`);
  return n;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** --var NAME=VALUE of enqueue --pattern (repeatable); the value is everything after the first "=". */
function collectVar(value: string, previous: [string, string][] | undefined): [string, string][] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new CliError(`--var takes NAME=VALUE (a pattern variable and its value), not ${JSON.stringify(value)}`);
  const name = value.slice(0, eq);
  if ((previous ?? []).some(([n]) => n === name)) throw new CliError(`--var ${name} is given twice; give each variable once`);
  return [...(previous ?? []), [name, value.slice(eq + 1)]];
}

const DEFAULT_LIMIT = 50;
/** Tasks asked of the queue per request when a listing is longer (the queue's own maximum per page). */
const PAGE_SIZE = 1000;

/** Putting tasks on a queue and reading them: enqueue, peek, tasks, task, requeue. */
export const taskCommands: CommandGroup = {
  register(program, io) {
    program
      .command('enqueue')
      .description('put a task on a queue; prints the new task id')
      .argument('[tool]', 'the tool that runs the task (see tools in sparkq.yml); with --pattern, the pattern\'s tool when left out')
      .requiredOption('--queue <queue>', 'queue name or id')
      .addOption(new Option('--prompt <text>', 'what to do').conflicts('promptFile'))
      .option('--prompt-file <file>', 'read the prompt from a file (- for standard input)')
      .option('--payload <json>', 'structured input for the tool, as JSON')
      .option('--timeout <seconds>', 'timeout for this task (default: its task class)', intOption('--timeout', 1, LIMITS.maxTimeoutSeconds))
      .option('--priority <n>', 'higher runs first (default 0)', intOption('--priority', -LIMITS.maxPriority, LIMITS.maxPriority))
      .option('--after <task>', 'run only after this task has succeeded (repeatable)', collect)
      .option('--idempotency-key <key>', 'name this enqueue: repeating it with the same key (on this queue) prints the first task instead of adding one')
      .option('--pattern <name>', 'make the prompt from this prompt pattern (see sparkq patterns); --prompt, if given, is added after it')
      .option('--var <name=value>', 'a value for a variable of --pattern (repeatable)', collectVar)
      .option('--validate-with <tool>', 'check the result with this tool before dependents start; a fail requeues the task with the feedback')
      .option('--validate-prompt <text>', 'with --validate-with: what the validator checks')
      .option('--validate-queue <queue>', "with --validate-with: the validation task's queue (default the task's own)")
      .option('--max-rounds <n>', 'with --validate-with: rounds before the task stays failed (default 2)', intOption('--max-rounds', 1, 10))
      .action(
        action<EnqueueOptions>(io, (ctx, [givenTool], opts) => {
          if (opts.validateWith === undefined && (opts.validatePrompt !== undefined || opts.validateQueue !== undefined || opts.maxRounds !== undefined)) {
            ctx.command.error('--validate-prompt, --validate-queue and --max-rounds go with --validate-with TOOL', { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
          }
          let validate: ValidateSpec | undefined =
            opts.validateWith === undefined
              ? undefined
              : {
                  tool: opts.validateWith,
                  ...(opts.validatePrompt !== undefined ? { prompt: opts.validatePrompt } : {}),
                  ...(opts.validateQueue !== undefined ? { queue: opts.validateQueue } : {}),
                  ...(opts.maxRounds !== undefined ? { maxRounds: opts.maxRounds } : {}),
                };
          // Everything is read and checked before the queue is opened: a bad value enqueues nothing.
          if (opts.var !== undefined && opts.pattern === undefined) {
            ctx.command.error('--var gives a value to a variable of --pattern; name the pattern with --pattern NAME', { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
          }
          const own = opts.promptFile !== undefined ? readTextArg(io, '--prompt-file', opts.promptFile) : opts.prompt;
          let prompt = own;
          let pattern: TaskPattern | undefined;
          let tool = givenTool;
          if (opts.pattern !== undefined) {
            // Loaded for --pattern only: peek, tasks and task (this group's other commands, which agents run all the
            // time) never evaluate the pattern and config parsers.
            /* eslint-disable @typescript-eslint/no-require-imports */
            const { joinPrompts, patternLoader, renderPattern, taskPatternOf, unknownPattern } = require('../../core/patterns') as typeof Patterns;
            const { loadWorkspaceConfig } = require('../../owner/configWatcher') as typeof ConfigWatcher;
            /* eslint-enable @typescript-eslint/no-require-imports */
            const workspace = ctx.workspace();
            const loader = patternLoader(path.resolve(workspace, loadWorkspaceConfig(workspace).patternsDir));
            const found = loader.load(opts.pattern);
            if (found === null) throw unknownPattern(opts.pattern, loader);
            prompt = joinPrompts(renderPattern(found, Object.fromEntries(opts.var ?? [])), own);
            pattern = taskPatternOf(found);
            // The pattern's validator, unless --validate-with names one.
            if (validate === undefined && found.validate !== null) validate = { ...found.validate };
            tool ??= found.tool ?? undefined;
            if (tool === undefined) {
              ctx.command.error(`pattern ${found.name} names no tool; say which tool runs the task: sparkq enqueue TOOL --pattern ${found.name} …`, { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
            }
          } else if (tool === undefined) {
            ctx.command.error("missing required argument 'tool': say which tool runs the task (sparkq enqueue TOOL --queue QUEUE --prompt TEXT), or name a --pattern that has one", { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
          }
          const payload: JsonValue | undefined = opts.payload !== undefined ? parseJsonText('--payload', opts.payload) : undefined;
          if (prompt === undefined && payload === undefined) {
            throw new CliError('a task needs --prompt TEXT, --prompt-file FILE or --payload JSON (or a prompt and a payload), or --pattern NAME');
          }
          return ctx.withQueue(async (q) => {
            const task = await q.enqueue({
              queue: opts.queue,
              tool: tool!,
              ...(prompt !== undefined ? { prompt } : {}),
              ...(pattern !== undefined ? { pattern } : {}),
              ...(payload !== undefined ? { payload } : {}),
              ...(opts.timeout !== undefined ? { timeoutSeconds: opts.timeout } : {}),
              ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
              ...(opts.after !== undefined ? { after: opts.after } : {}),
              ...(opts.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : {}),
              ...(validate !== undefined ? { validate } : {}),
            });
            if (ctx.json) ctx.out.printJson(taskJson(task));
            else ctx.out.line(task.id);
          });
        }),
      );

    program
      .command('peek')
      .description('the task a claim would get next, unchanged; prints nothing when the queue is empty')
      .requiredOption('--queue <queue>', 'queue name or id')
      .action(
        action<PeekOptions>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q) => {
            const task = await q.peek(opts.queue);
            if (ctx.json) ctx.out.printJson(task === null ? null : taskJson(task));
            else if (task !== null) printTaskBrief(ctx.out, task);
          }),
        ),
      );

    program
      .command('tasks')
      .description('list tasks, newest first; long listings are fetched a page at a time and printed as they come')
      .option('--session <session>', 'only this session (name or id)')
      .option('--queue <queue>', 'only this queue (name or id)')
      .option('--status <status>', 'queued, running, succeeded or failed (several: comma-separated)', statusOption)
      .option('--stale', 'only running tasks past their timeout')
      .option('--tool <tool>', 'only tasks for this tool')
      .option('--plan <plan>', 'only tasks of this plan (its id)')
      .option('--limit <n>', 'at most this many, any number', limitOption, DEFAULT_LIMIT)
      .addOption(new Option('--all', 'every task that matches (to export a queue\'s history)').conflicts('limit'))
      .option('--jsonl', 'JSON Lines: one task per line, as --json shows each task')
      .action(
        action<ListOptions>(io, (ctx, _args, opts) => {
          if (opts.jsonl === true && ctx.json) {
            ctx.command.error('give --json (one JSON array) or --jsonl (one task per line), not both', { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
          }
          const filter: ListTasksInput = {
            ...(opts.session !== undefined ? { session: opts.session } : {}),
            ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
            ...(opts.status !== undefined ? { status: opts.status } : {}),
            ...(opts.stale === true ? { stale: true } : {}),
            ...(opts.tool !== undefined ? { tool: opts.tool } : {}),
            ...(opts.plan !== undefined ? { plan: opts.plan } : {}),
          };
          return ctx.withQueue(async (q) => {
            const print = taskPrinter(ctx, opts.jsonl === true);
            const { shown, more } = await eachTaskPage(q, filter, opts.all === true ? Infinity : opts.limit, (tasks) => print.page(tasks), () => ctx.out.drained());
            print.end(shown, more, opts.limit);
          });
        }),
      );

    program
      .command('task')
      .description('everything about one task: fields, timings, output and attempts')
      .argument('<task>', 'task id (tsk_…)')
      .action(
        action(io, (ctx, [id]) =>
          ctx.withQueue(async (q) => {
            const task = await q.getTask(id!);
            if (ctx.json) ctx.out.printJson(taskDetailJson(task));
            else printTaskDetail(ctx.out, task);
          }),
        ),
      );

    program
      .command('requeue')
      .description('put a failed task back on its queue as a new task (prints the new id); --failed: every failed task')
      .argument('[task]', 'the failed task (tsk_…)')
      .option('--failed', 'requeue every failed task not requeued yet (of --queue, --plan or --session; all without one)')
      .option('--queue <queue>', 'with --failed: only this queue')
      .option('--plan <plan>', 'with --failed: only this plan')
      .option('--session <session>', 'with --failed: only this session')
      .option('--idempotency-key <key>', 'name this requeue: repeating it with the same key prints the task it made instead of failing')
      .action(
        action<RequeueOptions>(io, (ctx, [id], opts) => {
          const scoped = opts.queue !== undefined || opts.plan !== undefined || opts.session !== undefined;
          if (opts.failed !== true) {
            if (id === undefined) throw new CliError('say which failed task to requeue (sparkq requeue TASK), or requeue them all with --failed');
            if (scoped) throw new CliError('--queue, --plan and --session go with --failed; to requeue one task, give only its id');
          } else if (opts.idempotencyKey !== undefined) {
            throw new CliError('--idempotency-key names the requeue of one task (sparkq requeue TASK --idempotency-key KEY); --failed requeues each failed task once anyway');
          } else if (id !== undefined) {
            throw new CliError(`give a task id or --failed, not both (sparkq requeue ${id}, or sparkq requeue --failed)`);
          }
          return ctx.withQueue(async (q) => {
            if (opts.failed !== true) {
              const task = await q.requeue(id!, opts.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : undefined);
              if (ctx.json) ctx.out.printJson(taskJson(task));
              else ctx.out.line(task.id);
              return;
            }
            const tasks = await q.requeueFailed({
              ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
              ...(opts.plan !== undefined ? { plan: opts.plan } : {}),
              ...(opts.session !== undefined ? { session: opts.session } : {}),
            });
            if (ctx.json) ctx.out.printJson(tasks.map(taskJson));
            else if (tasks.length === 0) ctx.out.line('No failed tasks to requeue.');
            else {
              for (const t of tasks) ctx.out.line(`${t.retryOf ?? ''} → ${t.id}  ${t.queue}${t.planKey !== null ? `  ${t.planKey}` : ''}`);
              ctx.out.line(`Requeued ${tasks.length} failed task${tasks.length === 1 ? '' : 's'}; tasks waiting on them wait on the new ones.`);
            }
          });
        }),
      );
  },
};

/**
 * Lists the tasks that match `filter`, newest first, up to `limit` (Infinity: all), a page of at most PAGE_SIZE at a
 * time: each page goes to `onPage` and is let go before the next is asked for, so a listing of any length holds one
 * page. `drained` says when the reader took a page (false: it has gone, and the rest is not fetched). The cursor is
 * the last task of a page, so tasks enqueued meanwhile (newer) neither shift nor repeat the older ones. A page whose
 * answer is too large for the owner to send (tasks with long prompts and output) is asked for again, smaller.
 */
export async function eachTaskPage(
  q: Pick<QueueApi, 'listTasks'>,
  filter: ListTasksInput,
  limit: number,
  onPage: (tasks: Task[]) => void,
  drained: () => Promise<boolean>,
): Promise<{ shown: number; more: boolean }> {
  let shown = 0;
  let before: string | undefined;
  let pageSize = PAGE_SIZE;
  for (;;) {
    const want = Math.min(pageSize, limit - shown);
    let page: TaskPage;
    try {
      page = await q.listTasks({ ...filter, limit: want, ...(before !== undefined ? { before } : {}) });
    } catch (e) {
      const fits = want > 1 ? fittingPageSize(e, want) : null;
      if (fits === null) throw e;
      pageSize = fits;
      continue;
    }
    onPage(page.tasks);
    shown += page.tasks.length;
    if (page.next === null) return { shown, more: false };
    if (shown >= limit) return { shown, more: true };
    if (!(await drained())) return { shown, more: true };
    before = page.next;
  }
}

/** When the owner could not send a page of `size` tasks in one frame: a smaller size that should fit; else null. */
function fittingPageSize(e: unknown, size: number): number | null {
  if (!isSparkqError(e)) return null;
  const bytes = e.details?.['frameBytes'];
  const limit = e.details?.['frameLimit'];
  if (typeof bytes !== 'number' || typeof limit !== 'number' || bytes <= limit) return null;
  return Math.max(1, Math.min(size - 1, Math.floor((size * limit * 0.8) / bytes)));
}

/** How `tasks` prints pages as they come: one JSON array (--json), JSON Lines (--jsonl), or one table. */
function taskPrinter(ctx: CommandContext, jsonl: boolean): { page(tasks: Task[]): void; end(shown: number, more: boolean, limit: number): void } {
  if (jsonl) return { page: (tasks) => ctx.out.jsonLines(tasks.map(taskJson)), end: () => undefined };
  if (ctx.json) {
    const array = ctx.out.jsonArray();
    return { page: (tasks) => array.push(tasks.map(taskJson)), end: () => array.end() };
  }
  const table = ctx.out.tableInParts(TASK_HEADER);
  return {
    page: (tasks) => {
      if (tasks.length > 0) table.rows(taskRows(tasks));
    },
    end: (shown, more, limit) => {
      if (shown === 0) ctx.out.line('No tasks match.');
      else if (more) ctx.out.line(ctx.out.style(`… more tasks; raise --limit (now ${limit}), list them all with --all, or narrow the filters`, 'dim'));
    },
  };
}
