import { strict as assert } from 'node:assert';
import type { PlanInput, Usage } from '../../../src/core/model';
import type { QueueService } from '../../../src/core/queue/service';
import { testQueue } from '../../support/queue';

const S = 1_000;

/*
 * A plan run by three workers at chosen moments of a fake clock, so that every figure of `report --plan` is an exact
 * number:
 *
 *   a (codex) 0–15   b (codex) 0–20   c (claude) 0–30        level 0: three workers at once
 *   d (codex, after a, b) 20–35      e (bash, after c) 30–32 fails, requeued as e' 32–37
 *   f (codex, after d, e) 37–50
 *
 * Wall clock 50 s; serial sum 15 + 20 + 30 + 15 + 2 + 5 + 13 = 100 s (the failed attempt of e counts: a worker spent
 * it); speed-up 2. Overlap: 0–15 three running (45 s of run time), 15–20 two (10), 20–30 two (20), 30–32 two (4),
 * 32–35 two (6), then one at a time: 85 of 100 s ran alongside another task, a parallel share of 0.85. Critical path
 * c → e → f: 30 + (2 + 5) + 13 = 50 s (b → d → f is 48 s).
 */
const PLAN: PlanInput = {
  id: 'batch',
  description: null,
  tasks: [
    { key: 'a', queue: 'q', tool: 'llm-codex', prompt: 'a', after: [] },
    { key: 'b', queue: 'q', tool: 'llm-codex', prompt: 'b', after: [] },
    { key: 'c', queue: 'q', tool: 'llm-claude', prompt: 'c', after: [] },
    { key: 'd', queue: 'q', tool: 'llm-codex', prompt: 'd', after: ['a', 'b'] },
    { key: 'e', queue: 'q', tool: 'run-bash', prompt: 'e', after: ['c'] },
    { key: 'f', queue: 'q', tool: 'llm-codex', prompt: 'f', after: ['d', 'e'] },
  ],
};

/** Codex runs on a subscription here: tokens, no cost. 2 M input (1 M cached) and 0.2 M output in all. */
const USAGE: Record<string, Usage> = {
  a: { inputTokens: 1_000_000, cachedInputTokens: 400_000, outputTokens: 100_000, model: 'gpt-5-codex' },
  b: { inputTokens: 500_000, cachedInputTokens: 100_000, outputTokens: 50_000, model: 'gpt-5-codex' },
  c: { inputTokens: 300_000, cachedInputTokens: 0, outputTokens: 10_000, costUsd: 1.05, model: 'claude-sonnet-4-5' },
  d: { inputTokens: 500_000, cachedInputTokens: 500_000, outputTokens: 50_000, model: 'gpt-5-codex' },
};

describe('report --plan: the pattern, measured', () => {
  let env: Awaited<ReturnType<typeof testQueue>>;
  let q: QueueService;
  const t0 = Date.UTC(2026, 0, 1);
  const ids = new Map<string, string>();

  beforeEach(async () => {
    env = await testQueue();
    q = env.q;
    await q.createQueue({ name: 'other', session: 's' });
    const applied = await q.applyPlan({ plan: PLAN });
    for (const c of applied.created) ids.set(c.key, c.task.id);
    const leases = new Map<string, string>();
    const at = (sec: number) => env.clock.set(t0 + sec * S);
    const claim = async (worker: string, key: string) => {
      const c = await q.claim({ queue: 'q', worker });
      assert.ok(c, `${worker} claims ${key}`);
      assert.equal(c.task.planKey, key, `${worker} claims ${key}`);
      leases.set(key, c.lease);
      ids.set(key, c.task.id);
    };
    const complete = async (key: string) => {
      const usage = USAGE[key];
      await q.complete({ task: ids.get(key)!, lease: leases.get(key)!, summary: `did ${key}`, ...(usage ? { usage } : {}) });
    };

    at(0);
    await claim('w1', 'a');
    await claim('w2', 'b');
    await claim('w3', 'c');
    // Work outside the plan at the same time, on another queue: it must not count.
    await q.enqueue({ queue: 'other', tool: 'llm-codex', prompt: 'not in the plan' });
    const stray = (await q.claim({ queue: 'other', worker: 'w4' }))!;
    at(15);
    await complete('a');
    assert.equal(await q.claim({ queue: 'q', worker: 'w1' }), null, 'd waits on b, e on c');
    await q.complete({ task: stray.task.id, lease: stray.lease, summary: 'stray', usage: { inputTokens: 9_999_999, costUsd: 99 } });
    at(20);
    await complete('b');
    await claim('w1', 'd');
    at(30);
    await complete('c');
    await claim('w3', 'e');
    at(32);
    await q.fail({ task: ids.get('e')!, lease: leases.get('e')!, error: 'flaky' });
    const copy = await q.requeue(ids.get('e')!);
    await claim('w3', 'e');
    assert.equal(ids.get('e'), copy.id);
    at(35);
    await complete('d');
    at(37);
    await complete('e');
    await claim('w2', 'f');
    at(50);
    await complete('f');
  });
  afterEach(async () => {
    await q.close().catch(() => undefined);
    env.cleanup();
  });

  it('wall clock, serial sum, speed-up, parallel share and critical path are exact', async () => {
    const r = await q.report({ plan: 'batch' });
    const plan = r.plan!;
    assert.deepEqual(
      {
        id: plan.id,
        tasks: plan.tasks,
        unfinished: plan.unfinished,
        firstStartAt: plan.firstStartAt,
        lastFinishAt: plan.lastFinishAt,
        wallClockMs: plan.wallClockMs,
        serialMs: plan.serialMs,
        speedup: plan.speedup,
        parallelShare: plan.parallelShare,
      },
      {
        id: 'batch',
        tasks: 7,
        unfinished: 0,
        firstStartAt: '2026-01-01T00:00:00.000Z',
        lastFinishAt: '2026-01-01T00:00:50.000Z',
        wallClockMs: 50 * S,
        serialMs: 100 * S,
        speedup: 2,
        parallelShare: 0.85,
      },
    );
    assert.deepEqual(plan.criticalPath, {
      runMs: 50 * S,
      tasks: [
        { key: 'c', id: ids.get('c'), runMs: 30 * S },
        { key: 'e', id: ids.get('e'), runMs: 7 * S },
        { key: 'f', id: ids.get('f'), runMs: 13 * S },
      ],
    });
  });

  it('the rows are the plan tasks only, and its Codex tokens are priced at every priced model', async () => {
    const r = await q.report({ plan: 'batch' });
    assert.deepEqual(
      r.rows.map((x) => [x.key, x.tasks, x.succeeded, x.failed, x.runMs, x.inputTokens, x.costUsd]),
      [
        ['llm-codex', 4, 4, 0, (15 + 20 + 15 + 13) * S, 2_000_000, 0],
        ['run-bash', 2, 1, 1, 7 * S, 0, 0],
        ['llm-claude', 1, 1, 0, 30 * S, 300_000, 1.05],
      ],
    );
    assert.equal(r.total.costUsd, 1.05, 'the stray task outside the plan is not counted');
    const { pricedAt, ...tokens } = r.plan!.codex;
    assert.deepEqual(tokens, { tasks: 4, inputTokens: 2_000_000, cachedInputTokens: 1_000_000, outputTokens: 200_000, costUsd: 0 });
    // gpt-5: 1 M uncached × $1.25 + 1 M cached × $0.125 + 0.2 M output × $10 = $3.375; and so on.
    assert.deepEqual(pricedAt, [
      { model: 'gpt-5', costUsd: 3.375 },
      { model: 'gpt-5-codex', costUsd: 3.375 },
      { model: 'gpt-5-mini', costUsd: 0.675 },
      { model: 'claude-opus-4-5', costUsd: 10.5 },
      { model: 'claude-sonnet-4-5', costUsd: 6.3 },
      { model: 'claude-haiku-4-5', costUsd: 2.1 },
    ]);

    env.config.pricing = { mine: { input: 2, cachedInput: 1, output: 4 } };
    assert.deepEqual((await q.report({ plan: 'batch' })).plan!.codex.pricedAt, [{ model: 'mine', costUsd: 2 + 1 + 0.8 }]);
  });

  it('by model, within a session, and the same once the plan tasks moved to the archive', async () => {
    const byModel = await q.report({ plan: 'batch', by: 'model', session: 's' });
    assert.deepEqual(
      byModel.rows.map((x) => [x.key, x.tasks]),
      [
        ['(none)', 3],
        ['gpt-5-codex', 3],
        ['claude-sonnet-4-5', 1],
      ],
    );
    const live = await q.report({ plan: 'batch' });

    env.config.store.liveCap = 100;
    await q.enqueueMany(Array.from({ length: 250 }, () => ({ queue: 'other', tool: 'run-bash', prompt: 'bulk' })));
    const claims = await q.claimMany({ queue: 'other' }, 250);
    await q.completeMany(claims.map((c) => ({ task: c.task.id, lease: c.lease, summary: 'ok' })));
    await q.maintain();
    assert.ok(q.getTask(ids.get('a')!).archived, 'the plan tasks were archived');
    assert.deepEqual(await q.report({ plan: 'batch' }), live);
  });

  it('without a plan there are no plan figures; an unknown plan is not found, naming the plans', async () => {
    assert.equal('plan' in (await q.report({})), false);
    await assert.rejects(q.report({ plan: 'nope' }), /no plan "nope"; plans: batch/);
  });
});
