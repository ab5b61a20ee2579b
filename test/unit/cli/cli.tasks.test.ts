import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskJson } from '../../../src/cli/json';
import { openQueue } from '../../../src/client/open';
import { ARCHIVE_DIR } from '../../../src/core/queue/archive';
import { assertError, bundleCli, Cli, type RunOptions, type Serving } from '../../support/cli';
import { tempDir } from '../../support/tmp';

/*
 * `sparkq tasks` beyond one page: --all and --limit past 1,000 page through the queue (1,000 at a time, by cursor) and
 * print each page as it comes: JSON Lines with --jsonl, one JSON array with --json, one table otherwise. The queue
 * holds 2,500 tasks, 1,500 of them finished and most of those moved to archive files, so the pages cross from the
 * live database into the archive.
 */
describe('sparkq tasks: listings longer than a page', function () {
  this.timeout(120_000);
  const tmp = tempDir('sparkq-cli-tasks-');
  let cli: Cli;
  let o: RunOptions & { dir: string };
  /** Every task id, newest first: the order `tasks` lists them in. */
  let newestFirst: string[];
  const TOTAL = 2_500;
  const FINISHED = 1_500;
  const servers: Serving[] = [];

  before(async function () {
    cli = new Cli(bundleCli(path.join(tmp.dir, 'bundle')));
    const dir = path.join(tmp.dir, 'ws');
    fs.mkdirSync(dir);
    o = { cwd: dir, dir };
    await cli.ok(['init', '--project', 'demo'], o);
    // Few finished tasks stay live, so that most of them move to archive files.
    const yml = path.join(dir, 'sparkq.yml');
    fs.writeFileSync(yml, fs.readFileSync(yml, 'utf8').replace(/liveCap: \d+/, 'liveCap: 100'));
    // Seeded in this process (as the owner, through the queue service: one change per batch), then handed over.
    const handle = await openQueue(dir, { role: 'test' });
    try {
      const service = handle.owner!.service;
      await service.createSession({ name: 'export' });
      await service.createQueue({ name: 'Back End', session: 'export' });
      const ids: string[] = [];
      for (let i = 0; i < TOTAL; i += 500) {
        const batch = Array.from({ length: 500 }, (_, j) => ({ queue: 'Back End', tool: 'run-bash', prompt: `task ${i + j}` }));
        ids.push(...(await service.enqueueMany(batch)).map((t) => t.id));
      }
      // The oldest FINISHED tasks run and succeed; the queue takes the oldest first.
      for (let done = 0; done < FINISHED; done += 500) {
        const claims = await service.claimMany({ queue: 'Back End', worker: 'seed' }, 500);
        await service.completeMany(claims.map((c) => ({ task: c.task.id, lease: c.lease, summary: `done ${c.task.prompt ?? ''}` })));
      }
      await service.maintain();
      newestFirst = ids.reverse();
    } finally {
      await handle.close();
    }
    assert.ok(fs.readdirSync(path.join(dir, '.sparkq', 'db', ARCHIVE_DIR)).length > 0, 'finished tasks were archived');
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop('SIGTERM')));
  });
  after(() => tmp.cleanup());

  /** Asserts that `ids` is every task exactly once, newest first. */
  function assertAllInOrder(ids: string[], what: string): void {
    assert.equal(new Set(ids).size, ids.length, `${what}: no task twice`);
    assert.equal(ids.length, TOTAL, `${what}: every task`);
    assert.deepEqual(ids, newestFirst, `${what}: newest first`);
  }

  it('--all --jsonl prints every task exactly once, newest first, one task JSON per line, the same as --json shows it', async () => {
    const out = await cli.ok(['tasks', '--all', '--jsonl'], o);
    assert.ok(out.endsWith('\n'));
    const lines = out.slice(0, -1).split('\n');
    const tasks = lines.map((l) => JSON.parse(l) as TaskJson);
    assertAllInOrder(tasks.map((t) => t.id), '--all --jsonl');
    assert.equal(tasks.filter((t) => t.status === 'succeeded').length, FINISHED);
    // Each line is what --json shows for that task.
    const shown = await cli.json<TaskJson[]>(['tasks', '--limit', '3'], o);
    assert.deepEqual(tasks.slice(0, 3), shown);
    const succeeded = await cli.json<TaskJson[]>(['tasks', '--status', 'succeeded', '--limit', '1000'], o);
    assert.deepEqual(tasks.filter((t) => t.status === 'succeeded').slice(0, 1000), succeeded, 'archived tasks as well');
    assert.ok(tasks.filter((t) => t.archived).length >= FINISHED - 200, 'most finished tasks were read from the archive');
  });

  it('--json with --all or a --limit past 1,000 prints one JSON array, pretty-printed as ever, through a live owner too', async () => {
    const all = await cli.ok(['tasks', '--all', '--json'], o);
    const parsed = JSON.parse(all) as TaskJson[];
    assertAllInOrder(parsed.map((t) => t.id), '--all --json');
    assert.equal(all, `${JSON.stringify(parsed, null, 2)}\n`, 'the same bytes as one JSON.stringify of the whole array');
    servers.push(await cli.serve(o));
    const some = await cli.json<TaskJson[]>(['tasks', '--limit', '2200'], o);
    assert.deepEqual(some.map((t) => t.id), newestFirst.slice(0, 2200), '--limit 2200 through sparkq serve');
    const filtered = await cli.json<TaskJson[]>(['tasks', '--all', '--status', 'queued'], o);
    assert.deepEqual(filtered.map((t) => t.id), newestFirst.slice(0, TOTAL - FINISHED), 'filters hold on every page');
    assert.equal(await cli.ok(['tasks', '--all', '--json', '--tool', 'llm-codex'], o), '[]\n');
  });

  it('prints one table with one header, every task once, and says when --limit left some out', async () => {
    const table = await cli.ok(['tasks', '--all'], o);
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0]!, /^TASK +QUEUE +TOOL +STATUS/);
    assert.equal(lines.filter((l) => l.startsWith('TASK ')).length, 1, 'one header');
    assertAllInOrder(lines.slice(1).map((l) => l.split(' ')[0]!), 'the table');
    // Every row, of every page, has its status under the header's STATUS.
    const at = lines[0]!.indexOf('STATUS');
    assert.deepEqual(new Set(lines.slice(1).map((l) => l.slice(at).split(' ')[0])), new Set(['queued', 'succeeded']));

    const limited = (await cli.ok(['tasks', '--limit', '1200'], o)).trimEnd().split('\n');
    assert.equal(limited.length, 1 + 1200 + 1);
    assert.deepEqual(limited.slice(1, -1).map((l) => l.split(' ')[0]), newestFirst.slice(0, 1200));
    assert.match(limited.at(-1)!, /^… more tasks; raise --limit \(now 1200\), list them all with --all, or narrow the filters$/);
  });

  it('asks again for a smaller page when a page of long tasks is too large for the owner to send in one answer', async () => {
    const dir = path.join(tmp.dir, 'long');
    fs.mkdirSync(dir);
    const w = { cwd: dir, dir };
    await cli.ok(['init', '--project', 'long'], w);
    const handle = await openQueue(dir, { role: 'test' });
    let ids: string[];
    try {
      const service = handle.owner!.service;
      await service.createSession({ name: 's' });
      await service.createQueue({ name: 'q', session: 's' });
      // 40 prompts of 250,000 characters: 10 MB as JSON, more than one frame (8 MiB) holds.
      ids = (await service.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ queue: 'q', tool: 'run-bash', prompt: `${i} `.padEnd(250_000, 'p') })))).map((t) => t.id);
    } finally {
      await handle.close();
    }
    servers.push(await cli.serve(w));
    const out = await cli.ok(['tasks', '--all', '--jsonl'], w);
    const tasks = out.trimEnd().split('\n').map((l) => JSON.parse(l) as TaskJson);
    assert.deepEqual(tasks.map((t) => t.id), ids.reverse(), 'every task once, newest first');
    assert.ok(tasks.every((t) => t.prompt?.length === 250_000), 'whole prompts');
    assert.equal((await cli.json<TaskJson[]>(['tasks', '--limit', '1000'], w)).length, 40, '--limit 1000 too');
  });

  it('refuses --all with --limit, --json with --jsonl, and a --limit below 1, with what to do instead', async () => {
    const [both, formats, zero] = await Promise.all([
      cli.run(['tasks', '--all', '--limit', '10'], o),
      cli.run(['tasks', '--json', '--jsonl'], o),
      cli.run(['tasks', '--limit', '0'], o),
    ]);
    assertError(both, 2, /option '--all' cannot be used with option '--limit <n>'/);
    assertError(formats, 2, /give --json \(one JSON array\) or --jsonl \(one task per line\), not both/);
    assertError(zero, 1, /--limit must be a whole number of at least 1 \(or --all for every task\), not "0"/);
  });
});
