/**
 * A process of the soak (bench/soak.ts), run with tsx:
 *   serve WS          owns the queue (or waits to) until killed, as `sparkq serve` does.
 *   client WS N FILE  enqueues tasks with the keys c<N>-0, c<N>-1, … on the queue "soak", and after each
 *                     acknowledgement appends "<key> <task id>" to FILE; every third key it also claims and completes a
 *                     task. Started again after a SIGKILL, it goes on from the key after the last one in FILE: the
 *                     enqueue in flight when it died is repeated with the same key.
 */
import * as fs from 'node:fs';
import { openQueue } from '../src/client/open';
import { errorMessage, isSparkqError } from '../src/core/errors';

async function main(): Promise<void> {
  const [mode, ws, n, file] = process.argv.slice(2);
  if (mode === 'serve') {
    const q = await openQueue(ws!, { role: 'soak-serve', durability: 'full', watchConfig: false, timeoutMs: 60_000 });
    process.stdout.write('READY\n');
    await new Promise(() => undefined);
    await q.close();
    return;
  }
  const acked = fs.existsSync(file!) ? fs.readFileSync(file!, 'utf8').split('\n').filter(Boolean).length : 0;
  const q = await openQueue(ws!, { role: 'soak-client', durability: 'full', watchConfig: false, timeoutMs: 60_000 });
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  for (let i = acked; !stopping; i++) {
    const key = `c${n!}-${i}`;
    for (;;) {
      try {
        const t = await q.enqueue({ queue: 'soak', tool: 'run-bash', prompt: key, idempotencyKey: key });
        fs.appendFileSync(file!, `${key} ${t.id}\n`);
        break;
      } catch (e) {
        // The owner went away and the next did not answer within the handle's time: the same key again.
        if (!isSparkqError(e, 'unavailable')) throw e;
      }
    }
    if (i % 3 === 2) {
      try {
        const c = await q.claim({ queue: 'soak', worker: `soak-${n!}` });
        if (c) await q.complete({ task: c.task.id, lease: c.lease, summary: 'soaked' });
      } catch (e) {
        // A claim or completion in flight when the owner died is not what this measures.
        if (!isSparkqError(e, 'unavailable')) throw e;
      }
    }
  }
  await q.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`soak child: ${errorMessage(e)}\n`);
    process.exit(1);
  },
);
