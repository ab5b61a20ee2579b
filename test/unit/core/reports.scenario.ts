import { strict as assert } from 'node:assert';
import type { FakeClock } from '../../../src/core/clock';
import type { PlanInput, Usage } from '../../../src/core/model';
import type { QueueService } from '../../../src/core/queue/service';

export const S = 1_000;

/** When the scenario starts: the FakeClock's default start. */
export const T0 = Date.UTC(2026, 0, 1);

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
export const PLAN: PlanInput = {
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

/**
 * Applies PLAN on a queue that has session `s` and queue `q` and runs it as drawn above, with a task on queue `other`
 * (made here) running meanwhile outside the plan. Returns the id of the newest task of each plan name.
 */
export async function runPlanScenario(q: QueueService, clock: FakeClock): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  await q.createQueue({ name: 'other', session: 's' });
  const applied = await q.applyPlan({ plan: PLAN });
  for (const c of applied.created) ids.set(c.key, c.task.id);
  const leases = new Map<string, string>();
  const at = (sec: number) => clock.set(T0 + sec * S);
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
  return ids;
}
