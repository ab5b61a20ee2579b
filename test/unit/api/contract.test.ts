import * as assert from 'node:assert/strict';
import { API_METHODS, type ApiMethod, QUEUE_API, type QueueApi, type QueueMethods, SAFE_TO_REPEAT, checkParams, invoke, paramsOf } from '../../../src/api/contract';
import { IpcClient } from '../../../src/client/ipcClient';
import { openQueue, type QueueHandle } from '../../../src/client/open';
import { RemoteQueue } from '../../../src/client/remoteQueue';
import { isSparkqError } from '../../../src/core/errors';
import { checkEnqueue } from '../../../src/core/inputs';
import * as Model from '../../../src/core/model';
import { paramsProblem } from '../../../src/ipc/protocol';
import { readOwnerRecord } from '../../../src/owner/record';
import { sparkqDirOf } from '../../../src/owner/workspace';
import { defaultConfig } from '../../../src/core/config';
import { TeamQueue } from '../../../src/team/teamQueue';
import { postgresOrSkip } from '../../support/postgres';
import { tempDir } from '../../support/tmp';

/** What one run of the samples shares: its own names, so that the implementations do not meet each other's state. */
interface Run {
  n: string;
  queue: string;
  task: string;
  lease: string;
  failed: string;
}

/** A running task of the run's queue: enqueued and claimed through `api`. */
async function running(api: QueueApi, run: Run, prompt: string): Promise<{ task: string; lease: string }> {
  await api.enqueue({ queue: run.queue, tool: 'run-bash', prompt });
  const c = await api.claim({ queue: run.queue, worker: `w-${run.n}` });
  assert.ok(c, `a task to claim on ${run.queue}`);
  return { task: c.task.id, lease: c.lease };
}

/**
 * One valid call of every method, in contract order (a session is created before it is ended, a task claimed before
 * it is completed). Typed as a total map, so a method added to the contract without a sample does not compile.
 */
const SAMPLES: { [M in ApiMethod]: (api: QueueApi, run: Run) => Parameters<QueueMethods[M]> | Promise<Parameters<QueueMethods[M]>> } = {
  status: () => [],
  createSession: (_a, r) => [{ name: `s-${r.n}` }],
  listSessions: () => [{ includeEnded: true }],
  getSession: (_a, r) => [`s-${r.n}`],
  endSession: (_a, r) => [`s-${r.n}`],
  createQueue: (_a, r) => [{ name: `q-${r.n}`, session: 'main' }],
  listQueues: () => [{ session: 'main' }],
  getQueue: (_a, r) => [`q-${r.n}`],
  endQueue: (_a, r) => [`q-${r.n}`],
  enqueue: (_a, r) => [{ queue: r.queue, tool: 'run-bash', prompt: `first of ${r.n}` }],
  peek: (_a, r) => [r.queue],
  claim: (_a, r) => [{ queue: r.queue, worker: `w-${r.n}` }],
  heartbeat: (_a, r) => [{ task: r.task, lease: r.lease }],
  complete: (_a, r) => [{ task: r.task, lease: r.lease, summary: 'done' }],
  fail: async (a, r) => {
    const c = await running(a, r, 'to fail');
    r.failed = c.task;
    return [{ ...c, error: 'it broke' }];
  },
  verdict: async (a, r) => {
    // A validated task that succeeded, and its validation task, running.
    const checked = await a.enqueue({ queue: r.queue, tool: 'run-bash', prompt: `checked of ${r.n}`, validate: { tool: 'run-bash', prompt: 'check.sh' } });
    const c = await a.claim({ queue: r.queue, worker: `w-${r.n}` });
    assert.equal(c?.task.id, checked.id);
    const done = await a.complete({ task: checked.id, lease: c.lease, summary: 'built' });
    const v = await a.claim({ queue: r.queue, worker: `w-${r.n}` });
    assert.equal(v?.task.id, done.validation!.by[0]);
    return [{ task: v!.task.id, lease: v!.lease, verdict: 'pass', feedback: 'looks right' }];
  },
  recordRun: async (a, r) => [{ task: r.task, attempt: (await a.getTask(r.task)).attempt, change: { worktree: '.sparkq/worktrees/x', branch: 'sparkq/q/x', baseRef: 'main', baseCommit: '0'.repeat(40), commit: '1'.repeat(40), files: [{ path: 'a.ts', status: 'M' }], filesChanged: 1, insertions: 1, deletions: 0 } }],
  requeue: (_a, r) => [r.failed],
  requeueFailed: async (a, r) => {
    const c = await running(a, r, 'to fail too');
    await a.fail({ ...c, error: 'again' });
    return [{ queue: r.queue }];
  },
  release: async (a, r) => {
    await a.listTasks({ queue: r.queue, status: 'queued' }).then(async (p) => {
      // The requeued tasks would be claimed first; claim them out of the way.
      for (let i = 0; i < p.tasks.length; i++) await a.claim({ queue: r.queue });
    });
    return [{ ...(await running(a, r, 'to hand back')), reason: 'usage limit' }];
  },
  pauseQueue: (_a, r) => [{ queue: r.queue, reason: 'a sample' }],
  setAgentSession: (_a, r) => [r.queue, { codexThreadId: `thread-${r.n}` }],
  resumeQueue: (_a, r) => [r.queue],
  applyPlan: (_a, r) => [{ plan: { id: `plan-${r.n}`, description: null, tasks: [{ key: 'a', queue: r.queue, tool: 'run-bash', prompt: 'x', after: [] }] } }],
  report: () => [{ by: 'tool' }],
  listTasks: (_a, r) => [{ queue: r.queue }],
  getTask: (_a, r) => [r.task],
  sweep: () => [],
  purge: () => [{ olderThanDays: 365 }],
  scripts: () => [],
  joinQueue: (_a, r) => [{ queue: r.queue, worker: `w-${r.n}`, leaseSeconds: 30 }],
  leaveQueue: (_a, r) => [{ queue: r.queue, worker: `w-${r.n}` }],
};

describe('the queue API contract', function () {
  this.timeout(30_000);

  it('lists each method once, with checks for as many arguments as its signature takes', () => {
    assert.deepEqual(Object.keys(SAMPLES).sort(), [...API_METHODS].sort());
    for (const m of API_METHODS) {
      const params = paramsOf(m);
      const optional = params.findIndex((p) => p.optional);
      assert.ok(optional === -1 || params.slice(optional).every((p) => p.optional), `${m}: optional arguments come last`);
      assert.equal(typeof QUEUE_API[m].doc, 'string');
      // A read never changes state; the set a client may repeat is exactly the entries that say so.
      if (!QUEUE_API[m].changesState) assert.ok(SAFE_TO_REPEAT.has(m), `${m} is a read, so it is safe to repeat`);
      assert.equal(SAFE_TO_REPEAT.has(m), QUEUE_API[m].safeToRepeat);
    }
  });

  it('checks the number of arguments and each field, naming it', () => {
    assert.throws(() => checkParams('status', [1]), (e: unknown) => isSparkqError(e, 'invalid-input') && /status: it takes no arguments, not 1/.test(e.message));
    assert.throws(() => checkParams('enqueue', []), (e: unknown) => isSparkqError(e, 'invalid-input') && /enqueue: it takes \(input\), not 0/.test(e.message));
    assert.throws(() => checkParams('enqueue', [{ queue: 'q', tool: 5, prompt: 'x' }]), (e: unknown) => isSparkqError(e, 'invalid-input') && /^invalid task: tool: /.test(e.message));
    assert.throws(() => checkParams('enqueue', [{ queue: 'q', tool: 't' }]), /a task needs a prompt or a payload/);
    assert.throws(() => checkParams('purge', [{ olderThanDays: -1 }]), /--older-than must be a number of days ≥ 0/);
    assert.doesNotThrow(() => checkParams('listTasks', []));
    assert.doesNotThrow(() => checkParams('listTasks', [{ status: ['queued', 'failed'] }]));
  });

  it('parses a request once: the queue takes what the IPC boundary read in the same turn, and nothing else', () => {
    const schema = Model.EnqueueInput;
    const real = schema.safeParse.bind(schema);
    let parses = 0;
    schema.safeParse = (v: unknown) => (parses++, real(v));
    try {
      const input = { queue: 'q', tool: 'run-bash', prompt: 'x' };
      assert.equal(paramsProblem('enqueue', [input]), null);
      assert.equal(checkEnqueue(input).input.prompt, 'x');
      assert.equal(parses, 1, 'the boundary parsed it; the queue took that reading');
      // Taken once: a second check of the same object (mutated meanwhile) reads it again.
      input.prompt = 'y';
      assert.equal(checkEnqueue(input).input.prompt, 'y');
      assert.equal(parses, 2);
      // Outside the boundary nothing is kept.
      checkEnqueue(input);
      checkEnqueue(input);
      assert.equal(parses, 4);
    } finally {
      schema.safeParse = real;
    }
  });

  describe('is served by every implementation', () => {
    let tmp: { dir: string; cleanup: () => void };
    let owning: QueueHandle;
    let client: QueueHandle;
    let ipc: IpcClient;

    before(async () => {
      tmp = tempDir('sparkq-contract-');
      owning = await openQueue(tmp.dir, { role: 'test', durability: 'full', watchConfig: false });
      client = await openQueue(tmp.dir, { role: 'test-client', env: {} });
      const rec = readOwnerRecord(sparkqDirOf(tmp.dir))!;
      ipc = await IpcClient.connect({ socketPath: rec.socketPath, token: rec.token });
      await owning.createSession({ name: 'main' });
    });
    after(async () => {
      ipc?.close();
      await client?.close();
      await owning?.close();
      tmp.cleanup();
    });

    const implementations: [string, () => QueueApi][] = [
      ['the owner itself (QueueOwner)', () => owning.owner!],
      ['the remote client over IPC (RemoteQueue)', () => new RemoteQueue(ipc)],
      ['the workspace handle that owns the queue', () => owning],
      ['the workspace handle of a client', () => client],
    ];
    for (const [name, impl] of implementations) {
      it(name, async () => {
        assert.ok(owning.isOwner && !client.isOwner, 'one handle owns, the other reaches it over IPC');
        const api = impl();
        const n = name.replace(/\W+/g, '-');
        const run: Run = { n, queue: `work-${n}`, task: '', lease: '', failed: '' };
        await api.createQueue({ name: run.queue, session: 'main', maxWorkers: 4 });
        for (const m of API_METHODS) {
          const params = await SAMPLES[m](api, run);
          let result: unknown;
          try {
            result = await invoke(api, m, params);
          } catch (e) {
            assert.fail(`${name}: ${m}(${JSON.stringify(params)}) failed: ${String(e)}`);
          }
          if (m === 'enqueue') run.task = (result as { id: string }).id;
          if (m === 'claim') {
            const c = result as { task: { id: string }; lease: string };
            assert.equal(c.task.id, run.task, 'claims the task just enqueued');
            run.lease = c.lease;
          }
        }
        const done = await api.getTask(run.task);
        assert.equal(done.status, 'succeeded');
      });
    }
  });

  describe('is served by the team database too', () => {
    let team: TeamQueue | undefined;
    before(async function () {
      const pg = await postgresOrSkip(this);
      team = await TeamQueue.open({ url: await pg.createDatabase('contract'), config: defaultConfig('contract') });
      await team.createSession({ name: 'main' });
    });
    after(async () => {
      await team?.close();
    });

    it('the team queue on PostgreSQL (TeamQueue)', async () => {
      // Typed as the contract: a method missing or with another signature does not compile.
      const api: QueueApi = team!;
      const run: Run = { n: 'team', queue: 'work-team', task: '', lease: '', failed: '' };
      await api.createQueue({ name: run.queue, session: 'main', maxWorkers: 4 });
      for (const m of API_METHODS) {
        const params = await SAMPLES[m](api, run);
        let result: unknown;
        try {
          result = await invoke(api, m, params);
        } catch (e) {
          assert.fail(`team: ${m}(${JSON.stringify(params)}) failed: ${String(e)}`);
        }
        if (m === 'enqueue') run.task = (result as { id: string }).id;
        if (m === 'claim') {
          const c = result as { task: { id: string }; lease: string };
          assert.equal(c.task.id, run.task, 'claims the task just enqueued');
          run.lease = c.lease;
        }
      }
      assert.equal((await api.getTask(run.task)).status, 'succeeded');
    });
  });
});
