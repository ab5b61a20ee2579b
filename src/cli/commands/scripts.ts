import { resolveScriptDirs } from '../../core/config';
import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { action } from '../context';
import { scriptJson } from '../json';
import { clip } from '../output';
import type { CommandGroup } from '../registry';

export const scriptsCommand: CommandGroup = {
  register(program, io) {
    program
      .command('scripts')
      .description('the script index: scripts in the script dirs, with what their header comments say')
      .argument('[query]', 'only scripts whose name, description or tags match')
      .action(
        action(io, (ctx, [query]) =>
          ctx.withQueue(async (q, workspace) => {
            const scripts = await q.scripts(query);
            if (ctx.json) {
              ctx.out.printJson(scripts.map(scriptJson));
              return;
            }
            if (scripts.length === 0) {
              let where = 'the script dirs';
              try {
                where = resolveScriptDirs(loadWorkspaceConfig(workspace), workspace).join(', ');
              } catch {
                // the owner's config is what counts; this is only a hint
              }
              ctx.out.line(query !== undefined ? `No scripts match ${JSON.stringify(query)} in ${where}.` : `No scripts in ${where}.`);
              return;
            }
            ctx.out.table(
              ['SCRIPT', 'PATH', 'TAGS', 'DESCRIPTION'],
              scripts.map((s) => [s.name, s.relativePath, s.tags.join(','), clip(s.description, 70)]),
            );
          }),
        ),
      );
  },
};
