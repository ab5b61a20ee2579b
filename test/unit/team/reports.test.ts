import { strict as assert } from 'node:assert';
import { FakeClock } from '../../../src/core/clock';
import { defaultConfig } from '../../../src/core/config';
import type { QueueHandle } from '../../../src/core/queue/handle';
import type { QueueService } from '../../../src/core/queue/service';
import type { Report, ReportInput } from '../../../src/core/model';
import { TeamDb } from '../../../src/team/db';
import { teamReport } from '../../../src/team/reports';
import { migrate } from '../../../src/team/schema';
import { TeamQueue } from '../../../src/team/teamQueue';
import { postgresOrSkip } from '../../support/postgres';
import { type TestQueue, testQueue } from '../../support/queue';
import { runPlanScenario, S, T0 } from '../core/reports.scenario';

/*
 * report on the team database against the embedded store's, over the same rows: the plan scenario of
 * reports.scenario.ts and more work around it are run on an embedded queue, every row is copied into a fresh
 * PostgreSQL schema, and each report (every grouping, with and without session and plan) must be deep-equal. Then the
 * same scenario run through TeamQueue itself, with its own task ids.
 */

const DAY = 86_400_000;
const TABLES = ['sessions', 'queues', 'plans', 'tasks', 'attempts', 'task_deps'] as const;

/** Copies the embedded queue's rows, column for column, into the team schema `db` points at. */
async function copyRows(q: QueueService, db: TeamDb): Promise<void> {
  const h = (q as unknown as { h: QueueHandle }).h;
  await db.tx(async (c) => {
    for (const table of TABLES) {
      const cols = new Set(
        (await c.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1', [table])).rows.map(
          (r) => r.column_name,
        ),
      );
      for (const row of h.db.all(`SELECT * FROM ${table}`)) {
        const keys = Object.keys(row).filter((k) => cols.has(k));
        await c.query(
          `INSERT INTO ${table} (${keys.join(', ')}) ${table === 'tasks' ? 'OVERRIDING SYSTEM VALUE' : ''} VALUES (${keys.map((_, i) => `$${i + 1}`).join(', ')})`,
          keys.map((k) => row[k]),
        );
      }
    }
  });
}

/**
 * Beyond the plan: a second session `s2` whose queue `other` has the name of the ended queue `other` of `s` (by queue
 * they are one group), work finished on the next two days, a task still running and one still queued.
 */
async function moreWork(env: TestQueue): Promise<void> {
  const { q, clock } = env;
  await q.endQueue('other');
  await q.createSession({ name: 's2' });
  await q.createQueue({ name: 'other', session: 's2' });
  await q.createQueue({ name: 'q2', session: 's2' });
  const run = async (queue: string, tool: string, ms: number, usage?: object, fail = false) => {
    await q.enqueue({ queue, tool, prompt: 'x' });
    const c = (await q.claim({ queue }))!;
    clock.advance(ms);
    if (fail) await q.fail({ task: c.task.id, lease: c.lease, error: 'no' });
    else await q.complete({ task: c.task.id, lease: c.lease, summary: 'ok', ...(usage ? { usage } : {}) });
  };
  clock.set(T0 + DAY + 5 * S);
  await run('other', 'llm-codex', 3 * S, { inputTokens: 7, cachedInputTokens: 2, outputTokens: 5, reasoningTokens: 3, costUsd: 0.1, model: 'gpt-5' });
  await run('q2', 'llm-claude', 4 * S, { inputTokens: 11, outputTokens: 1, costUsd: 0.2, model: 'claude-haiku-4-5' });
  clock.set(T0 + 2 * DAY + 7 * S);
  await run('q2', 'run-bash', 1 * S, undefined, true);
  await run('q2', 'llm-codex', 2 * S, { inputTokens: 1, costUsd: 0.0000004 });
  await q.enqueue({ queue: 'q2', tool: 'run-python', prompt: 'running' });
  await q.claim({ queue: 'q2' });
  await q.enqueue({ queue: 'q2', tool: 'run-python', prompt: 'queued' });
}

describe('team report: the same figures as the embedded store over the same rows', function () {
  let env: TestQueue;
  let db: TeamDb;
  let ids: Map<string, string>;
  const team = (input?: ReportInput) => db.tx((c) => teamReport(c, input, { now: env.clock.now(), config: env.config }), 'repeatable read');

  before(async function () {
    const server = await postgresOrSkip(this);
    env = await testQueue();
    ids = await runPlanScenario(env.q, env.clock);
    await moreWork(env);
    db = new TeamDb({ url: await server.createDatabase('reports'), schema: 'sparkq' });
    await migrate(db, 'sparkq');
    await copyRows(env.q, db);
  });
  after(async () => {
    await db?.end();
    await env?.q.close().catch(() => undefined);
    env?.cleanup();
  });

  it('the plan figures are exact: wall clock, serial sum, speed-up, parallel share, critical path, Codex repricing', async () => {
    const plan = (await team({ plan: 'batch' })).plan!;
    assert.deepEqual(
      [plan.tasks, plan.unfinished, plan.firstStartAt, plan.lastFinishAt, plan.wallClockMs, plan.serialMs, plan.speedup, plan.parallelShare],
      [7, 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:50.000Z', 50 * S, 100 * S, 2, 0.85],
    );
    assert.deepEqual(plan.criticalPath, {
      runMs: 50 * S,
      tasks: [
        { key: 'c', id: ids.get('c'), runMs: 30 * S },
        { key: 'e', id: ids.get('e'), runMs: 7 * S },
        { key: 'f', id: ids.get('f'), runMs: 13 * S },
      ],
    });
    const { pricedAt, ...tokens } = plan.codex;
    assert.deepEqual(tokens, { tasks: 4, inputTokens: 2_000_000, cachedInputTokens: 1_000_000, outputTokens: 200_000, costUsd: 0 });
    assert.deepEqual(pricedAt.find((p) => p.model === 'gpt-5'), { model: 'gpt-5', costUsd: 3.375 });
  });

  it('groups by tool, model, queue and day with the sums of the usage JSON', async () => {
    const byQueue = await team({ by: 'queue' });
    assert.deepEqual(
      byQueue.rows.map((r) => [r.key, r.tasks, r.succeeded, r.failed, r.runMs]),
      [
        ['q', 7, 6, 1, 100 * S],
        ['q2', 5, 2, 1, 7 * S],
        // The ended queue `other` of s and the active one of s2: one name, one group.
        ['other', 2, 2, 0, 18 * S],
      ],
    );
    const byDay = await team({ by: 'day' });
    assert.deepEqual(
      byDay.rows.map((r) => [r.key, r.tasks]),
      [
        ['(unfinished)', 2],
        ['2026-01-01', 8],
        ['2026-01-02', 2],
        ['2026-01-03', 2],
      ],
    );
    const gpt5 = (await team({ by: 'model', session: 's2' })).rows.find((r) => r.key === 'gpt-5')!;
    assert.deepEqual(gpt5, { key: 'gpt-5', tasks: 1, succeeded: 1, failed: 0, runMs: 3 * S, inputTokens: 7, cachedInputTokens: 2, outputTokens: 5, reasoningTokens: 3, costUsd: 0.1 });
    // 1.05 + 99 + 0.1 + 0.2 + 0.0000004: a cost below half a millionth of a dollar rounds away.
    assert.equal((await team({})).total.costUsd, 100.35);
  });

  it('every grouping, with and without session and plan, deep-equals the embedded report', async () => {
    const filters: ReportInput[] = [{}, { session: 's' }, { session: 's2' }, { plan: 'batch' }, { plan: 'batch', session: 's' }, { plan: 'batch', session: 's2' }];
    for (const by of ['tool', 'model', 'queue', 'day'] as const) {
      for (const f of filters) {
        const input = { ...f, by };
        assert.deepEqual(await team(input), await env.q.report(input), JSON.stringify(input));
      }
    }
    assert.deepEqual(await team(undefined), await env.q.report(), 'no input: by tool over everything');
    // A session by id as well as by name.
    const s2 = env.q.getSession('s2').id;
    assert.deepEqual(await team({ session: s2, by: 'model' }), await env.q.report({ session: s2, by: 'model' }));
  });

  it('an unknown plan or session is not found with the embedded message; bad input is invalid-input', async () => {
    for (const input of [{ plan: 'nope' }, { session: 'nope' }, { session: 'nope', plan: 'nope' }]) {
      const expected = await env.q.report(input).then(
        () => assert.fail('the embedded store found it'),
        (e: Error) => e,
      );
      await assert.rejects(team(input), (e: Error & { code?: string }) => e.message === expected.message && e.code === (expected as { code?: string }).code);
    }
    await assert.rejects(team({ by: 'week' } as unknown as ReportInput), (e: { code?: string }) => e.code === 'invalid-input');
  });
});

describe('team report: the plan scenario run through TeamQueue', () => {
  let embedded: TestQueue | undefined;
  let team: TeamQueue | undefined;
  after(async () => {
    await team?.close();
    await embedded?.q.close().catch(() => undefined);
    embedded?.cleanup();
  });

  it("gives the embedded store's reports, each plan name's newest task in place of its id", async function () {
    const server = await postgresOrSkip(this);
    embedded = await testQueue();
    const clock = new FakeClock();
    team = await TeamQueue.open({ url: await server.createDatabase('scenario'), config: defaultConfig('test'), clock, maxConnections: 4 });
    await team.createSession({ name: 's' });
    await team.createQueue({ name: 'q', session: 's', instructions: 'Be brief.' });
    const embeddedIds = await runPlanScenario(embedded.q, embedded.clock);
    // The scenario drives the queue API, which TeamQueue serves as the embedded QueueService does.
    const teamIds = await runPlanScenario(team as unknown as QueueService, clock);
    assert.notDeepEqual([...teamIds.values()], [...embeddedIds.values()], 'each store made its own ids');
    const byKey = (r: Report, ids: Map<string, string>): Report => {
      const keyOf = new Map([...ids].map(([k, id]) => [id, k]));
      if (!r.plan) return r;
      const tasks = r.plan.criticalPath.tasks.map((t) => ({ ...t, id: `newest of ${keyOf.get(t.id) ?? t.id}` }));
      return { ...r, plan: { ...r.plan, criticalPath: { ...r.plan.criticalPath, tasks } } };
    };
    for (const by of ['tool', 'model', 'queue', 'day'] as const) {
      for (const f of [{}, { session: 's' }, { plan: 'batch' }, { plan: 'batch', session: 's' }]) {
        const input = { ...f, by };
        assert.deepEqual(byKey(await team.report(input), teamIds), byKey(await embedded.q.report(input), embeddedIds), JSON.stringify(input));
      }
    }
    const plan = (await team.report({ plan: 'batch' })).plan!;
    assert.deepEqual([plan.wallClockMs, plan.serialMs, plan.speedup, plan.parallelShare, plan.criticalPath.runMs], [50 * S, 100 * S, 2, 0.85, 50 * S]);
    assert.deepEqual(
      plan.criticalPath.tasks.map((t) => t.id),
      ['c', 'e', 'f'].map((k) => teamIds.get(k)),
    );
  });
});
