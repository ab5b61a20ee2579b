import * as fs from 'node:fs';
import type { SparkqConfig } from '../core/config';
import { SparkqError } from '../core/errors';
import type * as ConfigWatcherModule from '../owner/configWatcher';
import { configFileOf } from '../owner/workspace';

/** Where a team workspace's queue is: the database URL and the schema, with the workspace's config. */
export interface TeamStore {
  url: string;
  schema: string;
  config: SparkqConfig;
}

/**
 * The team store this workspace names, or null for the embedded store. Cheap for the embedded store: sparkq.yml is
 * parsed only when its text mentions postgres outside a comment line. SPARKQ_DATABASE_URL wins over store.url.
 */
export function teamStoreOf(workspaceDir: string, env: NodeJS.ProcessEnv = process.env): TeamStore | null {
  let text: string;
  try {
    text = fs.readFileSync(configFileOf(workspaceDir), 'utf8');
  } catch {
    return null;
  }
  // Comment lines aside: the sparkq.yml that `sparkq init` writes explains the postgres store in a comment.
  if (!/\bpostgres\b/.test(text.replace(/^[ \t]*#.*$/gm, ''))) return null;
  // Loaded here, not at the top: an embedded workspace's command never pays for the config parser on this path.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadWorkspaceConfig } = require('../owner/configWatcher') as typeof ConfigWatcherModule;
  const config = loadWorkspaceConfig(workspaceDir);
  if (config.store.kind !== 'postgres') return null;
  const url = env['SPARKQ_DATABASE_URL']?.trim() || config.store.url;
  if (!url) {
    throw new SparkqError(
      'config',
      'sparkq.yml says store.kind: postgres (team mode), but no database is named: set SPARKQ_DATABASE_URL=postgres://USER@HOST/DB ' +
        '(password from ~/.pgpass or the URL), or store.url in sparkq.yml without a password',
    );
  }
  return { url, schema: config.store.schema ?? 'sparkq', config };
}

