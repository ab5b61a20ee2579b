import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { daysOption } from '../args';
import { action } from '../context';
import { CliError } from '../errors';
import type { CommandGroup } from '../registry';

interface PurgeOptions {
  olderThan?: number;
}

export const purgeCommand: CommandGroup = {
  register(program, io) {
    program
      .command('purge')
      .description('delete finished tasks older than some days (default: purgeAfterDays in sparkq.yml)')
      .option('--older-than <days>', 'finished more than this many days ago', daysOption('--older-than'))
      .action(
        action<PurgeOptions>(io, (ctx, _args, opts) => {
          const workspace = ctx.workspace();
          let days = opts.olderThan;
          if (days === undefined) {
            // The owner keeps its own copy of the config; the file is what the user means by "my setting".
            days = loadWorkspaceConfig(workspace).purgeAfterDays ?? undefined;
            if (days === undefined) {
              throw new CliError('say how old finished tasks must be to go: pass --older-than DAYS, or set purgeAfterDays in sparkq.yml');
            }
          }
          const olderThanDays = days;
          return ctx.withQueue(async (q) => {
            const { purged } = await q.purge({ olderThanDays });
            if (ctx.json) ctx.out.printJson({ purged, olderThanDays });
            else ctx.out.line(`Purged ${purged} finished task${purged === 1 ? '' : 's'} older than ${olderThanDays} day${olderThanDays === 1 ? '' : 's'}`);
          });
        }),
      );
  },
};
