import { Option } from 'commander';
import type { JsonValue, Usage } from '../../core/model';
import { parseJsonText, readTextArg } from '../args';
import { action, type CommandContext } from '../context';
import { CliError } from '../errors';
import { claimJson, taskJson } from '../json';
import type { CommandGroup } from '../registry';
import { printClaim } from '../taskView';

interface ClaimOptions {
  queue?: string;
  worker?: string;
}
interface CompleteOptions {
  summary: string;
  data?: string;
  dataFile?: string;
  lease?: string;
  usage?: string;
}
interface FailOptions {
  error: string;
  data?: string;
  lease?: string;
  usage?: string;
}

const USAGE_HELP = 'tokens and cost the task used, as JSON: {"inputTokens":…, "cachedInputTokens":…, "outputTokens":…, "costUsd":…, "model":"…"}';

/** --usage: a JSON object; its fields are checked by the queue (unknown ones are refused there). */
function usageOf(text: string | undefined): Usage | undefined {
  if (text === undefined) return undefined;
  const v = parseJsonText('--usage', text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`--usage must be a JSON object, e.g. --usage '{"inputTokens":1200,"outputTokens":300,"model":"gpt-5"}'`);
  return v;
}

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
            else if (claim !== null) printClaim(ctx.out, claim);
          }),
        ),
      );

    program
      .command('complete')
      .description('finish a claimed task successfully')
      .argument('<task>', 'task id (tsk_…)')
      .requiredOption('--summary <text>', 'what was done, in a sentence or two')
      .addOption(new Option('--data <json>', 'result data, as JSON').conflicts('dataFile'))
      .option('--data-file <file>', 'read the result data (JSON) from a file (- for standard input)')
      .option('--usage <json>', USAGE_HELP)
      .option('--lease <lease>', 'the lease from the claim (default: $SPARKQ_LEASE)')
      .action(
        action<CompleteOptions>(io, (ctx, [task], opts) => {
          let data: JsonValue | undefined;
          if (opts.data !== undefined) data = parseJsonText('--data', opts.data);
          else if (opts.dataFile !== undefined) data = parseJsonText('--data-file', readTextArg(io, '--data-file', opts.dataFile));
          const lease = leaseOf(ctx, opts.lease);
          const usage = usageOf(opts.usage);
          return ctx.withQueue(async (q) => {
            const done = await q.complete({
              task: task!,
              summary: opts.summary,
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
      .description('finish a claimed task as failed')
      .argument('<task>', 'task id (tsk_…)')
      .requiredOption('--error <text>', 'what went wrong')
      .option('--data <json>', 'data about the failure, as JSON')
      .option('--usage <json>', USAGE_HELP)
      .option('--lease <lease>', 'the lease from the claim (default: $SPARKQ_LEASE)')
      .action(
        action<FailOptions>(io, (ctx, [task], opts) => {
          const data = opts.data !== undefined ? parseJsonText('--data', opts.data) : undefined;
          const lease = leaseOf(ctx, opts.lease);
          const usage = usageOf(opts.usage);
          return ctx.withQueue(async (q) => {
            const failed = await q.fail({
              task: task!,
              error: opts.error,
              ...(data !== undefined ? { data } : {}),
              ...(usage !== undefined ? { usage } : {}),
              ...(lease !== undefined ? { lease } : {}),
            });
            if (ctx.json) ctx.out.printJson(taskJson(failed));
            else if (failed.status === 'queued') ctx.out.line(`Attempt ${failed.attempt} of ${failed.id} failed; it will be retried after ${failed.notBefore ?? 'a delay'}: ${failed.error ?? opts.error}`);
            else ctx.out.line(`Failed ${failed.id}: ${failed.error ?? opts.error}`);
          });
        }),
      );
  },
};
