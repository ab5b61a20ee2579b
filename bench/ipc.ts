// The IPC part of `npm run bench` alone, for iterating on the owner's and client's per-call cost:
// `node --import tsx bench/ipc.ts [seconds] [clients,…] [round trips]`. SPARKQ_BENCH_STATS=FILE adds each process's CPU
// time (the CPU per call is printed anyway); SPARKQ_BENCH_CLIENT_WARMUP sets the uncounted calls each client makes first (default 300, as `npm run bench`).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measureFdatasync } from './lib/disk';
import { measureIpc } from './lib/ipc';

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const clientCounts = (process.argv[3] ?? '1,4,16').split(',').map(Number);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-ipc-'));
  try {
    const fsync = measureFdatasync(tmp, 1_000, 256);
    const r = await measureIpc(path.resolve(__dirname, '..'), tmp, { roundTrips: Number(process.argv[4] ?? 2_000), warmup: 10, clientCounts, seconds, clientWarmup: Number(process.env['SPARKQ_BENCH_CLIENT_WARMUP'] ?? 300) }, (m) => process.stderr.write(`· ${m}\n`));
    const rt = r.roundTrip;
    console.log(`load ${os.loadavg()[0]!.toFixed(2)}; fdatasync p50 ${fsync.fdatasync.p50.toFixed(3)} ms (during: ${rt.fdatasyncDuring.p50.toFixed(3)})`);
    console.log(`durable claim round trip p50 ${rt.claim.p50.toFixed(3)} ms p99 ${rt.claim.p99.toFixed(3)} ms; minus fdatasync ${(rt.claim.p50 - rt.fdatasyncDuring.p50).toFixed(3)} ms`);
    for (const t of r.throughput) {
      console.log(
        `${String(t.clients).padStart(2)} clients: ${Math.round(t.perSecond)}/s (p50 ${t.latency.p50.toFixed(3)} ms); CPU per call: clients ${t.cpu.clientsUs.toFixed(1)} µs, owner ${t.cpu.ownerUs.toFixed(1)} µs`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
void main();
