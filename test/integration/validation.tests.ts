import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Claim, Task } from '../../src/core/model';
import type { SparkqExports } from '../../src/extension/extension';
import { exec, rowsOf, waitFor } from './helpers';

/**
 * Validators and prompt patterns in the real host (issue 19), part of the main suite: a validated task's row in the
 * Tasks view says where its check stands as the verdict comes, its validation task says which task it checks, and
 * the Enqueue Task command makes a task from a prompt pattern as `sparkq enqueue --pattern` does.
 */
export function registerValidationTests(get: () => { sparkq: SparkqExports; dir: string; session: string }): void {
  describe('validators and prompt patterns', () => {
    let sparkq: SparkqExports;
    let dir: string;
    const rowOf = async (id: string) => {
      await sparkq.testHooks.views.refreshNow();
      return waitFor(`the row of ${id}`, async () => (await rowsOf(sparkq.testHooks.views.tasks)).find((r) => r.id === id));
    };

    before(async () => {
      let session: string;
      ({ sparkq, dir, session } = get());
      // A queue of its own, so that the claims below get these tests' tasks and no one else's.
      assert.ok(await exec('sparkq.createQueue', { name: 'Checks', session }), sparkq.testHooks.lastFailure()?.message);
    });

    it('a validated task\'s row says validating · round 1 of 2, its validation task checks it, and the verdict shows as passed', async () => {
      const task = await exec<Task>('sparkq.enqueue', { queue: 'Checks', tool: 'llm-codex', prompt: 'validated change', validate: { tool: 'llm-haiku', prompt: 'check it', maxRounds: 2 } });
      assert.ok(task, sparkq.testHooks.lastFailure()?.message);
      assert.equal(task.validation?.status, 'pending');
      const claim = await exec<Claim>('sparkq.claim', { queue: 'Checks', worker: 'itest-validation' });
      assert.equal(claim.task.id, task.id, 'the validated task is the one claimed');
      await exec<Task>('sparkq.complete', { task: task.id, summary: 'changed', lease: claim.lease });
      const done = await sparkq.getTask(task.id);
      const checker = done.validation!.by[0]!;
      assert.ok(checker, 'a validation task was enqueued');

      const row = await rowOf(task.id);
      assert.match(row.description, / · validating · round 1 of 2$/);
      assert.match((await rowOf(checker)).description, new RegExp(` · checks ${task.id}$`));

      const vc = await exec<Claim>('sparkq.claim', { queue: 'Checks', worker: 'itest-validator' });
      assert.equal(vc.task.id, checker);
      await exec<Task>('sparkq.complete', { task: checker, summary: 'pass: fine', data: { verdict: 'pass', feedback: 'fine' }, lease: vc.lease });
      await waitFor('the passed badge', async () => / · passed$/.test((await rowOf(task.id)).description));
    });

    it('sparkq.enqueue with a pattern renders its prompt and records the pattern, like sparkq enqueue --pattern', async () => {
      const folder = path.join(dir, 'sparkq', 'patterns');
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(path.join(folder, 'greet.md'), '---\nname: greet\ndescription: Say hello\ntool: llm-codex\nvariables:\n  who: { description: whom to greet }\n  how: { description: how, default: warmly }\n---\nGreet {{who}} {{how}}.\n');
      assert.equal(await exec('sparkq.enqueue', { queue: 'Checks', pattern: 'greet' }), undefined, 'a missing variable is refused');
      assert.match(sparkq.testHooks.lastFailure()?.message ?? '', /Give who a value: whom to greet/);
      const t = await exec<Task>('sparkq.enqueue', { queue: 'Checks', pattern: 'greet', vars: { who: 'the team' }, prompt: 'Keep it short.' });
      assert.ok(t, sparkq.testHooks.lastFailure()?.message);
      assert.equal(t.tool, 'llm-codex');
      assert.equal(t.prompt, 'Greet the team warmly.\n\nKeep it short.');
      assert.equal(t.pattern?.name, 'greet');
      assert.match(t.pattern?.hash ?? '', /^[0-9a-f]{64}$/);
      // Nothing of these tests stays queued for the tests after them.
      const c = await exec<Claim>('sparkq.claim', { queue: 'Checks', worker: 'itest-pattern' });
      assert.equal(c.task.id, t.id);
      await exec<Task>('sparkq.complete', { task: t.id, summary: 'greeted', lease: c.lease });
    });
  });
}
