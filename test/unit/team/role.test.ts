import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { defaultConfig } from '../../../src/core/config';
import { TeamQueue } from '../../../src/team/teamQueue';
import { postgresOrSkip } from '../../support/postgres';

/*
 * The least-privilege role the README documents: a login role that owns only the schema SparkQ uses, created by the
 * database owner with exactly the README's SQL. SparkQ must create its tables in it and work the queue with it.
 */
describe('team database: the documented least-privilege role', function () {
  this.timeout(60_000);

  it('creates its schema on first use and works the queue, with no rights beyond its own schema', async function () {
    const pg = await postgresOrSkip(this);
    const url = await pg.createDatabase('role');
    const db = url.slice(url.lastIndexOf('/') + 1);
    const admin = new Client({ connectionString: url });
    await admin.connect();
    try {
      // The README's SQL, word for word but for the password (trust authentication on the test server).
      await admin.query("CREATE ROLE sparkq_team LOGIN PASSWORD 'not-used-here'");
      await admin.query('CREATE SCHEMA sparkq AUTHORIZATION sparkq_team');
      await admin.query(`GRANT CONNECT ON DATABASE ${db} TO sparkq_team`);
    } finally {
      await admin.end();
    }
    const roleUrl = url.replace('sparkq@', 'sparkq_team@');
    const q = await TeamQueue.open({ url: roleUrl, config: defaultConfig('role') });
    try {
      await q.createSession({ name: 's' });
      await q.createQueue({ name: 'q', session: 's' });
      const t = await q.enqueue({ queue: 'q', tool: 'run-bash', prompt: 'x' });
      const c = (await q.claim({ queue: 'q', worker: 'w' }))!;
      assert.equal(c.task.id, t.id);
      await q.complete({ task: t.id, lease: c.lease, summary: 'done' });
      assert.equal((await q.getTask(t.id)).status, 'succeeded');
      // Nothing beyond its schema: it cannot make tables elsewhere.
      await assert.rejects(q.db.query('CREATE TABLE public.elsewhere (x int)'), /permission denied/);
    } finally {
      await q.close();
    }
  });
});
