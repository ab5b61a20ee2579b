import { type PlanReport, REPORT_GROUPS, type ReportGroup, type ReportRow } from '../../core/model';
import { checksNote, naiveLine } from '../../core/text';
import { action } from '../context';
import { CliError } from '../errors';
import { duration, type Output, shortTime } from '../output';
import type { CommandGroup } from '../registry';

interface ReportOptions {
  session?: string;
  plan?: string;
  orchestrator?: string;
  by: string;
}

const int = (n: number) => n.toLocaleString('en-US');
const usd = (n: number) => `$${n.toFixed(4)}`;

/** What the plan's parallel run bought: time first, then what its Codex tokens would have cost at each priced model. */
function printPlan(out: Output, p: PlanReport): void {
  out.line();
  out.line(out.style(`Plan ${p.id}`, 'bold'));
  const span = p.firstStartAt !== null && p.lastFinishAt !== null ? `  (${shortTime(p.firstStartAt)} → ${shortTime(p.lastFinishAt)})` : '';
  const path = p.criticalPath.tasks.map((t) => `${t.key} ${duration(t.runMs) ?? ''}`).join(' → ');
  out.fields([
    ['tasks', `${int(p.tasks)}${checksNote(p)}${p.unfinished > 0 ? `, ${int(p.unfinished)} not finished yet (the figures so far)` : ''}`],
    ['wall clock', `${duration(p.wallClockMs) ?? ''}${span}`],
    ['serial sum', `${duration(p.serialMs) ?? ''}  (every attempt's run time, one after another)`],
    ['speed-up', p.speedup !== null ? { text: `${p.speedup.toFixed(2)}×`, style: p.speedup > 1 ? 'green' : undefined } : '-'],
    ['parallel share', p.parallelShare !== null ? `${Math.round(p.parallelShare * 100)}% of the run time ran alongside other tasks` : '-'],
    ['critical path', p.criticalPath.tasks.length > 0 ? `${duration(p.criticalPath.runMs) ?? ''}: ${path}` : '-'],
  ]);
  out.line(naiveLine(p.naive));
  const c = p.codex;
  out.line();
  if (c.tasks === 0) {
    out.line('No Codex tasks in this plan: nothing to reprice.');
    return;
  }
  out.line(
    `Codex tokens: ${int(c.tasks)} task${c.tasks === 1 ? '' : 's'}, input ${int(c.inputTokens)} (cached ${int(c.cachedInputTokens)}), output ${int(c.outputTokens)}, recorded cost ${usd(c.costUsd)}`,
  );
  if (c.pricedAt.length === 0) {
    out.line('No model is priced (pricing: in sparkq.yml).');
    return;
  }
  out.table(
    ['IF BILLED AT', 'COST', 'SAVED'],
    c.pricedAt.map((m) => [m.model, usd(m.costUsd), usd(Math.round((m.costUsd - c.costUsd) * 1e6) / 1e6)]),
  );
  out.line(out.style('saved: that cost minus the recorded one. Prices per million tokens: pricing: in sparkq.yml, over built-in 2025 list prices', 'dim'));
}

/** `sparkq report`: tasks, run time, tokens and cost per tool, model, queue or day. */
export const reportCommand: CommandGroup = {
  register(program, io) {
    program
      .command('report')
      .description(
        "token usage and cost: tasks, run time, input/cached/output tokens and cost per tool, model, queue or day; with --plan, also what the plan's parallel run bought (speed-up, critical path, Codex tokens priced per model)",
      )
      .option('--session <session>', 'only this session (name or id)')
      .option('--plan <plan>', "only this plan's tasks (its id), with its wall clock, speed-up, critical path and repricing")
      .option('--orchestrator <model>', "with --plan: the model to price the naive plan at (default: orchestrator in sparkq.yml, else claude-sonnet-4-5)")
      .option('--by <group>', `group by ${REPORT_GROUPS.join(', ')} (default tool)`, 'tool')
      .action(
        action<ReportOptions>(io, (ctx, _args, opts) => {
          if (opts.orchestrator !== undefined && opts.plan === undefined) throw new CliError('--orchestrator prices a plan: give --plan PLAN too');
          if (!(REPORT_GROUPS as readonly string[]).includes(opts.by)) {
            throw new CliError(`--by must be one of ${REPORT_GROUPS.join(', ')}, not ${JSON.stringify(opts.by)}`);
          }
          return ctx.withQueue(async (q) => {
            const report = await q.report({
              by: opts.by as ReportGroup,
              ...(opts.session !== undefined ? { session: opts.session } : {}),
              ...(opts.plan !== undefined ? { plan: opts.plan } : {}),
              ...(opts.orchestrator !== undefined ? { orchestrator: opts.orchestrator } : {}),
            });
            if (ctx.json) {
              ctx.out.printJson(report);
              return;
            }
            if (report.rows.length === 0) {
              ctx.out.line(report.plan !== undefined ? `Plan ${report.plan.id} has no tasks.` : 'No tasks yet.');
              return;
            }
            const row = (key: string, r: Omit<ReportRow, 'key'>) => [
              key,
              int(r.tasks),
              int(r.succeeded),
              { text: int(r.failed), style: r.failed > 0 ? ('red' as const) : undefined },
              duration(r.runMs) ?? '',
              int(r.inputTokens),
              int(r.cachedInputTokens),
              int(r.outputTokens),
              usd(r.costUsd),
            ];
            ctx.out.table(
              [report.by.toUpperCase(), 'TASKS', 'SUCCEEDED', 'FAILED', 'RUN TIME', 'INPUT', 'CACHED', 'OUTPUT', 'COST'],
              [...report.rows.map((r) => row(r.key, r)), row('total', report.total)],
            );
            if (report.session !== null) ctx.out.line(ctx.out.style(`session ${report.session}`, 'dim'));
            if (report.plan !== undefined) printPlan(ctx.out, report.plan);
          });
        }),
      );
  },
};
