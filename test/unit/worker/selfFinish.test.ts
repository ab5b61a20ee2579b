import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleCli, Cli } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * A task finished by what the worker runs, before the worker records an outcome: an agent with `mcp: true` completing
 * its own task through SparkQ's tools does exactly this. Here a script does it through the `sparkq` on its PATH with
 * the lease the worker gave it; the worker must report the task as it was finished, not as a failure to record.
 */
describe('sparkq run: a task its tool finished itself', function () {
  this.timeout(90_000);
  const tmp = tempDir('sparkq-selffinish-');
  let cli: Cli;

  before(() => {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
  });
  after(() => tmp.cleanup());

  it('is reported with the outcome its tool recorded, and the worker counts it so', async () => {
    const cwd = path.join(tmp.dir, 'ws');
    fs.mkdirSync(path.join(cwd, 'scripts'), { recursive: true });
    const o = { cwd };
    await cli.ok(['init'], o);
    await cli.ok(['session', 'create', 's'], o);
    await cli.ok(['queue', 'create', 'q', '--session', 's'], o);
    fs.writeFileSync(
      path.join(cwd, 'scripts', 'self-complete.sh'),
      '#!/usr/bin/env bash\n# name: self-complete\nsparkq complete "$SPARKQ_TASK_ID" "finished from inside" --data \'{"files": 3}\' >/dev/null\necho "after completing"\n',
    );
    const id = (await cli.ok(['enqueue', 'run-bash', '--queue', 'q', '--prompt', 'self-complete'], o)).trim();
    const r = await cli.run(['run', '--queue', 'q', '--json'], o);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ran: 1, succeeded: 1, failed: 0, released: 0, interrupted: false });
    assert.match(r.stderr, /succeeded in .* \(finished by its agent through SparkQ's tools\): finished from inside/);
    assert.doesNotMatch(r.stderr, /could not be recorded/);
    const task = await cli.json<{ status: string; result: { summary: string; data: unknown }; attempts: { outcome: string }[] }>(['task', id], o);
    assert.equal(task.status, 'succeeded');
    assert.deepEqual(task.result, { summary: 'finished from inside', data: { files: 3 } });
    assert.deepEqual(task.attempts.map((a) => a.outcome), ['succeeded']);
  });
});
