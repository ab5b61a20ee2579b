import { action } from '../context';
import { statusJson } from '../json';
import type { CommandGroup } from '../registry';
import { queueRows, QUEUE_HEADER } from './queue';

export const statusCommand: CommandGroup = {
  register(program, io) {
    program
      .command('status')
      .description('the owner, task counts per queue and status, and how many running tasks are stale')
      .action(
        action(io, (ctx) =>
          ctx.withQueue(async (q, workspace) => {
            const report = await q.status();
            const isThisCommand = q.isOwner;
            if (ctx.json) {
              ctx.out.printJson(statusJson(workspace, report, isThisCommand));
              return;
            }
            const o = report.owner;
            const c = report.counts;
            const team = o.role.startsWith('team database ');
            const owner = team
              ? `none: every process is a client of the ${o.role}`
              : isThisCommand
                ? `none running; this command owned the queue for its own duration (pid ${o.pid}, generation ${o.generation})`
                : `pid ${o.pid} (${o.role}), generation ${o.generation}, since ${o.since}`;
            const workers = report.workers.map((w) => `${w.worker} on ${w.host} (${w.queue})`);
            ctx.out.fields([
              ['workspace', workspace],
              ['project', report.project],
              ['owner', owner],
              [
                'tasks',
                `${c.queued} queued, ${c.running} running, ${c.succeeded} succeeded, ${c.failed} failed` +
                  (c.stale > 0 ? `, ${ctx.out.style(`${c.stale} stale`, 'magenta')}` : ', 0 stale'),
              ],
              ['workers', workers.length > 0 ? workers.join(', ') : 'none'],
            ]);
            if (report.queues.length > 0) {
              ctx.out.line();
              ctx.out.table(QUEUE_HEADER, queueRows(ctx.out, report.queues));
            } else {
              ctx.out.line();
              ctx.out.line('No active queues. Create one: sparkq queue create NAME --session NAME');
            }
          }),
        ),
      );
  },
};
