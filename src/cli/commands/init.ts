import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultConfigYaml, parseConfig } from '../../core/config';
import { LIMITS } from '../../core/model';
import type * as TeamSchemaModule from '../../team/schema';
import type * as TeamQueueModule from '../../team/teamQueue';
import { configFileOf, ensureSparkqDir } from '../../owner/workspace';
import { action } from '../context';
import { CliError } from '../errors';
import type { CommandGroup } from '../registry';

interface InitOptions {
  project?: string;
  force?: boolean;
  postgres?: string;
  schema?: string;
}

/** A postgres:// URL with a password in it (user:password@). */
const HAS_PASSWORD = /^postgres(ql)?:\/\/[^/@:]*:[^@]+@/;

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
      .option('--postgres <url>', 'team mode: the queue lives in this PostgreSQL database (postgres://USER@HOST/DB), shared by several machines; creates its schema')
      .option('--schema <name>', 'team mode: the PostgreSQL schema for SparkQ\'s tables (default sparkq)')
      .action(
        action<InitOptions>(io, async (ctx, _args, opts) => {
          // init creates a workspace, so it does not search upward for one: it is here, or where you point it.
          const workspace = ctx.givenWorkspace() ?? path.resolve(io.cwd);
          const project = opts.project ?? path.basename(workspace);
          if (opts.project !== undefined) checkProjectName(opts.project);
          const file = configFileOf(workspace);
          const existed = fs.existsSync(file);
          if (existed && opts.force !== true) {
            throw new CliError(`${file} already exists; pass --force to overwrite it with the defaults, or edit it`);
          }
          if (opts.schema !== undefined && opts.postgres === undefined) throw new CliError('--schema applies only with --postgres URL');
          const url = opts.postgres?.trim();
          if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw new CliError(`--postgres takes a postgres:// URL, not ${JSON.stringify(url)}`);
          // A password never goes into sparkq.yml (it is shared, often committed): each machine gives the URL itself.
          const secret = url !== undefined && HAS_PASSWORD.test(url);
          const text = defaultConfigYaml(
            project,
            url === undefined ? {} : { kind: 'postgres', ...(secret ? {} : { url }), ...(opts.schema !== undefined ? { schema: opts.schema } : {}) },
          );
          // What init writes must load; were it not to, say so before writing anything.
          const written = parseConfig(text, file).config.project;
          fs.mkdirSync(workspace, { recursive: true });
          fs.writeFileSync(file, text, { mode: 0o644 });
          const sparkqDir = ensureSparkqDir(workspace);
          let team: { database: string; schema: string; schemaVersion: number; urlWritten: boolean } | null = null;
          if (url !== undefined) {
            // Loaded only for team mode: pg and the team store are no part of an embedded workspace's init.
            /* eslint-disable @typescript-eslint/no-require-imports */
            const { TeamQueue } = require('../../team/teamQueue') as typeof TeamQueueModule;
            const { SCHEMA_VERSION } = require('../../team/schema') as typeof TeamSchemaModule;
            /* eslint-enable @typescript-eslint/no-require-imports */
            const schema = opts.schema ?? 'sparkq';
            const q = await TeamQueue.open({ url, schema, config: parseConfig(text, file).config, applicationName: 'sparkq-init' });
            team = { database: q.where, schema, schemaVersion: SCHEMA_VERSION, urlWritten: !secret };
            await q.close();
          }
          if (ctx.json) {
            ctx.out.printJson({ workspace, configFile: file, sparkqDir, project: written, overwritten: existed, ...(team ? { team } : {}) });
            return;
          }
          ctx.out.line(`${existed ? 'Overwrote' : 'Wrote'} ${file} (project ${JSON.stringify(written)}) and created ${sparkqDir}/`);
          if (team) {
            ctx.out.line(`Team mode: the queue is in ${team.database}, schema ${team.schema} (version ${team.schemaVersion}), ready for every machine.`);
            if (!team.urlWritten) ctx.out.line('The URL has a password, so it was not written to sparkq.yml: on each machine, set SPARKQ_DATABASE_URL to it (or use ~/.pgpass).');
          }
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
