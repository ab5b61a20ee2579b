/**
 * `npm run soak -- [cycles] [clients]`: acknowledged tasks across SIGKILLs of the queue's owner.
 *
 * A `serve` process and CLIENTS client processes (bench/soakChild.ts) share a workspace queue; the clients enqueue
 * with idempotency keys (and claim and complete some tasks), logging each acknowledged key with its task id. Each cycle
 * waits a moment, SIGKILLs whichever process owns the queue then (the serve process or a client that took over),
 * starts it again, and waits until some process owns the queue again. At the end every key acknowledged must be on
 * exactly one task, the one acknowledged: it prints cycles, acknowledged, present, lost and duplicated, and exits 1
 * unless lost and duplicated are 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openQueue } from '../src/client/open';
import { isProcessAlive } from '../src/owner/lock';
import { readOwnerRecord } from '../src/owner/record';
import { sparkqDirOf } from '../src/owner/workspace';

const cycles = Number(process.argv[2] ?? 100);
const clientCount = Number(process.argv[3] ?? 4);
const child = path.join(__dirname, 'soakChild.ts');

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-soak-'));
  const sparkqDir = sparkqDirOf(ws);
  const setup = await openQueue(ws, { role: 'soak-setup', durability: 'full', watchConfig: false });
  await setup.createSession({ name: 'soak' });
  await setup.createQueue({ name: 'soak', session: 'soak', maxWorkers: 64 });
  await setup.close();

  const procs = new Map<string, ChildProcess>();
  const ackFile = (n: number) => path.join(ws, `acked-${n}.txt`);
  const start = (name: string): ChildProcess => {
    const args = name === 'serve' ? ['serve', ws] : ['client', ws, name.slice(1), ackFile(Number(name.slice(1)))];
    const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    procs.set(name, p);
    return p;
  };
  start('serve');
  for (let n = 0; n < clientCount; n++) start(`c${n}`);

  let done = 0;
  let lastGeneration = -1;
  const t0 = Date.now();
  while (done < cycles) {
    // Some process owns the queue, and not the one killed last.
    const rec = readOwnerRecord(sparkqDir);
    if (!rec || rec.generation === lastGeneration || !isProcessAlive(rec.pid, null)) {
      await sleep(5);
      continue;
    }
    await sleep(50 + Math.random() * 250);
    const name = [...procs].find(([, p]) => p.pid === rec.pid)?.[0];
    if (name === undefined) throw new Error(`the owner (pid ${rec.pid}) is not a process of this soak`);
    const victim = procs.get(name)!;
    const exited = new Promise((r) => victim.once('exit', r));
    victim.kill('SIGKILL');
    await exited;
    lastGeneration = rec.generation;
    start(name);
    done++;
    if (done % 50 === 0) process.stderr.write(`· ${done} cycles, ${Math.round((Date.now() - t0) / 1000)} s\n`);
    for (const [n, p] of procs) if (p.exitCode !== null && p.exitCode !== 0) throw new Error(`${n} failed (exit ${p.exitCode})`);
  }

  // Clients stop after their current call; the serve process is killed last.
  await Promise.all(
    [...procs].filter(([n]) => n !== 'serve').map(([, p]) => {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      return exited;
    }),
  );
  procs.get('serve')!.kill('SIGKILL');
  await sleep(100);

  const acked = new Map<string, string>();
  for (let n = 0; n < clientCount; n++) {
    if (!fs.existsSync(ackFile(n))) continue;
    for (const l of fs.readFileSync(ackFile(n), 'utf8').split('\n').filter(Boolean)) {
      const [key, id] = l.split(' ');
      acked.set(key!, id!);
    }
  }
  const q = await openQueue(ws, { role: 'soak-check', durability: 'full', watchConfig: false });
  const byKey = new Map<string, string[]>();
  let present = 0;
  for (let before: string | undefined; ; ) {
    const page = await q.listTasks({ queue: 'soak', limit: 1000, ...(before ? { before } : {}) });
    for (const t of page.tasks) {
      present++;
      const k = t.idempotencyKey ?? `(none) ${t.id}`;
      byKey.set(k, [...(byKey.get(k) ?? []), t.id]);
    }
    if (!page.next) break;
    before = page.next;
  }
  await q.close();
  let lost = 0;
  for (const [key, id] of acked) if (!(byKey.get(key) ?? []).includes(id)) lost++;
  const duplicated = [...byKey.values()].filter((ids) => ids.length > 1).length;
  const figures = { cycles: done, acknowledged: acked.size, present, lost, duplicated, seconds: Math.round((Date.now() - t0) / 1000) };
  process.stdout.write(`soak: ${JSON.stringify(figures)}\n`);
  if (lost === 0 && duplicated === 0) fs.rmSync(ws, { recursive: true, force: true });
  else process.stdout.write(`kept for a post-mortem: ${ws}\n`);
  process.exit(lost === 0 && duplicated === 0 ? 0 : 1);
}

main().catch((e: unknown) => {
  process.stderr.write(`soak: ${String(e)}\n`);
  process.exit(1);
});
