import * as path from 'node:path';
import type { Queue, QueueIsolation } from '../../core/model';
import { resolveBase } from '../../git/repo';
import { CliError } from '../errors';
import { intOption } from '../args';
import { action } from '../context';
import { queueJson } from '../json';
import { type Cell, type Output, shortTime } from '../output';
import type { CommandGroup } from '../registry';

interface CreateOptions {
  session: string;
  instructions?: string;
  workdir?: string;
  maxWorkers?: number;
  maxAttempts?: number;
  isolation?: string;
  base?: string;
  baseFollow?: boolean;
}
interface PauseOptions {
  for?: number;
  reason?: string;
}
interface ListOptions {
  session?: string;
  all?: boolean;
}

/** A worktree queue's isolation, its base resolved in the repository of the queue's working directory now. */
async function isolationOf(opts: CreateOptions, workspace: string): Promise<QueueIsolation | null> {
  if (opts.isolation === undefined || opts.isolation === 'none') {
    if (opts.base !== undefined || opts.baseFollow) throw new CliError('--base and --base-follow apply only with --isolation worktree');
    return null;
  }
  if (opts.isolation !== 'worktree') throw new CliError(`--isolation must be worktree or none, not ${JSON.stringify(opts.isolation)}`);
  const dir = opts.workdir !== undefined ? path.resolve(workspace, opts.workdir) : workspace;
  const base = await resolveBase(dir, opts.base ?? null);
  if (opts.baseFollow && base.baseRef === null) throw new CliError(`--base-follow needs a branch to follow; ${opts.base ?? 'HEAD'} is not one`);
  return { kind: 'worktree', baseRef: base.baseRef, baseCommit: base.baseCommit, follow: opts.baseFollow === true };
}

export const QUEUE_HEADER = ['QUEUE', 'SESSION', 'STATUS', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STALE', 'ID'];

export function queueRows(out: Output, queues: Queue[]): Cell[][] {
  const n = (v: number, style: 'cyan' | 'yellow' | 'green' | 'red' | 'magenta'): Cell => ({ text: String(v), style: v > 0 ? style : undefined });
  return queues.map((q) => [
    q.name,
    q.session,
    q.status === 'active' && q.paused
      ? { text: q.pausedUntil ? `paused until ${shortTime(q.pausedUntil)}` : 'paused', style: 'yellow' }
      : { text: q.status, style: q.status === 'ended' ? 'dim' : undefined },
    n(q.counts.queued, 'cyan'),
    n(q.counts.running, 'yellow'),
    n(q.counts.succeeded, 'green'),
    n(q.counts.failed, 'red'),
    n(q.stale, 'magenta'),
    { text: q.id, style: out.colour ? 'dim' : undefined },
  ]);
}

export const queueCommands: CommandGroup = {
  register(program, io) {
    const queue = program.command('queue').description('queues inside a session: create, list, pause, resume, end');

    queue
      .command('create')
      .description('create a queue in a session')
      .argument('<name>', 'queue name')
      .requiredOption('--session <session>', 'the session (name or id) the queue belongs to')
      .option('--instructions <text>', 'instructions handed to every worker with each task it claims')
      .option('--workdir <dir>', 'folder the queue’s tasks run in')
      .option('--max-workers <n>', 'how many workers may work the queue at once (default 1)', intOption('--max-workers', 1, 64))
      .option('--max-attempts <n>', "attempts before a failing task stays failed (default: the tool's maxAttempts, else 1)", intOption('--max-attempts', 1, 100))
      .option('--isolation <kind>', 'worktree: each task runs in a git worktree of its own, on a branch sparkq/<queue>/<task> (default: none)')
      .option('--base <ref>', 'with --isolation worktree: the branch (or commit) task branches start from and merge into (default: the current HEAD)')
      .option('--base-follow', "with --isolation worktree: start each task at the base branch's tip when it starts, not at the commit it had now")
      .action(
        action<CreateOptions>(io, (ctx, [name], opts) =>
          ctx.withQueue(async (q, workspace) => {
            const isolation = await isolationOf(opts, workspace);
            const created = await q.createQueue({
              name: name!,
              session: opts.session,
              ...(opts.instructions !== undefined ? { instructions: opts.instructions } : {}),
              ...(opts.workdir !== undefined ? { workdir: opts.workdir } : {}),
              ...(opts.maxWorkers !== undefined ? { maxWorkers: opts.maxWorkers } : {}),
              ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
              ...(isolation ? { isolation } : {}),
            });
            if (ctx.json) ctx.out.printJson(queueJson(created));
            else {
              ctx.out.line(`Created queue ${created.name} (${created.id}) in session ${created.session}`);
              const iso = created.isolation;
              if (iso) {
                const from = iso.follow && iso.baseRef ? `the tip of ${iso.baseRef}` : `${iso.baseCommit.slice(0, 12)}${iso.baseRef ? ` (${iso.baseRef})` : ''}`;
                ctx.out.line(`Each task runs in a worktree under .sparkq/worktrees/ on its own branch from ${from}; review with \`sparkq worktree list\`, merge with \`sparkq merge TASK\`.`);
              }
            }
          }),
        ),
      );

    queue
      .command('list')
      .description('list active queues with their task counts')
      .option('--session <session>', 'only the queues of this session (name or id)')
      .option('--all', 'include ended queues')
      .action(
        action<ListOptions>(io, (ctx, _args, opts) =>
          ctx.withQueue(async (q) => {
            const queues = await q.listQueues({ ...(opts.session !== undefined ? { session: opts.session } : {}), includeEnded: opts.all === true });
            if (ctx.json) {
              ctx.out.printJson(queues.map(queueJson));
              return;
            }
            if (queues.length === 0) {
              ctx.out.line('No queues. Create one: sparkq queue create NAME --session NAME');
              return;
            }
            ctx.out.table(QUEUE_HEADER, queueRows(ctx.out, queues));
          }),
        ),
      );

    queue
      .command('pause')
      .description('stop the queue handing out tasks (running ones go on) until resumed, or for --for seconds')
      .argument('<queue>', 'queue name or id')
      .option('--for <seconds>', 'resume by itself after this many seconds', intOption('--for', 1, 7 * 24 * 3600))
      .option('--reason <text>', 'why, shown with the queue')
      .action(
        action<PauseOptions>(io, (ctx, [ref], opts) =>
          ctx.withQueue(async (q) => {
            const paused = await q.pauseQueue({ queue: ref!, ...(opts.for !== undefined ? { forSeconds: opts.for } : {}), ...(opts.reason !== undefined ? { reason: opts.reason } : {}) });
            if (ctx.json) ctx.out.printJson(queueJson(paused));
            else ctx.out.line(`Paused queue ${paused.name} ${paused.pausedUntil ? `until ${shortTime(paused.pausedUntil)}` : 'until resumed (sparkq queue resume ' + paused.name + ')'}`);
          }),
        ),
      );

    queue
      .command('resume')
      .description('let a paused queue hand out tasks again')
      .argument('<queue>', 'queue name or id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q) => {
            const resumed = await q.resumeQueue(ref!);
            if (ctx.json) ctx.out.printJson(queueJson(resumed));
            else ctx.out.line(`Resumed queue ${resumed.name}`);
          }),
        ),
      );

    queue
      .command('end')
      .description('end a queue: it takes no new tasks (its tasks stay readable)')
      .argument('<queue>', 'queue name or id')
      .action(
        action(io, (ctx, [ref]) =>
          ctx.withQueue(async (q) => {
            const ended = await q.endQueue(ref!);
            if (ctx.json) ctx.out.printJson(queueJson(ended));
            else {
              ctx.out.line(`Ended queue ${ended.name} (${ended.id}) at ${shortTime(ended.endedAt)}`);
              if (ended.isolation) ctx.out.line(`Its merged worktrees and branches go with \`sparkq worktree prune --queue ${ended.id}\`; unmerged work stays until you merge or discard it (\`sparkq worktree list --queue ${ended.id}\`).`);
            }
          }),
        ),
      );
  },
};
