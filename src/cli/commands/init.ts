import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultConfigYaml, parseConfig } from '../../core/config';
import { LIMITS } from '../../core/model';
import { configFileOf, ensureSparkqDir } from '../../owner/workspace';
import { action } from '../context';
import { CliError } from '../errors';
import type { CommandGroup } from '../registry';

interface InitOptions {
  project?: string;
  force?: boolean;
}

/**
 * `sparkq init`: writes sparkq.yml with the defaults and creates .sparkq/. It needs no owner: it only writes files, and
 * a running owner notices the new sparkq.yml by itself.
 */
export const initCommand: CommandGroup = {
  register(program, io) {
    program
      .command('init')
      .description('write sparkq.yml with defaults and create .sparkq/ (in --workspace DIR, else the current folder)')
      .option('--project <name>', 'project name (default: the folder name)')
      .option('--force', 'overwrite an existing sparkq.yml')
      .action(
        action<InitOptions>(io, (ctx, _args, opts) => {
          // init creates a workspace, so it does not search upward for one: it is here, or where you point it.
          const workspace = ctx.givenWorkspace() ?? path.resolve(io.cwd);
          const project = opts.project ?? path.basename(workspace);
          if (opts.project !== undefined) checkProjectName(opts.project);
          const file = configFileOf(workspace);
          const existed = fs.existsSync(file);
          if (existed && opts.force !== true) {
            throw new CliError(`${file} already exists; pass --force to overwrite it with the defaults, or edit it`);
          }
          const text = defaultConfigYaml(project);
          // What init writes must load; were it not to, say so before writing anything.
          const written = parseConfig(text, file).config.project;
          fs.mkdirSync(workspace, { recursive: true });
          fs.writeFileSync(file, text, { mode: 0o644 });
          const sparkqDir = ensureSparkqDir(workspace);
          if (ctx.json) {
            ctx.out.printJson({ workspace, configFile: file, sparkqDir, project: written, overwritten: existed });
            return;
          }
          ctx.out.line(`${existed ? 'Overwrote' : 'Wrote'} ${file} (project ${JSON.stringify(written)}) and created ${sparkqDir}/`);
          ctx.out.line('Next: sparkq session create NAME, then sparkq queue create NAME --session NAME');
        }),
      );
  },
};

function checkProjectName(name: string): void {
  const t = name.trim();
  // eslint-disable-next-line no-control-regex
  if (t === '' || t.length > LIMITS.name || /[\u0000-\u001f\u007f]/.test(t)) {
    throw new CliError(`--project must be 1 to ${LIMITS.name} characters without control characters, not ${JSON.stringify(name)}`);
  }
}
