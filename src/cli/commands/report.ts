import { REPORT_GROUPS, type ReportGroup, type ReportRow } from '../../core/model';
import { action } from '../context';
import { CliError } from '../errors';
import { duration } from '../output';
import type { CommandGroup } from '../registry';

interface ReportOptions {
  session?: string;
  by: string;
}

const int = (n: number) => n.toLocaleString('en-US');

/** `sparkq report`: tasks, run time, tokens and cost per tool, model, queue or day. */
export const reportCommand: CommandGroup = {
  register(program, io) {
    program
      .command('report')
      .description('token usage and cost: tasks, run time, input/cached/output tokens and cost per tool, model, queue or day')
      .option('--session <session>', 'only this session (name or id)')
      .option('--by <group>', `group by ${REPORT_GROUPS.join(', ')} (default tool)`, 'tool')
      .action(
        action<ReportOptions>(io, (ctx, _args, opts) => {
          if (!(REPORT_GROUPS as readonly string[]).includes(opts.by)) {
            throw new CliError(`--by must be one of ${REPORT_GROUPS.join(', ')}, not ${JSON.stringify(opts.by)}`);
          }
          return ctx.withQueue(async (q) => {
            const report = await q.report({ by: opts.by as ReportGroup, ...(opts.session !== undefined ? { session: opts.session } : {}) });
            if (ctx.json) {
              ctx.out.printJson(report);
              return;
            }
            if (report.rows.length === 0) {
              ctx.out.line('No tasks yet.');
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
              `$${r.costUsd.toFixed(4)}`,
            ];
            ctx.out.table(
              [report.by.toUpperCase(), 'TASKS', 'SUCCEEDED', 'FAILED', 'RUN TIME', 'INPUT', 'CACHED', 'OUTPUT', 'COST'],
              [...report.rows.map((r) => row(r.key, r)), row('total', report.total)],
            );
            if (report.session !== null) ctx.out.line(ctx.out.style(`session ${report.session}`, 'dim'));
          });
        }),
      );
  },
};
