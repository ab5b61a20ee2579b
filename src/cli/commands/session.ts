import { action } from '../context';
import { sessionJson } from '../json';
import { clip, shortTime } from '../output';
import type { CommandGroup } from '../registry';

interface CreateOptions {
  description?: string;
}
interface ListOptions {
  all?: boolean;
}

export const sessionCommands: CommandGroup = {
  register(program, io) {
    const session = program.command('session').description('work sessions: create, list, end');

    session
      .command('create')
      .description('start a work session')
      .argument('<name>', 'session name')
      .option('--description <text>', 'what the session is for')
      .action(
        action<CreateOptions>(io, (ctx, [name], opts) =>
          ctx.withQueue(async (q) => {
            const s = await q.createSession({ name: name!, ...(opts.description !== undefined ? { description: opts.description } : {}) });
            if (ctx.json) ctx.out.printJson(sessionJson(s));
            else ctx.out.line(`Created session ${s.name} (${s.id})`);
          }),
        ),
      );

    session
      .command('list')
      .description('list active sessions')
      .option('--all', 'include ended sessions')
      .action(
        action<ListOptions>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q) => {
            const sessions = await q.listSessions({ includeEnded: opts.all === true });
            if (ctx.json) {
              ctx.out.printJson(sessions.map(sessionJson));
              return;
            }
            if (sessions.length === 0) {
              ctx.out.line(opts.all === true ? 'No sessions. Create one: sparkq session create NAME' : 'No active sessions (--all shows ended ones). Create one: sparkq session create NAME');
              return;
            }
            ctx.out.table(
              ['SESSION', 'ID', 'STATUS', 'CREATED', 'DESCRIPTION'],
              sessions.map((s) => [s.name, s.id, { text: s.status, style: s.status === 'ended' ? 'dim' : 'green' }, shortTime(s.createdAt), clip(s.description)]),
            );
          }),
        ),
      );

    session
      .command('end')
      .description('end a session and its queues (their tasks stay readable)')
      .argument('<session>', 'session name or id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q) => {
            const s = await q.endSession(ref!);
            if (ctx.json) ctx.out.printJson(sessionJson(s));
            else ctx.out.line(`Ended session ${s.name} (${s.id})`);
          }),
        ),
      );
  },
};
