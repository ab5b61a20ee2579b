/**
 * A client process for the multi-process tests (bundled by test/support/children.ts). It opens the workspace queue
 * the way every SparkQ process does — connect to the owner or become it — and does one job, printing one JSON line
 * per acknowledged result on stdout:
 *
 *   serve WS                       own the queue until SIGTERM/SIGINT (prints {"ready":…} once owning)
 *   claim WS QUEUE NAME            claim + complete until the queue is empty; prints {"claimed":id} after each complete
 *   enqueue WS QUEUE N             N enqueues; prints {"enqueued":id} after each acknowledgement, {"uncertain":…} for a
 *                                  call whose owner died mid-flight (may or may not have run)
 *
 * Stdout lines are written synchronously, so a line exists only for an acknowledged mutation and is never lost when
 * the child is killed right after.
 */
import * as fs from 'node:fs';
import { openQueue } from '../../src/client/open';
import { isSparkqError } from '../../src/core/errors';

function out(obj: unknown): void {
  fs.writeSync(1, JSON.stringify(obj) + '\n');
}

async function main(): Promise<void> {
  const [mode, ws, a, b] = process.argv.slice(2);
  if (!mode || !ws) throw new Error('usage: queueChild MODE WS …');
  const q = await openQueue(ws, { role: mode === 'serve' ? 'serve' : 'test-client', client: `${mode} ${process.pid}`, timeoutMs: 60_000 });
  try {
    switch (mode) {
      case 'serve': {
        out({ ready: q.ownerInfo, isOwner: q.isOwner });
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        });
        break;
      }
      case 'claim': {
        const queue = a!;
        for (;;) {
          const c = await q.claim({ queue, worker: b ?? `w${process.pid}` });
          if (!c) break;
          await q.complete({ task: c.task.id, lease: c.lease, summary: `done by ${process.pid}` });
          out({ claimed: c.task.id, owner: q.isOwner });
        }
        break;
      }
      case 'enqueue': {
        const queue = a!;
        const n = Number(b);
        for (let i = 0; i < n; i++) {
          try {
            const t = await q.enqueue({ queue, tool: 'run-bash', prompt: `task ${i} from ${process.pid}` });
            out({ enqueued: t.id });
          } catch (e) {
            if (isSparkqError(e, 'unavailable')) out({ uncertain: i, error: e.message });
            else throw e;
          }
        }
        break;
      }
      default:
        throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    await q.close();
  }
  out({ done: true });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`queueChild failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
