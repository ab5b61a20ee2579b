import { Option } from 'commander';
import { intOption } from '../args';
import { action } from '../context';
import { ExitWith } from '../errors';
import { wantsColour } from '../io';
import type { CommandGroup } from '../registry';
import { WORKER_GUIDE } from '../../worker/guide';
import { EXECUTORS } from '../../worker/executors';
import { type WorkerMode, runWorker } from '../../worker/runner';

interface RunOptions {
  queue: string;
  watch?: boolean;
  once?: boolean;
  poll?: number;
  worker?: string;
  allowBypass?: boolean;
}

/** `sparkq run` (the worker) and `sparkq guide` (how to work a queue by hand). */
export const runCommands: CommandGroup = {
  register(program, io) {
    program
      .command('run')
      .description('work a queue: claim each task, run it with its tool, record the outcome')
      .requiredOption('--queue <name>', 'the queue to work (name or id)')
      .addOption(new Option('--watch', 'stay and run new tasks as they are enqueued (Ctrl+C to stop)').conflicts('once'))
      .addOption(new Option('--once', 'run exactly one task, then exit').conflicts('watch'))
      .option('--poll <seconds>', 'with --watch: how often to look when no change notification arrives', intOption('--poll', 1, 3600))
      .option('--worker <name>', 'the name this worker shows in task details')
      .option('--allow-bypass', 'let agent tools use sandbox/approval bypass flags (never taken from sparkq.yml)')
      .action(
        action<RunOptions>(io, async (ctx, _args, opts) => {
          const mode: WorkerMode = opts.watch ? 'watch' : opts.once ? 'once' : 'drain';
          const stop = new AbortController();
          const off = io.onStopSignal(() => stop.abort());
          try {
            const summary = await ctx.withQueue(
              (q, workspace) =>
                runWorker({
                  q,
                  workspaceDir: workspace,
                  queue: opts.queue,
                  mode,
                  ...(opts.poll !== undefined ? { pollSeconds: opts.poll } : {}),
                  ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
                  // With --json, stdout carries only the final JSON object: the running commentary goes to stderr.
                  write: (s) => (ctx.json ? io.stderr.write(s) : io.stdout.write(s)),
                  signal: stop.signal,
                  executors: EXECUTORS,
                  userSettings: { allowBypass: opts.allowBypass === true },
                  color: !ctx.json && wantsColour(io),
                }),
              'worker',
            );
            if (ctx.json) ctx.out.printJson(summary);
            if (summary.interrupted) throw new ExitWith(130); // the shell's convention for Ctrl+C
          } finally {
            off();
          }
        }),
      );

    program
      .command('guide')
      .description('how to work a queue by hand (for a person or a chat agent)')
      .action(
        action(io, (ctx) => {
          if (ctx.json) ctx.out.printJson({ guide: WORKER_GUIDE });
          else io.stdout.write(WORKER_GUIDE);
        }),
      );
  },
};
