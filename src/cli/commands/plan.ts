import * as path from 'node:path';
import { enqueuedPlanKeys, missingTaskIds, planChecks } from '../../client/planLookups';
import { loadPlanFile } from '../../core/plan';
import { analyzePlan, formatPlanGraph } from '../../core/planGraph';
import { action } from '../context';
import { CliError } from '../errors';
import type { CommandGroup } from '../registry';

interface ApplyOptions {
  dryRun?: boolean;
}

/** `sparkq plan apply PLAN.yml [--dry-run]`. */
export const planCommands: CommandGroup = {
  register(program, io) {
    const plan = program.command('plan').description('plans: many tasks with dependencies, from a YAML file');

    plan
      .command('apply')
      .description('enqueue the tasks of a plan file (once: applying it again enqueues only tasks it did not enqueue before)')
      .argument('<file>', 'the plan (YAML): tasks with a name, queue, tool, prompt and after: [names]')
      .option('--dry-run', 'check the plan and print its dependency graph by levels, the parallel share and the critical path; enqueue nothing')
      .action(
        action<ApplyOptions>(io, (ctx, [file], opts) =>
          ctx.withQueue(async (q, workspace) => {
            const full = path.resolve(io.cwd, file!);
            // Every problem of the file, with its line, before anything is enqueued.
            const parsed = loadPlanFile(full, await planChecks(q, workspace));
            const missing = await missingTaskIds(q, parsed);
            if (missing.length > 0) {
              throw new CliError(`${full}: the plan waits on task${missing.length === 1 ? '' : 's'} ${missing.join(', ')}, which do${missing.length === 1 ? 'es' : ''} not exist; fix the ids in after:`);
            }
            if (opts.dryRun === true) {
              const analysis = analyzePlan(parsed);
              const existing = await enqueuedPlanKeys(q, parsed.id);
              const already = parsed.tasks.filter((t) => existing.has(t.key)).map((t) => t.key);
              if (ctx.json) {
                ctx.out.printJson({
                  plan: parsed.id,
                  dryRun: true,
                  tasks: parsed.tasks.map((t) => ({ key: t.key, queue: t.queue, tool: t.tool, after: [...t.after], batch: t.batch, line: t.line, ...(t.validate ? { validate: { ...t.validate } } : {}) })),
                  levels: analysis.levels,
                  widths: analysis.widths,
                  parallelShare: analysis.parallelShare,
                  criticalPath: analysis.criticalPath,
                  existing: already,
                });
                return;
              }
              ctx.out.line(formatPlanGraph(parsed, analysis));
              ctx.out.line('');
              ctx.out.line(
                already.length === 0
                  ? `Dry run: nothing enqueued. Apply with: sparkq plan apply ${file!}`
                  : `Dry run: nothing enqueued. ${already.length} of ${parsed.tasks.length} tasks were enqueued by an earlier apply of plan ${parsed.id}; applying enqueues the other ${parsed.tasks.length - already.length}.`,
              );
              return;
            }
            const result = await q.applyPlan({ plan: parsed, file: full });
            if (ctx.json) {
              ctx.out.printJson({
                plan: result.plan,
                created: result.created.map((c) => ({ key: c.key, id: c.task.id, queue: c.task.queue, tool: c.task.tool, after: [...c.task.after] })),
                existing: result.existing.map((e) => ({ key: e.key, id: e.id, status: e.status })),
              });
              return;
            }
            for (const c of result.created) ctx.out.line(`${c.task.id}  ${c.key}  (${c.task.queue}, ${c.task.tool})${c.task.after.length ? `  after ${c.task.after.join(', ')}` : ''}`);
            if (result.existing.length > 0) {
              ctx.out.line(
                ctx.out.style(
                  `${result.existing.length} task${result.existing.length === 1 ? ' was' : 's were'} already enqueued by an earlier apply of plan ${result.plan} and ${result.existing.length === 1 ? 'is' : 'are'} left as ${result.existing.length === 1 ? 'it is' : 'they are'}: ${result.existing.map((e) => `${e.key} (${e.status})`).join(', ')}`,
                  'dim',
                ),
              );
            }
            ctx.out.line(`Plan ${result.plan}: enqueued ${result.created.length} task${result.created.length === 1 ? '' : 's'}.`);
          }),
        ),
      );
  },
};
