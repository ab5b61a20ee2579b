import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveScript } from '../../src/worker/executors/script';
import { RunLog } from '../../src/worker/runLog';
import { tempDir } from '../support/tmp';

/* The whole output of a task, written off the worker's event loop, is whole and in order; scripts resolve exactly. */
describe('worker: output log and script lookup', function () {
  this.timeout(30_000);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir('sparkq-runlog-')));
  afterEach(() => t.cleanup());

  it('the output log keeps every write in order, creates its directory, and a failure to write never throws', async () => {
    const log = new RunLog(path.join(t.dir, 'runs', 'tsk_1'));
    const parts = Array.from({ length: 2000 }, (_, i) => `part ${i}\n`);
    for (const p of parts) log.write(p);
    await log.close();
    assert.equal(fs.readFileSync(path.join(t.dir, 'runs', 'tsk_1', 'output.log'), 'utf8'), parts.join(''));

    fs.writeFileSync(path.join(t.dir, 'file'), '');
    const bad = new RunLog(path.join(t.dir, 'file', 'tsk_2')); // its "directory" is a file
    bad.write('lost\n');
    await bad.close();
  });

  it('a worker that keeps its script index between tasks still sees scripts added, renamed and removed', () => {
    const dir = path.join(t.dir, 'scripts');
    fs.mkdirSync(dir);
    const a = path.join(dir, 'a.sh');
    fs.writeFileSync(a, '#!/usr/bin/env bash\n# name: alpha\necho a\n');
    assert.equal(resolveScript('alpha', [dir]), fs.realpathSync(a));
    // a.sh is renamed in its header and b.sh takes its old name: the next task sees both changes.
    fs.writeFileSync(a, '#!/usr/bin/env bash\n# name: beta\necho a\n');
    const b = path.join(dir, 'b.sh');
    fs.writeFileSync(b, '#!/usr/bin/env bash\n# name: alpha\necho b\n');
    assert.equal(resolveScript('alpha', [dir]), fs.realpathSync(b));
    assert.equal(resolveScript('beta', [dir]), fs.realpathSync(a));
    fs.rmSync(b);
    assert.throws(() => resolveScript('alpha', [dir]), /no script "alpha"/);
  });
});
