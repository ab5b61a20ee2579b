import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';

/** `SparkQ: Show Usage Report`: tasks, run time, tokens and cost by tool, model, queue and day; readable in Restricted Mode. */
export const report: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.Report, ArgSchemas.report, raw);
  return withProgress('Reading the usage report…', () =>
    ctx.reportDocuments.show({ ...(args.session !== undefined ? { session: args.session } : {}), ...(args.by !== undefined ? { by: args.by } : {}) }),
  );
};
