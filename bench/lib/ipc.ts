import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { openQueue } from '../../src/client/open';
import { PROMPT, SUMMARY } from './shape';
import { type Summary, now, summarize } from './stats';

/**
 * The IPC layer's numbers: a durable claim as a client sees it (a round trip over the owner's socket, owner in its own
 * process), beside an fdatasync probe timed in the same moments; and acknowledged mutations per second with 1, 4 and
 * 16 client processes, each making one call at a time after `clientWarmup` calls that are not counted.
 */
export interface IpcResult {
  roundTrip: { claim: Summary; fdatasyncDuring: Summary };
  /**
   * `cpu`: CPU time (user + system) per acknowledged call over the measured seconds, in µs: the client processes'
   * summed, and the owner's. With C cores, C / (clients + owner) bounds the calls per second.
   */
  throughput: { clients: number; seconds: number; mutations: number; perSecond: number; latency: Summary; cpu: { clientsUs: number; ownerUs: number } }[];
}

function bundle(root: string, outDir: string): string {
  fs.mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, 'ipcChild.js');
  buildSync({ entryPoints: [path.join(root, 'bench', 'ipcChild.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile, logLevel: 'error' });
  fs.copyFileSync(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'), path.join(outDir, 'sql-wasm.wasm'));
  return outfile;
}

interface Kid {
  proc: ChildProcess;
  ready: Promise<void>;
  result: Promise<string>;
  /** The rest of the first line the child prints after `prefix` from now on (e.g. `CPU window 16 `). */
  nextLine: (prefix: string) => Promise<string>;
}

function start(script: string, args: string[]): Kid {
  // SPARKQ_BENCH_CPU_PROF=DIR: every child writes a V8 CPU profile there (node --cpu-prof), to see where the time goes.
  const prof = process.env['SPARKQ_BENCH_CPU_PROF'];
  const flags = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const proc = spawn(process.execPath, [...flags, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const lineWaiters: { prefix: string; from: number; resolve: (rest: string) => void }[] = [];
  const result = new Promise<string>((resolve, reject) => {
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('READY\n')) onReady();
      for (const w of [...lineWaiters]) {
        const at = out.indexOf('\n' + w.prefix, w.from - 1);
        const end = at < 0 ? -1 : out.indexOf('\n', at + 1);
        if (end < 0) continue;
        lineWaiters.splice(lineWaiters.indexOf(w), 1);
        w.resolve(out.slice(at + 1 + w.prefix.length, end));
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    proc.on('exit', (code) => {
      const m = /^RESULT (.*)$/m.exec(out);
      if (code === 0) resolve(m ? m[1]! : '');
      else reject(new Error(`bench child ${args[0]} exited with ${code}: ${err.trim()}`));
    });
  });
  void result.catch(() => onReady());
  const nextLine = (prefix: string) =>
    Promise.race([new Promise<string>((resolve) => lineWaiters.push({ prefix, from: out.length, resolve })), result.then(() => Promise.reject(new Error(`bench child ended before printing ${prefix}`)))]);
  return { proc, ready: Promise.race([ready, result.then(() => undefined)]), result, nextLine };
}

export async function measureIpc(
  root: string,
  tmp: string,
  plan: { roundTrips: number; warmup: number; clientCounts: readonly number[]; seconds: number; clientWarmup: number },
  progress: (msg: string) => void,
): Promise<IpcResult> {
  const script = bundle(root, path.join(tmp, 'ipc-child'));
  const ws = path.join(tmp, 'ipc-ws');
  fs.mkdirSync(ws, { recursive: true });
  const server = start(script, ['serve', ws]);
  await server.ready;
  const probeFile = path.join(ws, 'fdatasync-probe.bin');
  const probe = fs.openSync(probeFile, 'a', 0o600);
  const probeRecord = Buffer.alloc(256, 0x2a);
  const q = await openQueue(ws, { role: 'bench' });
  try {
    if (q.isOwner) throw new Error('bench: the IPC server did not become the owner');
    await q.createSession({ name: 'bench' });
    await q.createQueue({ name: 'ipc', session: 'bench' });
    progress(`IPC: durable claim round trip (${plan.roundTrips} iterations)`);
    const claims: number[] = [];
    const fsyncs: number[] = [];
    for (let i = 0; i < plan.warmup + plan.roundTrips; i++) {
      const keep = i >= plan.warmup;
      fs.writeSync(probe, probeRecord);
      const ts = now();
      fs.fdatasyncSync(probe);
      if (keep) fsyncs.push(now() - ts);
      await q.enqueue({ queue: 'ipc', tool: 'run-bash', prompt: PROMPT });
      const t0 = now();
      const c = await q.claim({ queue: 'ipc', worker: 'bench' });
      if (keep) claims.push(now() - t0);
      if (!c) throw new Error('bench: nothing to claim');
      await q.complete({ task: c.task.id, lease: c.lease, summary: SUMMARY });
    }
    const throughput: IpcResult['throughput'] = [];
    for (const n of plan.clientCounts) {
      progress(`IPC: acknowledged mutations per second, ${n} client process${n === 1 ? '' : 'es'} for ${plan.seconds} s`);
      const kids = Array.from({ length: n }, () => start(script, ['load', ws, 'ipc', String(plan.seconds), String(plan.clientWarmup)]));
      await Promise.all(kids.map((k) => k.ready));
      server.proc.stdin!.write(`before ${n}\n`);
      for (const k of kids) k.proc.stdin!.write('go\n');
      const results = (await Promise.all(kids.map((k) => k.result))).map((r) => JSON.parse(r) as { count: number; latencies: number[]; cpuUs: number });
      const ownerCpu = server.nextLine(`CPU window ${n} `);
      server.proc.stdin!.write(`window ${n}\n`);
      const ownerUs = Number(await ownerCpu);
      const mutations = results.reduce((s, r) => s + r.count, 0);
      const clientsUs = results.reduce((s, r) => s + r.cpuUs, 0);
      throughput.push({
        clients: n,
        seconds: plan.seconds,
        mutations,
        perSecond: mutations / plan.seconds,
        latency: summarize(results.flatMap((r) => r.latencies)),
        cpu: { clientsUs: clientsUs / Math.max(1, mutations), ownerUs: ownerUs / Math.max(1, mutations) },
      });
    }
    return { roundTrip: { claim: summarize(claims), fdatasyncDuring: summarize(fsyncs) }, throughput };
  } finally {
    fs.closeSync(probe);
    await q.close();
    server.proc.stdin!.end();
    await server.result.catch(() => undefined);
  }
}
