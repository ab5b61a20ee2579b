import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { type SparkqConfig, defaultConfigYaml, parseConfig } from '../../../src/core/config';
import type { Queue, Session, Task, TaskDetail } from '../../../src/core/model';
import { QueueService } from '../../../src/core/queue/service';
import { TeamQueue } from '../../../src/team/teamQueue';
import { Cli, type RunOptions, assertError, bundleCli } from '../../support/cli';
import { postgresOrSkip } from '../../support/postgres';
import { fingerprint, tempDir } from '../../support/tmp';

/*
 * sparkq migrate, with the real CLI and a real PostgreSQL: an embedded queue with something of everything (sessions,
 * a paused queue, agent ids, tasks in every status with a running one, a retry waiting with its failed attempt, a
 * plan with tasks still waiting, a requeue, idempotency keys, and finished tasks beyond a live cap of 100, so that
 * most are in archive files) is moved into PostgreSQL and back, and must read, page and claim the same afterwards.
 *
 * The one field that differs by design is `archived`: the team database has no archive files, and the way back
 * archives by its own live cap. Listings are compared without it.
 */

interface MoveJson {
  counts: { sessions: number; queues: number; plans: number; tasks: Record<string, number>; attempts: number; dependencies: number; waiting: number; requeues: number; idempotencyKeys: number };
  archivedTasks: number;
  seqHigh: number;
  switched: boolean;
  config: Record<string, string>;
}

const withoutArchived = <T extends { archived: boolean }>(tasks: readonly T[]): Omit<T, 'archived'>[] => tasks.map(({ archived: _a, ...rest }) => rest);

function configText(project: string, store: Record<string, string | number> = {}): string {
  // Retries wait an hour, so a task waiting to be retried stays unclaimable for the whole test, on either store.
  return defaultConfigYaml(project, { liveCap: 100, ...store })
    .replace(/backoffSeconds: \d+/, 'backoffSeconds: 3600')
    .replace(/maxBackoffSeconds: \d+/, 'maxBackoffSeconds: 3600');
}

/** Everything a queue holds, read through its API: sessions, queues, and every task's detail. */
async function everything(q: {
  listSessions(o: { includeEnded?: boolean }): Session[] | Promise<Session[]>;
  listQueues(o: { includeEnded?: boolean }): Queue[] | Promise<Queue[]>;
  getTask(id: string): TaskDetail | Promise<TaskDetail>;
}, ids: readonly string[]): Promise<{ sessions: Session[]; queues: Queue[]; tasks: Omit<TaskDetail, 'archived'>[] }> {
  const tasks: TaskDetail[] = [];
  for (const id of ids) tasks.push(await q.getTask(id));
  return { sessions: await q.listSessions({ includeEnded: true }), queues: await q.listQueues({ includeEnded: true }), tasks: withoutArchived(tasks) };
}

describe('sparkq migrate: the queue moved between the embedded store and PostgreSQL', function () {
  this.timeout(180_000);
  const tmp = tempDir('sparkq-migrate-');
  let cli: Cli;
  let url: string;
  let config: SparkqConfig;
  /** The embedded workspace the queue is moved from. */
  const source = path.join(tmp.dir, 'embedded');
  const dbDir = path.join(source, '.sparkq', 'db');
  /** A workspace in team mode on the moved queue. */
  let team: RunOptions;
  let keyed: { bulk: string; backEnd: string };
  let listing: Task[];

  before(async function () {
    url = await (await postgresOrSkip(this)).createDatabase('migrate');
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    fs.mkdirSync(source, { recursive: true });
    fs.writeFileSync(path.join(source, 'sparkq.yml'), configText('migrate'));
    config = parseConfig(fs.readFileSync(path.join(source, 'sparkq.yml'), 'utf8'), 'sparkq.yml').config;
    keyed = await fillEmbeddedQueue(dbDir, config);
    const teamDir = path.join(tmp.dir, 'team');
    fs.mkdirSync(teamDir);
    fs.writeFileSync(path.join(teamDir, 'sparkq.yml'), configText('team', { kind: 'postgres', url }));
    team = { cwd: teamDir };
  });
  after(() => tmp.cleanup());

  it('copies the embedded queue, live and archived, into an empty schema, checks the counts, and leaves the files as they were', async () => {
    const before = fingerprint(dbDir);
    assert.ok(Object.keys(before).some((f) => f.startsWith('archive/')), 'some finished tasks are in archive files');
    const r = await cli.run(['migrate', '--to', 'postgres', url, '--json', '--progress-every', '200'], { cwd: source });
    assert.equal(r.code, 0, r.stderr);
    const moved = JSON.parse(r.stdout) as MoveJson;
    assert.deepEqual(moved.counts, {
      sessions: 2,
      queues: 5,
      plans: 1,
      tasks: { queued: 9, running: 1, succeeded: 401, failed: 2 },
      attempts: 405,
      dependencies: 3,
      waiting: 3,
      requeues: 1,
      idempotencyKeys: 3,
    });
    assert.equal(moved.archivedTasks, 303, 'the finished tasks beyond the live cap came from the archive files');
    assert.deepEqual(moved.config, { kind: 'postgres', url });
    assert.equal(moved.switched, false);
    // A progress line each time another 200 tasks have been copied (live tasks first, then a chunk at a time), on
    // stderr only.
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    for (const l of lines) assert.match(l, /^sparkq migrate: \d+ of 413 tasks copied \(\d+\.\d s\)$/);
    assert.equal(lines[1]!.split(' ')[2], '413');
    assert.deepEqual(fingerprint(dbDir), before, 'the embedded files are byte for byte as they were');
    assert.equal(fs.readFileSync(path.join(source, 'sparkq.yml'), 'utf8'), configText('migrate'), 'sparkq.yml untouched without --switch');

    const human = await cli.run(['migrate', '--to', 'postgres', url, '--schema', 'elsewhere'], { cwd: source });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /413 tasks: 9 queued, 1 running, 401 succeeded, 2 failed \(303 in archive files\)/);
    assert.match(human.stdout, /put this in sparkq\.yml.*\nstore:\n {2}kind: postgres\n {2}url: postgres:\/\/\S+\n {2}schema: elsewhere\n/);
  });

  it('the team database then lists, details and counts every task as the embedded store did', async () => {
    listing = await cli.json<Task[]>(['tasks', '--all'], { cwd: source });
    assert.equal(listing.length, 413);
    assert.ok(listing.some((t) => t.archived));
    const teamListing = await cli.json<Task[]>(['tasks', '--all'], team);
    assert.deepEqual(withoutArchived(teamListing), withoutArchived(listing));
    // Paging by the same seqs: the second page of 50 starts after the same task.
    const page = await cli.json<Task[]>(['tasks', '--limit', '60', '--queue', 'Bulk'], team);
    assert.deepEqual(page.map((t) => t.id), listing.filter((t) => t.queue === 'Bulk').slice(0, 60).map((t) => t.id));

    const ids = listing.map((t) => t.id);
    const embedded = await QueueService.open({ dir: dbDir, config, autoMaintain: false });
    const pg = await TeamQueue.open({ url, config, maxConnections: 2 });
    try {
      const want = await everything(embedded, ids);
      const got = await everything(pg, ids);
      assert.deepEqual(got.sessions, want.sessions);
      assert.deepEqual(got.queues, want.queues);
      const paused = got.queues.find((q) => q.name === 'Paused')!;
      assert.deepEqual([paused.paused, paused.pauseReason], [true, 'waiting for review']);
      const backEnd = got.queues.find((q) => q.name === 'Back End')!;
      assert.deepEqual([backEnd.codexThreadId, backEnd.claudeSessionId], ['thread-123', 'claude-456']);
      for (let i = 0; i < ids.length; i++) assert.deepEqual(got.tasks[i], want.tasks[i], `task ${ids[i]!}`);
      const running = got.tasks.find((t) => t.status === 'running')!;
      assert.equal(running.attempts.length, 1);
      assert.ok(got.tasks.some((t) => t.status === 'queued' && t.notBefore !== null && t.attempts[0]?.outcome === 'failed'), 'a retry waiting, with its failed attempt');
      assert.ok(got.tasks.some((t) => t.waitingOn.length > 0), 'plan tasks still waiting');
      assert.deepEqual(await pg.counts(), embedded.counts());
    } finally {
      await embedded.close({ snapshot: false });
      await pg.close();
    }
  });

  it('refuses a second move into the now full schema, changing nothing on either side', async () => {
    const before = fingerprint(dbDir);
    const rows = await tableDigest(url, 'sparkq');
    assertError(await cli.run(['migrate', '--to', 'postgres', url], { cwd: source }), 1, /schema sparkq of the team database .* is not empty \(2 sessions, 5 queues, 1 plans, 413 tasks, .*nothing was changed/);
    assert.deepEqual(await tableDigest(url, 'sparkq'), rows);
    assert.deepEqual(fingerprint(dbDir), before);

    // What there is to move from, and where to, is said plainly.
    assertError(await cli.run(['migrate', '--to', 'sqljs'], { cwd: source }), 1, /not in team mode .*use --to postgres URL/);
    assertError(await cli.run(['migrate', '--to', 'postgres'], { cwd: source }), 1, /say which team database to move to/);

    // A live owner of the embedded queue is named, not read through.
    const serving = await cli.serve({ cwd: source });
    try {
      assertError(await cli.run(['migrate', '--to', 'postgres', url, '--schema', 'while_served'], { cwd: source }), 1, /the embedded queue is open in process \d+ \(serve, .*close it/);
    } finally {
      await serving.stop();
    }
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      assert.equal((await c.query("SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = 'while_served'")).rows[0].n, 0);
    } finally {
      await c.end();
    }
  });

  it('a copy that fails half-way is rolled back: the target schema holds no rows and its seq is untouched', async () => {
    const ws = path.join(tmp.dir, 'broken');
    fs.mkdirSync(ws);
    fs.writeFileSync(path.join(ws, 'sparkq.yml'), configText('broken'));
    const q = await QueueService.open({ dir: path.join(ws, '.sparkq', 'db'), config });
    await q.createSession({ name: 's' });
    await q.createQueue({ name: 'q', session: 's' });
    await q.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ queue: 'q', tool: 'run-bash', prompt: `t${i}` })));
    // An attempt of a task that does not exist: PostgreSQL's foreign key refuses it, after sessions, queues and tasks
    // went in. Written past the journal, straight into the database that the closing snapshot saves.
    q.store.db.run("INSERT INTO attempts(task_id, n, lease, worker, started_at, outcome) VALUES ('tsk_gone', 1, 'l', 'w', 1, 'failed')");
    await q.close();
    assertError(await cli.run(['migrate', '--to', 'postgres', url, '--schema', 'broken'], { cwd: ws }), 1, /copying into schema broken of .* failed \(.*foreign key.*\); it was rolled back/);
    const digest = await tableDigest(url, 'broken');
    assert.deepEqual(Object.values(digest).slice(0, 8), Array(8).fill('0:'), JSON.stringify(digest));
    assert.equal(digest['seq'], '1', 'the next task seq is where it was');
  });

  it('--switch writes team mode into sparkq.yml without the password; the workspace then works on the team database', async () => {
    const ws = path.join(tmp.dir, 'switched');
    fs.cpSync(source, ws, { recursive: true });
    const withPassword = url.replace('sparkq@', 'sparkq:not-a-real-secret@');
    const moved = await cli.json<MoveJson>(['migrate', '--to', 'postgres', withPassword, '--schema', 'moved', '--switch'], { cwd: ws });
    assert.equal(moved.switched, true);
    const yml = fs.readFileSync(path.join(ws, 'sparkq.yml'), 'utf8');
    assert.match(yml, /^store:\n {2}kind: postgres\n/m);
    assert.match(yml, /schema: moved/);
    assert.ok(!yml.includes('not-a-real-secret') && !yml.includes('url:'), 'no password, and no URL, in sparkq.yml');
    assert.match(yml, /# Shown for this workspace's queue\./, 'the comments are kept');
    const seen = await cli.json<Task[]>(['tasks', '--all'], { cwd: ws, env: { SPARKQ_DATABASE_URL: url } });
    assert.deepEqual(withoutArchived(seen), withoutArchived(listing));
  });

  it('--to sqljs makes a new embedded queue of the team database, and refuses a workspace whose embedded queue has data', async () => {
    const back = path.join(tmp.dir, 'back');
    fs.mkdirSync(back);
    fs.writeFileSync(path.join(back, 'sparkq.yml'), configText('back', { kind: 'postgres', url }));
    // An empty embedded store (a command once opened it here) is replaced.
    await (await QueueService.open({ dir: path.join(back, '.sparkq', 'db'), config })).close();
    const moved = await cli.json<MoveJson>(['migrate', '--to', 'sqljs', '--switch'], { cwd: back });
    assert.equal(moved.counts.tasks['succeeded'], 401);
    assert.equal(moved.archivedTasks, 403 - 100, 'finished tasks beyond the live cap of 100 go to archive files');
    assert.match(fs.readFileSync(path.join(back, 'sparkq.yml'), 'utf8'), /^store:\n {2}kind: sqljs\n/m);
    assert.ok(!fs.readFileSync(path.join(back, 'sparkq.yml'), 'utf8').includes('url:'));
    const seen = await cli.json<Task[]>(['tasks', '--all'], { cwd: back });
    assert.deepEqual(withoutArchived(seen), withoutArchived(listing));
    assert.ok(seen.some((t) => t.archived), 'the embedded store reads its archive files');
    assert.deepEqual(fs.readdirSync(path.join(back, '.sparkq')).filter((f) => f.startsWith('db')), ['db'], 'nothing left beside the new store');

    const full = path.join(tmp.dir, 'full');
    fs.cpSync(source, full, { recursive: true });
    fs.writeFileSync(path.join(full, 'sparkq.yml'), configText('full', { kind: 'postgres', url }));
    const before = fingerprint(path.join(full, '.sparkq', 'db'));
    assertError(await cli.run(['migrate', '--to', 'sqljs'], { cwd: full }), 1, /already has an embedded queue with data .*\(2 sessions, 413 tasks\), so nothing was changed/);
    assert.deepEqual(fingerprint(path.join(full, '.sparkq', 'db')), before);
  });

  it('claims continue in the same order on every copy, and a keyed enqueue repeated finds its task', async () => {
    const back = path.join(tmp.dir, 'back', '.sparkq', 'db');
    const backConfig = parseConfig(configText('back'), 'sparkq.yml').config;
    const stores = {
      embedded: await QueueService.open({ dir: dbDir, config, autoMaintain: false }),
      team: await TeamQueue.open({ url, config, maxConnections: 2 }),
      back: await QueueService.open({ dir: back, config: backConfig, autoMaintain: false }),
    };
    try {
      const order: Record<string, string[]> = {};
      for (const [name, q] of Object.entries(stores)) {
        const claimed: string[] = [];
        for (const queue of ['Back End', 'Plan', 'Paused']) {
          for (let c = await q.claim({ queue, worker: 'w' }); c !== null; c = await q.claim({ queue, worker: 'w' })) claimed.push(`${queue}:${c.task.prompt ?? ''}`);
        }
        order[name] = claimed;
      }
      assert.deepEqual(order['team'], order['embedded']);
      assert.deepEqual(order['back'], order['embedded']);
      assert.deepEqual(order['embedded'], ['Back End:urgent', 'Back End:third', 'Back End:again', 'Back End:first', 'Plan:plan a']);

      for (const [name, q] of Object.entries(stores)) {
        const again = await q.enqueue({ queue: 'Bulk', tool: 'run-bash', prompt: 'a repeat', idempotencyKey: 'bulk-key' });
        assert.equal(again.id, keyed.bulk, `${name}: the archived task the key made`);
        assert.equal((await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'x', idempotencyKey: 'first-key' })).id, keyed.backEnd, name);
        // A new task comes after every task there was: first on the listing, last in FIFO order.
        const fresh = await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'new' });
        assert.equal((await q.listTasks({ limit: 1 })).tasks[0]!.id, fresh.id, name);
      }
    } finally {
      await stores.embedded.close({ snapshot: false });
      await stores.team.close();
      await stores.back.close({ snapshot: false });
    }
  });
});

/** Row counts and an md5 of every table's rows: to show that a refused move changed nothing. */
async function tableDigest(url: string, schema: string): Promise<Record<string, string>> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const t of ['sessions', 'queues', 'plans', 'tasks', 'attempts', 'task_deps', 'requeues', 'worker_places', 'schema_version']) {
      const r = await c.query(`SELECT count(*)::text || ':' || COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS d FROM ${schema}.${t} x`);
      out[t] = r.rows[0].d as string;
    }
    out['seq'] = (await c.query(`SELECT last_value::text AS v FROM ${schema}.tasks_seq_seq`)).rows[0].v as string;
    return out;
  } finally {
    await c.end();
  }
}

/**
 * The embedded queue to move: two sessions (one ended), four queues (one paused, one with agent ids), tasks in every
 * status, attempts of a retry, a plan whose tasks wait, a requeue, keys, and 403 finished tasks of which 303 are
 * archived (live cap 100).
 */
async function fillEmbeddedQueue(dir: string, config: SparkqConfig): Promise<{ bulk: string; backEnd: string }> {
  const q = await QueueService.open({ dir, config, autoMaintain: false });
  try {
    await q.createSession({ name: 'old' });
    await q.createQueue({ name: 'Old', session: 'old' });
    await q.endSession('old');
    await q.createSession({ name: 'release', description: 'the release' });
    await q.createQueue({ name: 'Back End', session: 'release', instructions: 'Be brief.', maxAttempts: 2, maxWorkers: 3 });
    await q.createQueue({ name: 'Bulk', session: 'release' });
    await q.createQueue({ name: 'Plan', session: 'release' });
    await q.setAgentSession('Back End', { codexThreadId: 'thread-123', claudeSessionId: 'claude-456' });

    // 400 finished tasks, one made with a key; 2 of them failed.
    const bulk = await q.enqueueMany(
      Array.from({ length: 400 }, (_, i) => ({ queue: 'Bulk', tool: 'run-bash', prompt: `bulk ${i}`, ...(i === 3 ? { idempotencyKey: 'bulk-key' } : {}) })),
    );
    const claims = await q.claimMany({ queue: 'Bulk', worker: 'bulk-worker' }, 400);
    await q.completeMany(claims.slice(2).map((c) => ({ task: c.task.id, lease: c.lease, summary: `done ${c.task.prompt ?? ''}`, data: { n: 1 } })));
    for (const c of claims.slice(0, 2)) await q.fail({ task: c.task.id, lease: c.lease, error: 'broke', stdout: 'some output' });
    const requeued = await q.requeue(claims[0]!.task.id, { idempotencyKey: 'requeue-key' });
    // The requeued copy finishes too (Bulk keeps no queued tasks: the claim order below is about the other queues).
    const rc = (await q.claim({ queue: 'Bulk', worker: 'bulk-worker' }))!;
    assert.equal(rc.task.id, requeued.id);
    await q.complete({ task: rc.task.id, lease: rc.lease, summary: 'fixed' });

    // Back End: FIFO with a priority, a key, a retry waiting an hour, a running task.
    const first = await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'first', idempotencyKey: 'first-key' });
    const retried = await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'retried' });
    // An hour's timeout: however slow the machine, it is neither stale nor failed by a sweep while the test runs.
    const running = await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'running', priority: 9, timeoutSeconds: 3600 });
    await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'third' });
    await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'urgent', priority: 5 });
    await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'again' });
    const r1 = (await q.claim({ queue: 'Back End', worker: 'w1' }))!;
    assert.equal(r1.task.id, running.id);
    const c1 = (await q.claim({ queue: 'Back End', worker: 'w1' }))!;
    assert.equal(c1.task.prompt, 'urgent');
    await q.complete({ task: c1.task.id, lease: c1.lease, summary: 'urgent done' });
    const c2 = (await q.claim({ queue: 'Back End', worker: 'w1' }))!;
    assert.equal(c2.task.id, first.id);
    await q.complete({ task: c2.task.id, lease: c2.lease, summary: 'first done' });
    const c3 = (await q.claim({ queue: 'Back End', worker: 'w1' }))!;
    assert.equal(c3.task.id, retried.id);
    const back = await q.fail({ task: c3.task.id, lease: c3.lease, error: 'flaky' });
    assert.equal(back.status, 'queued', 'retried later (maxAttempts 2)');
    // Two more queued in Back End, so the claim order after the move has something to show.
    await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'urgent', priority: 5 });
    await q.enqueue({ queue: 'Back End', tool: 'run-bash', prompt: 'first' });

    // A plan: b waits on a, c waits on a and b; nothing of it has run.
    await q.applyPlan({
      plan: {
        id: 'plan-1',
        description: 'three steps',
        tasks: [
          { key: 'a', queue: 'Plan', tool: 'run-bash', prompt: 'plan a', after: [] },
          { key: 'b', queue: 'Plan', tool: 'run-bash', prompt: 'plan b', after: ['a'] },
          { key: 'c', queue: 'Plan', tool: 'run-bash', prompt: 'plan c', after: ['a', 'b'] },
        ],
      },
    });

    // A paused queue with a task.
    await q.createQueue({ name: 'Paused', session: 'release' });
    await q.enqueue({ queue: 'Paused', tool: 'run-bash', prompt: 'held' });
    await q.pauseQueue({ queue: 'Paused', reason: 'waiting for review' });

    await q.maintain();
    assert.equal(q.archiveChunks().reduce((n, c) => n + c.count, 0), 303);
    return { bulk: bulk[3]!.id, backEnd: first.id };
  } finally {
    await q.close();
  }
}
