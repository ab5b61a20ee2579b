import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';

/**
 * `SparkQ: Show Usage Report`: tasks, run time, tokens and cost by tool, model, queue and day, of a session or of one plan
 * (`{ plan }`: with its speed-up, critical path and Codex tokens priced per model); readable in Restricted Mode.
 */
export const report: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.Report, ArgSchemas.report, raw);
  return withProgress('Reading the usage report…', () =>
    ctx.reportDocuments.show({
      ...(args.session !== undefined ? { session: args.session } : {}),
      ...(args.plan !== undefined ? { plan: args.plan } : {}),
      ...(args.by !== undefined ? { by: args.by } : {}),
    }),
  );
};
