import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeClock } from '../../../src/core/clock';
import { loadConfigFile } from '../../../src/core/config';
import type { Report } from '../../../src/core/model';
import { QueueService } from '../../../src/core/queue/service';
import { DB_DIR } from '../../../src/owner/owner';
import { configFileOf, sparkqDirOf } from '../../../src/owner/workspace';
import { assertError, cliSandbox } from '../../support/cli';
import { runPlanScenario, S } from '../core/reports.scenario';

/*
 * `sparkq report --plan` as a user runs it. The plan ran earlier, at known moments of a fake clock, in the workspace's
 * own queue (written in-process, with no other process around); the CLI then reads it like any finished batch.
 */
describe('sparkq report --plan (real processes)', function () {
  this.timeout(120_000);
  const box = cliSandbox('sparkq-cli-report-');
  const o = { cwd: path.join(box.dir, 'ws') };
  let ids: Map<string, string>;

  before(async () => {
    fs.mkdirSync(o.cwd);
    await box.cli.ok(['init'], o);
    // A price of our own next to the built-in ones, as a user would add one.
    fs.appendFileSync(configFileOf(o.cwd), 'pricing:\n  in-house: { input: 2, cachedInput: 1, output: 4 }\n');
    const { config } = loadConfigFile(configFileOf(o.cwd));
    const clock = new FakeClock();
    const q = await QueueService.open({ dir: path.join(sparkqDirOf(o.cwd), DB_DIR), config, clock, autoMaintain: false });
    try {
      await q.createSession({ name: 's' });
      await q.createQueue({ name: 'q', session: 's' });
      ids = await runPlanScenario(q, clock);
    } finally {
      await q.close();
    }
  });

  it('--json has the rows of the plan and its figures, exact', async () => {
    const r = await box.cli.json<Report>(['report', '--plan', 'batch'], o);
    assert.equal(r.by, 'tool');
    assert.deepEqual(
      r.rows.map((x) => [x.key, x.tasks]),
      [
        ['llm-codex', 4],
        ['run-bash', 2],
        ['llm-claude', 1],
      ],
    );
    const p = r.plan!;
    assert.deepEqual([p.wallClockMs, p.serialMs, p.speedup, p.parallelShare], [50 * S, 100 * S, 2, 0.85]);
    assert.deepEqual(
      p.criticalPath.tasks.map((t) => [t.key, t.id, t.runMs]),
      [
        ['c', ids.get('c'), 30 * S],
        ['e', ids.get('e'), 7 * S],
        ['f', ids.get('f'), 13 * S],
      ],
    );
    assert.deepEqual(p.codex.pricedAt.slice(0, 2), [
      { model: 'gpt-5', costUsd: 3.375 },
      { model: 'gpt-5-codex', costUsd: 3.375 },
    ]);
    assert.deepEqual(p.codex.pricedAt.at(-1), { model: 'in-house', costUsd: 3.8 }, "sparkq.yml's price, after the built-in ones");
    const plain = await box.cli.json<Report>(['report'], o);
    assert.equal(plain.plan, undefined, 'no plan figures without --plan');
    assert.equal(plain.total.tasks, 8, 'the task outside the plan counts without --plan');
  });

  it('prints the figures under the table', async () => {
    const out = await box.cli.ok(['report', '--plan', 'batch', '--by', 'model'], o);
    const lines = out.split('\n');
    assert.match(lines[0]!, /^MODEL +TASKS +SUCCEEDED +FAILED +RUN TIME +INPUT +CACHED +OUTPUT +COST$/);
    assert.match(out, /^total +7 +6 +1 +100\.0 s +2,300,000 +1,000,000 +210,000 +\$1\.0500$/m);
    assert.match(out, /^Plan batch$/m);
    assert.match(out, /^tasks +7$/m);
    assert.match(out, /^wall clock +50\.0 s {2}\(2026-01-01T00:00:00Z → 2026-01-01T00:00:50Z\)$/m);
    assert.match(out, /^serial sum +100\.0 s {2}\(every attempt's run time, one after another\)$/m);
    assert.match(out, /^speed-up +2\.00×$/m);
    assert.match(out, /^parallel share +85% of the run time ran alongside other tasks$/m);
    assert.match(out, /^critical path +50\.0 s: c 30\.0 s → e 7\.0 s → f 13\.0 s$/m);
    assert.match(out, /^Codex tokens: 4 tasks, input 2,000,000 \(cached 1,000,000\), output 200,000, recorded cost \$0\.0000$/m);
    assert.match(out, /^IF BILLED AT +COST +SAVED$/m);
    assert.match(out, /^gpt-5 +\$3\.3750 +\$3\.3750$/m);
    assert.match(out, /^claude-sonnet-4-5 +\$6\.3000 +\$6\.3000$/m);
    assert.match(out, /^in-house +\$3\.8000 +\$3\.8000$/m);
  });

  it('an unknown plan is an error naming the plans there are', async () => {
    assertError(await box.cli.run(['report', '--plan', 'nope'], o), 1, /no plan "nope"; plans: batch/);
  });
});
