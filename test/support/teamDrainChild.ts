/*
 * One "machine" of the team drain test: opens the workspace given as argv[2] (its sparkq.yml says team mode, the URL
 * comes from SPARKQ_DATABASE_URL) the way any sparkq process does, then runs argv[3] claimers that claim and complete
 * tasks of queue argv[4] until the queue is empty. Writes the ids it completed, one per line, to argv[5], then prints
 * one JSON line with its count.
 */
import * as fs from 'node:fs';
import { openQueue } from '../../src/client/open';

async function main(): Promise<void> {
  const [workspace, claimers, queue, out] = process.argv.slice(2) as [string, string, string, string];
  const q = await openQueue(workspace, { role: 'worker' });
  const done: string[] = [];
  const worker = async (n: number) => {
    for (;;) {
      const c = await q.claim({ queue, worker: `${process.pid}-${n}` });
      if (!c) return;
      await q.complete({ task: c.task.id, lease: c.lease, summary: 'done' });
      done.push(c.task.id);
    }
  };
  await Promise.all(Array.from({ length: Number(claimers) }, (_, i) => worker(i)));
  fs.writeFileSync(out, done.join('\n'));
  process.stdout.write(JSON.stringify({ done: done.length }) + '\n');
  await q.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
