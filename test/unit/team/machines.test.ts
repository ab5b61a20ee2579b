import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultConfig, defaultConfigYaml } from '../../../src/core/config';
import { TeamQueue } from '../../../src/team/teamQueue';
import { bundleChild, startChild } from '../../support/children';
import { postgresOrSkip } from '../../support/postgres';
import { tempDir } from '../../support/tmp';

/*
 * Two "machines" (two workspace folders, each with its own sparkq.yml, and a process each) drain one team queue of
 * 10,000 tasks with 25 claimers each: every task is claimed and completed exactly once, none is lost.
 */
describe('team database: two machines drain one queue', function () {
  this.timeout(300_000);
  const tmp = tempDir('sparkq-machines-');
  after(() => tmp.cleanup());

  it('50 claimers on two machines drain 10,000 tasks with zero double claims and zero lost tasks', async function () {
    const url = await (await postgresOrSkip(this)).createDatabase('machines');
    const seed = await TeamQueue.open({ url, config: defaultConfig('machines') });
    const TOTAL = 10_000;
    try {
      await seed.createSession({ name: 's' });
      const queue = await seed.createQueue({ name: 'drain', session: 's', maxWorkers: 50 });
      // Setup in one statement (the enqueue path has its own tests): 10,000 queued tasks in FIFO order.
      await seed.db.query(
        `INSERT INTO tasks(id, session_id, queue_id, tool, task_class, prompt, status, timeout_s, created_at)
         SELECT 'tsk_' || lpad(to_hex(g), 12, '0'), $1, $2, 'run-bash', 'MEDIUM_SCRIPT', 'task ' || g, 'queued', 300, $3 FROM generate_series(1, $4) g`,
        [queue.sessionId, queue.id, Date.now(), TOTAL],
      );
    } finally {
      await seed.close();
    }
    const child = bundleChild('test/support/teamDrainChild.ts', path.join(tmp.dir, 'child'));
    const machines = ['laptop', 'buildbox'].map((name) => {
      const dir = path.join(tmp.dir, name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'sparkq.yml'), defaultConfigYaml(name, { kind: 'postgres' }));
      const out = path.join(dir, 'done.txt');
      return { out, run: startChild([...child, dir, '25', 'drain', out], { SPARKQ_DATABASE_URL: url }) };
    });
    const started = Date.now();
    for (const m of machines) assert.equal(await m.run.exited, 0, m.run.stderr());
    const seconds = (Date.now() - started) / 1000;
    const perMachine = machines.map((m) => fs.readFileSync(m.out, 'utf8').split('\n').filter(Boolean));
    const all = perMachine.flat();
    assert.ok(perMachine.every((ids) => ids.length > 0), `both machines worked: ${perMachine.map((ids) => ids.length).join(' + ')}`);
    assert.equal(all.length, TOTAL, 'as many completions as tasks');
    assert.equal(new Set(all).size, TOTAL, 'no task claimed twice');
    const check = await TeamQueue.open({ url, config: defaultConfig('machines') });
    try {
      const counts = await check.counts();
      assert.deepEqual({ ...counts }, { queued: 0, running: 0, succeeded: TOTAL, failed: 0, stale: 0 });
      const attempts = await check.db.query<{ n: number; tasks: number }>('SELECT count(*)::int AS n, count(DISTINCT task_id)::int AS tasks FROM attempts');
      assert.deepEqual(attempts[0], { n: TOTAL, tasks: TOTAL }, 'one attempt per task');
    } finally {
      await check.close();
    }
    console.log(`      (${TOTAL} tasks, 50 claimers on 2 machines: ${seconds.toFixed(1)} s, ${Math.round(TOTAL / seconds)} claim+complete/s; split ${perMachine.map((ids) => ids.length).join(' + ')})`);
  });
});
