import { strict as assert } from 'node:assert';
import { defaultConfig } from '../../../src/core/config';
import { isSparkqError } from '../../../src/core/errors';
import { TeamDb } from '../../../src/team/db';
import { SCHEMA_VERSION, schemaVersion } from '../../../src/team/schema';
import { TeamQueue } from '../../../src/team/teamQueue';
import { postgresOrSkip } from '../../support/postgres';

/* The team database's schema: made once however many processes start at the same moment, and never touched by a
 * SparkQ older than the schema. */
describe('team database: schema versions', function () {
  this.timeout(60_000);
  let url: string;

  before(async function () {
    url = await (await postgresOrSkip(this)).createDatabase('schema');
  });

  it('eight clients opening an empty database at once make the schema once', async () => {
    const opened = await Promise.all(Array.from({ length: 8 }, () => TeamQueue.open({ url, schema: 'race', config: defaultConfig('s'), maxConnections: 2 })));
    try {
      const db = opened[0]!.db;
      assert.equal(await schemaVersion(db, 'race'), SCHEMA_VERSION);
      const tables = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'race' AND table_name = 'tasks'");
      assert.equal(tables[0]!.n, 1);
      await opened[3]!.createSession({ name: 'works' });
      assert.equal((await opened[5]!.getSession('works')).name, 'works');
    } finally {
      await Promise.all(opened.map((q) => q.close()));
    }
  });

  it('a schema newer than this SparkQ is refused with what to do, and left as it is', async () => {
    const q = await TeamQueue.open({ url, schema: 'future', config: defaultConfig('s') });
    await q.createSession({ name: 'kept' });
    await q.db.query('UPDATE schema_version SET version = $1', [SCHEMA_VERSION + 1]);
    await q.close();
    await assert.rejects(TeamQueue.open({ url, schema: 'future', config: defaultConfig('s') }), (e: unknown) => {
      assert.ok(isSparkqError(e, 'config'));
      assert.match((e as Error).message, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this SparkQ knows \\(${SCHEMA_VERSION}\\); update SparkQ`));
      return true;
    });
    const db = new TeamDb({ url, schema: 'future' });
    try {
      assert.equal(await schemaVersion(db, 'future'), SCHEMA_VERSION + 1, 'not rewritten');
      assert.deepEqual(await db.query('SELECT name FROM sessions'), [{ name: 'kept' }]);
    } finally {
      await db.end();
    }
  });

  it('text PostgreSQL cannot hold (U+0000) is refused as bad input, and nothing is stored', async () => {
    const q = await TeamQueue.open({ url, schema: 'nul', config: defaultConfig('s') });
    try {
      await q.createSession({ name: 's' });
      await q.createQueue({ name: 'q', session: 's' });
      await assert.rejects(q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'a\u0000b' }), (e: unknown) => {
        assert.ok(isSparkqError(e, 'invalid-input'), String(e));
        assert.match((e as Error).message, /cannot hold the NUL character U\+0000; remove it/);
        return true;
      });
      assert.equal((await q.counts()).queued, 0);
    } finally {
      await q.close();
    }
  });

  it('a schema name that is not a plain PostgreSQL name is refused before anything is sent', async () => {
    await assert.rejects(TeamQueue.open({ url, schema: 'x; DROP TABLE tasks', config: defaultConfig('s') }), /not a plain lower-case PostgreSQL name/);
  });
});
