/**
 * A child for the IPC benchmark (bundled by bench/lib/ipc.ts, run on plain Node):
 *   serve WS             own the queue as `sparkq serve` does (durable, fdatasync on the event loop) until stdin
 *                        closes; prints READY, then `CPU <line> <µs>` for each line on stdin: its CPU time since the
 *                        previous line. SPARKQ_BENCH_DURABILITY=none shows the ceiling without fdatasync;
 *                        SPARKQ_BENCH_SYNC_ON=thread-pool syncs as the extension host does.
 *   load WS QUEUE SECS [WARMUP]
 *                        a client: makes WARMUP enqueues, prints READY, waits for a line on stdin, then enqueues one
 *                        call at a time for SECS seconds and prints RESULT {"count":n,"latencies":[…ms],"cpuUs":n}
 */
import * as fs from 'node:fs';
import { openQueue } from '../src/client/open';

function line(s: string): void {
  fs.writeSync(1, s + '\n');
}

/** SPARKQ_BENCH_STATS=FILE: each child appends one line there with its CPU time over the measured part. */
function stat(what: string, cpu: NodeJS.CpuUsage, extra: Record<string, number>): void {
  const file = process.env['SPARKQ_BENCH_STATS'];
  if (!file) return;
  const used = process.cpuUsage(cpu);
  fs.appendFileSync(file, JSON.stringify({ what, pid: process.pid, userMs: used.user / 1000, systemMs: used.system / 1000, ...extra }) + '\n');
}

function waitForStdin(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.once('data', () => resolve());
    process.stdin.once('end', () => resolve());
  });
}

async function main(): Promise<void> {
  const [mode, ws, queue, secs, warmupCalls] = process.argv.slice(2);
  if (!mode || !ws) throw new Error('usage: ipcChild serve WS | load WS QUEUE SECS [WARMUP]');
  if (mode === 'serve') {
    const q = await openQueue(ws, { role: 'bench-serve', durability: (process.env['SPARKQ_BENCH_DURABILITY'] ?? 'full') as 'full' | 'none', syncOn: (process.env['SPARKQ_BENCH_SYNC_ON'] ?? 'event-loop') as 'event-loop' | 'thread-pool', watchConfig: false });
    if (!q.isOwner) throw new Error('bench: another process owns the queue');
    line('READY');
    const cpu = process.cpuUsage();
    // Each line on stdin (the bench writes the client count before and after a throughput window) marks a point.
    let mark = process.cpuUsage();
    process.stdin.setEncoding('utf8').on('data', (text: string) => {
      for (const what of text.split('\n').filter(Boolean)) {
        stat(`serve ${what}`, mark, {});
        // The owner's CPU time since the previous mark, for the bench's CPU per call (see measureIpc).
        const used = process.cpuUsage(mark);
        line(`CPU ${what} ${used.user + used.system}`);
        mark = process.cpuUsage();
      }
    });
    await new Promise<void>((resolve) => process.stdin.on('end', () => resolve()).resume());
    stat('serve', cpu, {});
    await q.close();
    return;
  }
  const q = await openQueue(ws, { role: 'bench-load' });
  if (q.isOwner) throw new Error('bench: the load client became the owner; the server is gone');
  // Warm-up calls before READY, outside the measured window: the first calls of a fresh process run in the
  // interpreter, which is not what a long-running client (a worker) spends per call.
  const warmup = Number(warmupCalls ?? 0);
  for (let i = 0; i < warmup; i++) await q.enqueue({ queue: queue!, tool: 'run-bash', prompt: 'load' });
  line('READY');
  await waitForStdin();
  const end = performance.now() + Number(secs) * 1000;
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  while (performance.now() < end) {
    const t0 = performance.now();
    await q.enqueue({ queue: queue!, tool: 'run-bash', prompt: 'load' });
    latencies.push(performance.now() - t0);
  }
  stat('load', cpu, { calls: latencies.length });
  const used = process.cpuUsage(cpu);
  line('RESULT ' + JSON.stringify({ count: latencies.length, latencies, cpuUs: used.user + used.system }));
  await q.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`ipcChild: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
