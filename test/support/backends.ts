import type { QueueApi } from '../../src/api/contract';
import { FakeClock } from '../../src/core/clock';
import { type SparkqConfig, defaultConfig } from '../../src/core/config';
import type { StatusCounts } from '../../src/core/model';
import { TeamQueue } from '../../src/team/teamQueue';
import { postgresOrSkip } from './postgres';
import { type TestQueue, testQueue } from './queue';

/*
 * One behaviour, one test suite: the queue's behaviour tests run against both stores from the same test file. Each
 * test gets a fresh queue with a movable clock, a session `s` and a queue `q` (instructions "Be brief."), on the
 * embedded store (sql.js in a temp folder) and on PostgreSQL (a fresh schema in the test server's database).
 */

/** What both stores serve to a behaviour test: the contract's methods the queue itself answers, and a few reads. */
type Served = Omit<QueueApi, 'status' | 'scripts' | 'joinQueue' | 'leaveQueue'>;
/** Either store may answer a read synchronously (the embedded one does); tests await every answer. */
export type BackendQueue = {
  [M in keyof Served]: (...args: Parameters<Served[M]>) => Awaited<ReturnType<Served[M]>> | ReturnType<Served[M]>;
} & {
  counts(): (StatusCounts & { stale: number }) | Promise<StatusCounts & { stale: number }>;
  close(): Promise<void>;
};

export interface BackendEnv {
  backend: 'embedded' | 'postgres';
  q: BackendQueue;
  clock: FakeClock;
  /** The workspace config the queue reads (tests may change it). */
  config: SparkqConfig;
  /** One row of a plain SELECT straight from the store's tables (the same SQL reads both). */
  row(sql: string): Promise<Record<string, unknown> | undefined>;
  /** The embedded store's own handle, for tests of what only it has (crash replay, archives). */
  embedded?: TestQueue;
}

let schemas = 0;
let teamUrl: Promise<string> | null = null;

async function openBackend(backend: BackendEnv['backend'], ctx: Mocha.Context): Promise<BackendEnv> {
  if (backend === 'embedded') {
    const t = await testQueue();
    return { backend, q: t.q, clock: t.clock, config: t.config, row: (sql) => Promise.resolve(t.q.store.db.get(sql)), embedded: t };
  }
  const pg = await postgresOrSkip(ctx);
  teamUrl ??= pg.createDatabase('behaviour');
  const clock = new FakeClock();
  const config = defaultConfig('test');
  const q = await TeamQueue.open({ url: await teamUrl, schema: `t${process.pid}_${++schemas}`, config, clock, maxConnections: 4 });
  await q.createSession({ name: 's' });
  await q.createQueue({ name: 'q', session: 's', instructions: 'Be brief.' });
  return { backend, q, clock, config, row: async (sql) => (await q.db.query(sql))[0] };
}

/**
 * Runs `body` once per store, inside a describe named after it; `use` gets each test's fresh env before the test.
 * The queue is closed and its folder (or schema) dropped after each test.
 */
export function eachBackend(body: (backend: BackendEnv['backend'], use: () => BackendEnv) => void): void {
  for (const backend of ['embedded', 'postgres'] as const) {
    describe(`on the ${backend === 'embedded' ? 'embedded store (sql.js)' : 'team database (PostgreSQL)'}`, function () {
      let env: BackendEnv | undefined;
      beforeEach(async function () {
        env = await openBackend(backend, this);
      });
      afterEach(async () => {
        if (!env) return;
        const e = env;
        env = undefined;
        if (e.embedded) {
          // A test may have reopened the embedded queue; close the one it holds now.
          await e.q.close().catch(() => undefined);
          e.embedded.cleanup();
        } else {
          const team = e.q as TeamQueue;
          await team.db.query(`DROP SCHEMA ${team.schema} CASCADE`).catch(() => undefined);
          await team.close();
        }
      });
      body(backend, () => env!);
    });
  }
}
