import { Option } from 'commander';
import type { JsonValue, Usage } from '../../core/model';
import { checkedJson, parseJsonText, readTextArg } from '../args';
import { action, type CommandContext } from '../context';
import { CliError, EXIT_USAGE } from '../errors';
import { claimJson, taskJson } from '../json';
import type { CommandGroup } from '../registry';
import { printClaim, worktreeClaimNote } from '../taskView';

interface ClaimOptions {
  queue?: string;
  worker?: string;
}
interface DataOptions {
  data?: string;
  dataJson?: string;
  usage?: string;
  lease?: string;
}
interface CompleteOptions extends DataOptions {
  summary?: string;
  dataFile?: string;
}
interface FailOptions extends DataOptions {
  error?: string;
}

const USAGE_HELP = 'tokens and cost the task used, as JSON: {"inputTokens":…, "cachedInputTokens":…, "outputTokens":…, "costUsd":…, "model":"…"}';

/** --usage: a JSON object; its fields are checked by the queue (unknown ones are refused there). */
function usageOf(text: string | undefined): Usage | undefined {
  if (text === undefined) return undefined;
  const v = parseJsonText('--usage', text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`--usage must be a JSON object, e.g. --usage '{"inputTokens":1200,"outputTokens":300,"model":"gpt-5"}'`);
  return v;
}

/**
 * The summary of `complete` or the error of `fail`: the positional word agents type (`complete TASK "summary"`), or the
 * option scripts pass (`--summary`). Both is fine when they agree; neither, or two different texts, is a usage error.
 */
function textOf(ctx: CommandContext, positional: string | undefined, option: string | undefined, name: 'summary' | 'error'): string {
  const usage = (message: string): never => ctx.command.error(message, { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
  if (positional !== undefined && option !== undefined && positional !== option) {
    usage(`the ${name} is given twice, differently (as the second argument and as --${name}); give it once`);
  }
  const text = positional ?? option;
  if (text === undefined) {
    usage(
      name === 'summary'
        ? 'say what was done: sparkq complete TASK "what was done, where, counts" (or --summary TEXT)'
        : 'say what went wrong: sparkq fail TASK "what went wrong and what would fix it" (or --error TEXT)',
    );
  }
  return text!;
}

/**
 * --data TEXT: a JSON object or array is stored as JSON, anything else as the text it is (agents write free text).
 * Text that looks like JSON but does not parse is stored as text too, with a note; --data-json refuses it instead.
 */
function freeData(ctx: CommandContext, text: string): JsonValue {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    let parsed: JsonValue | undefined;
    try {
      parsed = JSON.parse(t) as JsonValue;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      ctx.io.stderr.write(`note: --data is not valid JSON (${why}); it was stored as text. Use --data-json to have bad JSON refused.\n`);
    }
    if (parsed !== undefined) return checkedJson('--data', parsed);
  }
  return text;
}

/** The result data of --data, --data-json or --data-file; undefined when none is given. */
function dataOf(ctx: CommandContext, opts: DataOptions & { dataFile?: string }): JsonValue | undefined {
  if (opts.data !== undefined) return freeData(ctx, opts.data);
  if (opts.dataJson !== undefined) return parseJsonText('--data-json', opts.dataJson);
  if (opts.dataFile !== undefined) return parseJsonText('--data-file', readTextArg(ctx.io, '--data-file', opts.dataFile));
  return undefined;
}

const DATA_HELP = 'result data: a JSON object or array is stored as JSON, any other text as text (e.g. --data "Line 150: add rate limiting")';
const DATA_JSON_HELP = 'result data as strict JSON: anything that does not parse is refused';

/** The lease from --lease, else from SPARKQ_LEASE (a worker exports it for the task it runs). */
function leaseOf(ctx: CommandContext, given: string | undefined): string | undefined {
  if (given !== undefined) return given;
  const env = ctx.io.env['SPARKQ_LEASE'];
  return env !== undefined && env !== '' ? env : undefined;
}

/** What a worker does with a task: claim it, then complete or fail it. */
export const workerCommands: CommandGroup = {
  register(program, io) {
    program
      .command('claim')
      .description('claim the next task of a queue: prints the task, the queue instructions and the lease; nothing when empty')
      .option('--queue <queue>', 'queue name or id')
      .option('--worker <name>', 'who claims it, as task listings show it')
      .action(
        action<ClaimOptions>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q) => {
            if (opts.queue === undefined) {
              // Deliberately not a usage error: the answer an agent needs is which queues there are to claim from.
              const queues = await q.listQueues();
              const list = queues.map((x) => `${x.name} (${x.counts.queued} queued)`).join(', ');
              throw new CliError(
                queues.length === 0
                  ? 'say which queue to claim from with --queue NAME; there are no active queues yet (sparkq queue create NAME --session NAME)'
                  : `say which queue to claim from with --queue NAME; queues: ${list}`,
              );
            }
            const claim = await q.claim({ queue: opts.queue, ...(opts.worker !== undefined ? { worker: opts.worker } : {}) });
            if (ctx.json) ctx.out.printJson(claim === null ? null : claimJson(claim));
            else if (claim !== null) {
              printClaim(ctx.out, claim);
              const queue = await q.getQueue(claim.task.queueId);
              if (queue.isolation) ctx.out.line(ctx.out.style(worktreeClaimNote(queue.name), 'yellow'));
            }
          }),
        ),
      );

    program
      .command('complete')
      .description('finish a claimed task successfully: sparkq complete TASK "what was done" [--data TEXT]')
      .argument('<task>', 'task id (tsk_…)')
      .argument('[summary]', 'what was done, in a sentence or two (the same as --summary)')
      .option('--summary <text>', 'what was done (instead of the second argument)')
      .addOption(new Option('--data <text>', DATA_HELP).conflicts(['dataJson', 'dataFile']))
      .addOption(new Option('--data-json <json>', DATA_JSON_HELP).conflicts('dataFile'))
      .option('--data-file <file>', 'read the result data (strict JSON) from a file (- for standard input)')
      .option('--usage <json>', USAGE_HELP)
      .option('--lease <lease>', 'the lease from the claim (default: $SPARKQ_LEASE)')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  sparkq complete tsk_abc123 "Found 5 TODO comments in src/api.py" --data "Line 150: rate limiting, Line 320: caching"\n' +
          '  sparkq complete tsk_abc123 --summary "Added 3 endpoints; 12 tests pass" --data-json \'{"files":["api/users.ts"]}\'\n',
      )
      .action(
        action<CompleteOptions>(io, (ctx, [task, positional], opts) => {
          const summary = textOf(ctx, positional, opts.summary, 'summary');
          const data = dataOf(ctx, opts);
          const lease = leaseOf(ctx, opts.lease);
          const usage = usageOf(opts.usage);
          return ctx.withQueue(async (q) => {
            const done = await q.complete({
              task: task!,
              summary,
              ...(data !== undefined ? { data } : {}),
              ...(usage !== undefined ? { usage } : {}),
              ...(lease !== undefined ? { lease } : {}),
            });
            if (ctx.json) ctx.out.printJson(taskJson(done));
            else ctx.out.line(`Completed ${done.id} (${done.status})`);
          });
        }),
      );

    program
      .command('fail')
      .description('finish a claimed task as failed: sparkq fail TASK "what went wrong" [--data TEXT]')
      .argument('<task>', 'task id (tsk_…)')
      .argument('[error]', 'what went wrong and what would fix it (the same as --error)')
      .option('--error <text>', 'what went wrong (instead of the second argument)')
      .addOption(new Option('--data <text>', 'partial results: a JSON object or array is stored as JSON, any other text as text').conflicts('dataJson'))
      .option('--data-json <json>', DATA_JSON_HELP)
      .option('--usage <json>', USAGE_HELP)
      .option('--lease <lease>', 'the lease from the claim (default: $SPARKQ_LEASE)')
      .addHelpText('after', '\nExample:\n  sparkq fail tsk_abc123 "tests fail in api/users.ts: missing fixture users.json" --data "3 of 5 endpoints done"\n')
      .action(
        action<FailOptions>(io, (ctx, [task, positional], opts) => {
          const error = textOf(ctx, positional, opts.error, 'error');
          const data = dataOf(ctx, opts);
          const lease = leaseOf(ctx, opts.lease);
          const usage = usageOf(opts.usage);
          return ctx.withQueue(async (q) => {
            const failed = await q.fail({
              task: task!,
              error,
              ...(data !== undefined ? { data } : {}),
              ...(usage !== undefined ? { usage } : {}),
              ...(lease !== undefined ? { lease } : {}),
            });
            if (ctx.json) ctx.out.printJson(taskJson(failed));
            else if (failed.status === 'queued') ctx.out.line(`Attempt ${failed.attempt} of ${failed.id} failed; it will be retried after ${failed.notBefore ?? 'a delay'}: ${failed.error ?? error}`);
            else ctx.out.line(`Failed ${failed.id}: ${failed.error ?? error}`);
          });
        }),
      );

    program
      .command('verdict')
      .description('give the verdict of a claimed validation task on the task it checks: sparkq verdict TASK pass|fail "feedback"')
      .argument('<task>', 'the validation task (tsk_…)')
      .argument('<verdict>', 'pass or fail')
      .argument('[feedback]', 'what is wrong and what to fix (it goes to the next round), or why it passes')
      .option('--lease <lease>', 'the lease from the claim (default: $SPARKQ_LEASE)')
      .addHelpText('after', '\nExample:\n  sparkq verdict tsk_abc123 fail "GET /users returns 500 when the table is empty; add the empty case and a test"\n')
      .action(
        action<{ lease?: string }>(io, (ctx, [task, verdict, feedback], opts) => {
          if (verdict !== 'pass' && verdict !== 'fail') {
            ctx.command.error(`a verdict is pass or fail, not ${JSON.stringify(verdict)}`, { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
          }
          const lease = leaseOf(ctx, opts.lease);
          return ctx.withQueue(async (q) => {
            const done = await q.verdict({
              task: task!,
              verdict: verdict as 'pass' | 'fail',
              ...(feedback !== undefined && feedback.trim() !== '' ? { feedback } : {}),
              ...(lease !== undefined ? { lease } : {}),
            });
            if (ctx.json) ctx.out.printJson(taskJson(done));
            else ctx.out.line(`Gave ${verdict} on ${done.validates ?? '?'} (${done.id} succeeded)`);
          });
        }),
      );
  },
};
