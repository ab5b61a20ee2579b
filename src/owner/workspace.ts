import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparkqError } from '../core/errors';

export const CONFIG_FILE = 'sparkq.yml';
export const SPARKQ_DIR = '.sparkq';

/** The workspace's private folder: lock, owner record, database, logs. */
export function sparkqDirOf(workspaceDir: string): string {
  return path.join(workspaceDir, SPARKQ_DIR);
}

export function configFileOf(workspaceDir: string): string {
  return path.join(workspaceDir, CONFIG_FILE);
}

function isWorkspace(dir: string): boolean {
  return fs.existsSync(path.join(dir, CONFIG_FILE)) || isDir(path.join(dir, SPARKQ_DIR));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The workspace a command works on: `explicit` (from `--workspace`) or `SPARKQ_WORKSPACE` when given — it must exist —,
 * else the nearest folder from `cwd` upward that holds a `sparkq.yml` or a `.sparkq/` folder.
 */
export function findWorkspace(cwd: string, explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const given = explicit ?? env['SPARKQ_WORKSPACE'];
  if (given !== undefined && given !== '') {
    const dir = path.resolve(cwd, given);
    if (!isDir(dir)) {
      const from = explicit !== undefined ? '--workspace' : 'SPARKQ_WORKSPACE';
      throw new SparkqError('not-found', `the workspace folder ${dir} (from ${from}) does not exist; create it or point ${from} at an existing folder`);
    }
    return dir;
  }
  let dir = path.resolve(cwd);
  for (;;) {
    if (isWorkspace(dir)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new SparkqError(
    'not-found',
    `no SparkQ workspace in ${path.resolve(cwd)} or any folder above it (none has a ${CONFIG_FILE} or ${SPARKQ_DIR}/); ` +
      'run `sparkq init` in your project folder, or pass --workspace DIR',
  );
}

/** Creates `.sparkq/` (0700) with a `.gitignore` that keeps everything in it out of git. Idempotent. */
export function ensureSparkqDir(workspaceDir: string): string {
  const dir = sparkqDirOf(workspaceDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ignore = path.join(dir, '.gitignore');
  if (!fs.existsSync(ignore)) {
    fs.writeFileSync(ignore, '# Written by SparkQ: the queue database, owner records and logs are local state, never committed.\n*\n', { mode: 0o644 });
  }
  return dir;
}
