import * as fs from 'node:fs';
import { errorMessage } from '../core/errors';
import { loadWorkspaceConfig } from '../owner/configWatcher';
import { configFileOf } from '../owner/workspace';

/*
 * Team mode as the extension sees it, without vscode (tested in plain Node): whether a folder's queue is a team
 * database, where its URL comes from, and the URL kept in SecretStorage per folder. The URL can carry a password, so
 * it is never written to settings or files and never logged or shown whole: `describeDatabase` and `redactUrl` only.
 */

export const DATABASE_URL_ENV = 'SPARKQ_DATABASE_URL';

/**
 * The URL without its password (the rule of src/team/db.ts `redactUrl`, repeated here so that the extension does not
 * load the PostgreSQL driver for a workspace that never uses it), also when the password is a `?password=` parameter.
 */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/([?&]password=)[^&]*/gi, '$1***');
}

/** Any database URL in `text` (e.g. a command's arguments, logged) without its password. */
export function withoutPasswords(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:/@\s"]*:)[^@\s"]*@/gi, '$1***@').replace(/([?&]password=)[^&\s"]*/gi, '$1***');
}

/** Where the URL in use came from, strongest first: the environment wins, as for the CLI; then the saved one; then sparkq.yml. */
export type DatabaseUrlSource = 'environment' | 'saved' | 'sparkq.yml';

export interface TeamDatabase {
  url: string;
  source: DatabaseUrlSource;
}

/** sparkq.yml's team store (`store: { kind: postgres }`), or null for the embedded store. Throws on a broken file. */
export function teamConfigOf(folder: string): { url?: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(configFileOf(folder), 'utf8');
  } catch {
    return null;
  }
  // Cheap for the embedded store, as in the client: the file is parsed only when it mentions postgres at all.
  if (!/\bpostgres\b/.test(text)) return null;
  const { store } = loadWorkspaceConfig(folder);
  if (store.kind !== 'postgres') return null;
  return store.url !== undefined ? { url: store.url } : {};
}

/** The URL this window uses for a team folder, or null when none is named anywhere (then: Connect to Team Database). */
export function resolveTeamDatabase(env: NodeJS.ProcessEnv, saved: string | undefined, fileUrl: string | undefined): TeamDatabase | null {
  const fromEnv = env[DATABASE_URL_ENV]?.trim();
  if (fromEnv) return { url: fromEnv, source: 'environment' };
  if (saved?.trim()) return { url: saved.trim(), source: 'saved' };
  if (fileUrl?.trim()) return { url: fileUrl.trim(), source: 'sparkq.yml' };
  return null;
}

/**
 * The environment for openQueue: the saved URL as SPARKQ_DATABASE_URL when it is the one in use (the environment's
 * own value, when set, wins and stays; sparkq.yml's is read by the client itself).
 */
export function openEnv(base: NodeJS.ProcessEnv, db: TeamDatabase | null): NodeJS.ProcessEnv {
  return db?.source === 'saved' ? { ...base, [DATABASE_URL_ENV]: db.url } : base;
}

/**
 * What a worker terminal needs so that `sparkq run` in it reaches the same database as this window: the URL in use,
 * unless it comes from sparkq.yml (which the CLI reads itself). Set from the environment too, since a terminal's
 * shell does not always inherit the extension host's environment (a remote or web host starts it elsewhere).
 */
export function terminalDatabaseEnv(db: TeamDatabase | null): Record<string, string> {
  return db && db.source !== 'sparkq.yml' ? { [DATABASE_URL_ENV]: db.url } : {};
}

/** Why `text` is not a usable PostgreSQL URL, or undefined when it is. For the input box and the command's argument. */
export function checkDatabaseUrl(text: string): string | undefined {
  const value = text.trim();
  if (value === '') return 'Enter the URL of the team database, e.g. postgres://USER@HOST:5432/DATABASE';
  if (/\s/.test(value)) return 'A URL has no spaces; percent-encode them (%20)';
  if (!/^postgres(ql)?:\/\//i.test(value)) return 'The team database is PostgreSQL: the URL starts with postgres:// (or postgresql://)';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'This is not a valid URL: expected postgres://USER@HOST:5432/DATABASE (percent-encode special characters in the password)';
  }
  const params = url.searchParams;
  if (url.hostname === '' && !params.get('host')) return 'Name the server: postgres://USER@HOST/DATABASE, or ?host=/path/of/socket/folder for a Unix socket';
  if (url.port !== '' && !(Number(url.port) >= 1 && Number(url.port) <= 65535)) return `Port ${url.port} is not a TCP port (1–65535)`;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '' && !params.get('dbname')) return 'Name the database after the server: postgres://USER@HOST/DATABASE';
  if (database.includes('/')) return `"${database}" is not a database name: the path after the server is one name`;
  return undefined;
}

/** Whether the URL carries a password (in the user part or as ?password=). */
export function hasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== '' || u.searchParams.has('password');
  } catch {
    return false;
  }
}

/** The user named in the URL, decoded; '' when none. */
export function userOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username);
  } catch {
    return '';
  }
}

/** The URL with `password` in its user part, percent-encoded. */
export function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/**
 * The database as a person names it — `host[:port]/database`, or `/socket/folder/database` — with neither user nor
 * password: for the status bar, the log and messages.
 */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    const socket = u.searchParams.get('host');
    const host = u.hostname !== '' ? decodeURIComponent(u.hostname) : (socket ?? 'localhost');
    const port = u.port !== '' && u.port !== '5432' && !host.startsWith('/') ? `:${u.port}` : '';
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.searchParams.get('dbname') || decodeURIComponent(u.username) || '?';
    return `${host}${port}/${db}`;
  } catch {
    return redactUrl(url);
  }
}

/**
 * A message about a connection, with the URL's secret parts taken out wherever they appear (a driver's message may
 * quote what it was given): the whole URL becomes its redacted form, the password `***`.
 */
export function scrubSecrets(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  try {
    const u = new URL(url);
    for (const p of new Set([u.password, safeDecode(u.password), u.searchParams.get('password') ?? ''])) {
      if (p.length >= 3) out = out.split(p).join('***');
    }
  } catch {
    // not a URL: nothing more to take out
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The part of vscode.SecretStorage used here. */
export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

/**
 * The team database URL saved per workspace folder in VS Code's SecretStorage (the OS keychain on desktop), under a
 * key named for the folder: never in settings, sparkq.yml or .sparkq/.
 */
export class TeamDatabaseSecrets {
  constructor(private readonly secrets: SecretStore) {}

  keyOf(folder: string): string {
    return `sparkq.teamDatabaseUrl:${folder}`;
  }

  async get(folder: string): Promise<string | undefined> {
    try {
      return (await this.secrets.get(this.keyOf(folder))) || undefined;
    } catch (e) {
      // A locked or unavailable keychain: no saved URL, and the reason (never the URL) said once by the caller.
      throw new Error(`the saved team database URL cannot be read from VS Code's secret storage: ${errorMessage(e)}`, { cause: e });
    }
  }

  async save(folder: string, url: string): Promise<void> {
    const problem = checkDatabaseUrl(url);
    if (problem) throw new Error(problem);
    await this.secrets.store(this.keyOf(folder), url.trim());
  }

  /** Forgets the folder's URL; says whether there was one. */
  async forget(folder: string): Promise<boolean> {
    const had = (await this.get(folder)) !== undefined;
    await this.secrets.delete(this.keyOf(folder));
    return had;
  }
}
