import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';

/*
 * A throwaway PostgreSQL server for the tests that need one (team mode): initdb into a temp folder, listening only on
 * a Unix socket in that folder (no TCP port), started once per test process on first use and stopped when the
 * process ends. PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user.
 *
 * Where no server can be started (no PostgreSQL installed), `postgresOrSkip` skips the test with a loud message —
 * unless SPARKQ_REQUIRE_POSTGRES is set (CI sets it), where that is a failure: CI must never skip these tests.
 */

export interface PgServer {
  /** The folder holding the data directory, the log and the socket. */
  dir: string;
  /** The socket folder (host for libpq and node-postgres). */
  socketDir: string;
  port: number;
  /** A URL to database `db` as the superuser `sparkq`, through the Unix socket. */
  url(db: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server: `fast` as an operator would, `immediate` as a crash. */
  stop(mode?: 'fast' | 'immediate'): void;
  /** Starts it again after `stop` (same data, same socket). */
  start(): void;
}

const PORT = 5432; // only names the socket file (.s.PGSQL.5432) inside our own folder; no TCP listener

function binDir(): string | null {
  const fromPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  const candidates: string[] = [];
  if (fs.existsSync('/usr/lib/postgresql')) {
    for (const v of fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))) candidates.push(path.join('/usr/lib/postgresql', v, 'bin'));
  }
  if (fromPath) candidates.push(path.dirname(fs.realpathSync(fromPath)));
  return candidates.find((d) => fs.existsSync(path.join(d, 'initdb')) && fs.existsSync(path.join(d, 'pg_ctl'))) ?? null;
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function run(bin: string, tool: string, args: string[]): void {
  const argv = asRoot ? ['runuser', '-u', 'postgres', '--', path.join(bin, tool), ...args] : [path.join(bin, tool), ...args];
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

let started: Promise<PgServer> | null = null;
let unavailable: string | null = null;

function launch(): PgServer {
  const bin = binDir();
  if (!bin) throw new Error('no PostgreSQL server binaries (initdb, pg_ctl) found; install the postgresql package (apt-get install -y postgresql)');
  // Short: the socket path must stay under the 107-byte limit of Unix socket names.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqpg-'));
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  run(bin, 'initdb', ['-D', data, '-A', 'trust', '-U', 'sparkq', '--no-sync', '-E', 'UTF8', '--locale=C']);
  // Room for the many-claimer tests; fsync stays on, since restart tests rely on what a commit promises.
  fs.appendFileSync(path.join(data, 'postgresql.conf'), "\nmax_connections = 300\nshared_buffers = 64MB\nlisten_addresses = ''\n");
  const ctl = (args: string[]) => run(bin, 'pg_ctl', ['-D', data, ...args]);
  const server: PgServer = {
    dir,
    socketDir: dir,
    port: PORT,
    url: (db) => `postgres://sparkq@${encodeURIComponent(dir)}:${PORT}/${db}`,
    async createDatabase(prefix = 't') {
      const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
      const admin = new Client({ connectionString: server.url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return server.url(name);
    },
    stop: (mode = 'fast') => ctl(['-m', mode, '-w', 'stop']),
    start: () => ctl(['-l', path.join(dir, 'server.log'), '-w', '-o', `-p ${PORT} -k ${dir}`, 'start']),
  };
  server.start();
  process.on('exit', () => {
    try {
      server.stop('immediate');
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

/**
 * A server of the caller's own, apart from the shared one: for tests that stop or crash it. Stopped (and its folder
 * removed) when the process ends, or earlier with `stop`.
 */
export async function ownPostgres(ctx: Mocha.Context): Promise<PgServer> {
  await postgresOrSkip(ctx);
  return launch();
}

/** The test process's PostgreSQL server, started on first use. Throws where none can be started. */
export function postgres(): Promise<PgServer> {
  started ??= new Promise<PgServer>((resolve) => resolve(launch())).catch((e: unknown) => {
    unavailable = e instanceof Error ? e.message : String(e);
    throw e;
  });
  return started;
}

/**
 * For a `before` hook: the server, or — where none can be started and CI does not require one — the test skipped
 * with a loud message naming why.
 */
export async function postgresOrSkip(ctx: Mocha.Context): Promise<PgServer> {
  try {
    return await postgres();
  } catch (e) {
    if (process.env['SPARKQ_REQUIRE_POSTGRES']) throw e;
    console.warn(`\n  !!! SKIPPED: PostgreSQL tests need a server and none could be started: ${unavailable ?? String(e)}\n`);
    ctx.skip();
    throw e;
  }
}
