import { strict as assert } from 'node:assert';
import type { QueueService } from '../../../src/core/queue/service';
import { text } from '../../../src/mcp/text';
import { testQueue } from '../../support/queue';
import { runPlanScenario, S } from './reports.scenario';

/* The plan of reports.scenario.ts, run by three workers at known moments: every figure is exact. */
describe('report --plan: the pattern, measured', () => {
  let env: Awaited<ReturnType<typeof testQueue>>;
  let q: QueueService;
  let ids: Map<string, string>;

  beforeEach(async () => {
    env = await testQueue();
    q = env.q;
    ids = await runPlanScenario(q, env.clock);
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

  it('against the naive plan: every task\'s tokens on the orchestrator\'s model, the savings and their share, the time saved', async () => {
    const naive = (await q.report({ plan: 'batch' })).plan!.naive;
    // a, b, c and d recorded usage: 2.3 M input (1.0 M cached), 0.21 M output. At claude-sonnet-4-5 (the default
    // orchestrator): 1.3 M × $3 + 1.0 M × $0.30 + 0.21 M × $15 = $7.35, against the $1.05 recorded (c's).
    assert.deepEqual(naive, {
      model: 'claude-sonnet-4-5',
      tasks: 4,
      inputTokens: 2_300_000,
      cachedInputTokens: 1_000_000,
      outputTokens: 210_000,
      costUsd: 7.35,
      actualCostUsd: 1.05,
      savedUsd: 6.3,
      savedShare: 0.857,
      timeSavedMs: 50 * S,
    });
    const opus = (await q.report({ plan: 'batch', orchestrator: 'claude-opus-4-5' })).plan!.naive;
    assert.equal(opus.model, 'claude-opus-4-5');
    assert.equal(opus.costUsd, 12.25, '1.3 M × $5 + 1.0 M × $0.50 + 0.21 M × $25');
    const unpriced = (await q.report({ plan: 'batch', orchestrator: 'no-such-model' })).plan!.naive;
    assert.deepEqual([unpriced.model, unpriced.costUsd, unpriced.savedUsd, unpriced.savedShare], [null, null, null, null]);
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

  it("the MCP report tool's short text carries the plan's figures", async () => {
    const lines = text.report(await q.report({ plan: 'batch' })).split('\n');
    assert.equal(lines[0], 'by tool, plan batch');
    assert.deepEqual(lines.slice(-4), [
      'plan batch: 7 tasks, wall clock 50 s, serial 100 s, speed-up 2x, parallel share 85%',
      `critical path 50 s: c (${ids.get('c')!}) 30 s -> e (${ids.get('e')!}) 7 s -> f (${ids.get('f')!}) 13 s`,
      'naive plan (claude-sonnet-4-5 doing all 4 tasks itself): $7.3500 against $1.0500 recorded, saved $6.3000 (86%); 50.0 s saved by running in parallel',
      'codex tokens in 2000000 (cached 1000000) out 200000, recorded $0.0000; if billed at: gpt-5 $3.3750, gpt-5-codex $3.3750, gpt-5-mini $0.6750, claude-opus-4-5 $10.5000, claude-sonnet-4-5 $6.3000, claude-haiku-4-5 $2.1000',
    ]);
  });

  it('without a plan there are no plan figures; an unknown plan is not found, naming the plans', async () => {
    assert.equal('plan' in (await q.report({})), false);
    await assert.rejects(q.report({ plan: 'nope' }), /no plan "nope"; plans: batch/);
  });
});

describe('report --plan while the plan runs', () => {
  it('counts what ended so far and says how many tasks are unfinished', async () => {
    const env = await testQueue();
    const q = env.q;
    try {
      const step = (key: string, after: string[] = []) => ({ key, queue: 'q', tool: 'run-bash', prompt: key, after });
      await q.applyPlan({ plan: { id: 'p', description: null, tasks: [step('a'), step('b'), step('c', ['a', 'b'])] } });
      const fresh = (await q.report({ plan: 'p' })).plan!;
      assert.deepEqual(
        [fresh.tasks, fresh.unfinished, fresh.firstStartAt, fresh.wallClockMs, fresh.serialMs, fresh.speedup, fresh.parallelShare, fresh.criticalPath],
        [3, 3, null, 0, 0, null, null, { runMs: 0, tasks: [] }],
      );
      const a = (await q.claim({ queue: 'q' }))!;
      env.clock.advance(4 * S);
      const b = (await q.claim({ queue: 'q' }))!;
      env.clock.advance(6 * S);
      await q.complete({ task: a.task.id, lease: a.lease, summary: 'a' });
      const partial = (await q.report({ plan: 'p' })).plan!;
      // a ran 0–10 s and ended; b (running since 4 s) and c (queued) have not.
      assert.deepEqual(
        [partial.unfinished, partial.wallClockMs, partial.serialMs, partial.speedup, partial.parallelShare, partial.criticalPath.tasks.map((t) => t.key)],
        [2, 10 * S, 10 * S, 1, 0, ['a']],
      );
      assert.equal(b.task.planKey, 'b');
    } finally {
      await q.close();
      env.cleanup();
    }
  });
});
