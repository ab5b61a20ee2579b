/**
 * `npm run demo`: a queue in a temporary workspace, a session and a queue, a few tasks enqueued, claimed and finished
 * (one fails and is requeued), a crash and a reopen, then the task table. Everything goes through the real core.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultConfig } from '../src/core/config';
import { QueueService } from '../src/core/queue/service';

async function main(): Promise<void> {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-demo-'));
  const dir = path.join(workspace, '.sparkq', 'db');
  const config = defaultConfig('demo');
  let q = await QueueService.open({ dir, config });
  console.log(`queue store: ${dir}`);

  await q.createSession({ name: 'api-v2', description: 'demo session' });
  await q.createQueue({ name: 'Back End', session: 'api-v2', instructions: 'Keep changes small; report file counts.' });
  const prompts = ['generate the users endpoint', 'run the migration script', 'check the OpenAPI file', 'write the changelog entry'];
  for (const prompt of prompts) await q.enqueue({ queue: 'Back End', tool: prompt.startsWith('run') ? 'run-bash' : 'llm-codex', prompt });

  for (let i = 0; i < prompts.length; i++) {
    const claim = await q.claim({ queue: 'Back End', worker: 'demo-worker' });
    if (!claim) break;
    if (i === 1) await q.fail({ task: claim.task.id, lease: claim.lease, error: 'exit 2: migrations/004.sql: syntax error' });
    else await q.complete({ task: claim.task.id, lease: claim.lease, summary: `done: ${claim.task.prompt}`, usage: { inputTokens: 1200 + i, outputTokens: 300 } });
  }
  const failed = q.listTasks({ status: 'failed' }).tasks[0];
  if (failed) console.log(`requeued ${failed.id} as ${(await q.requeue(failed.id)).id}`);

  // Simulate a crash: drop the process state without a snapshot, then reopen from the journal.
  q.abandon();
  q = await QueueService.open({ dir, config });
  console.log(`reopened after a simulated crash: replayed ${q.recovery.replayed} journal records\n`);

  const rows = q.listTasks({ limit: 20 }).tasks.map((t) => [t.id, t.tool, t.status, t.result?.summary ?? t.error ?? t.prompt ?? '']);
  const header = ['TASK', 'TOOL', 'STATUS', 'SUMMARY / ERROR / PROMPT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  const counts = q.getQueue('Back End').counts;
  console.log(`\nBack End: ${counts.queued} queued, ${counts.running} running, ${counts.succeeded} succeeded, ${counts.failed} failed`);
  await q.close();
  fs.rmSync(workspace, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
