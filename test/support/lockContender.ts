/**
 * One contender of the owner-lock race (test/unit/owner/lock.test.ts). Long-lived: it loads and warms up once, says
 * {"op":"ready"}, then for every line on stdin answers with one line on stdout:
 *  - {"op":"go","round":n}     → tryAcquireOwnerLock once; {"op":"result", round, before, won, generation, holderPid, links}
 *    where `before` is whether the lock it won in an earlier round still counted as current just before this attempt,
 *    and `links` how many link() calls the attempt made (to show that contenders really raced for a generation).
 *  - {"op":"status","round":n} → {"op":"status", round, current, generation} for the lock it holds (if any).
 * Exits when stdin ends. Usage: node --import tsx lockContender.ts <.sparkq dir> (the test runs an esbuild bundle of it).
 */
import * as fs from 'node:fs';
import nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type OwnerLock, tryAcquireOwnerLock } from '../../src/owner/lock';

function say(line: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

let links = 0;
// Count link() calls: the lock module reaches `linkSync` through the CommonJS module object, which is patched here.
const fsModule = nodeFs as { linkSync: typeof fs.linkSync };
const realLink = fsModule.linkSync;
fsModule.linkSync = (existing: fs.PathLike, newPath: fs.PathLike): void => {
  links++;
  realLink(existing, newPath);
};

async function warmUp(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-lockwarm-'));
  try {
    for (let i = 0; i < 5; i++) {
      const r = await tryAcquireOwnerLock(dir, { role: 'warm-up' });
      if ('lock' in r) {
        r.lock.isCurrent();
        r.lock.release();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: lockContender <.sparkq dir>');
  await warmUp();
  let held: OwnerLock | null = null;
  let partial = '';
  let chain = Promise.resolve();
  const handle = async (msg: { op: string; round: number }): Promise<void> => {
    if (msg.op === 'go') {
      const before = held?.isCurrent() ?? false;
      links = 0;
      const r = await tryAcquireOwnerLock(dir, { role: `contender-${process.pid}` });
      if ('lock' in r) {
        held = r.lock;
        say({ op: 'result', round: msg.round, before, won: true, generation: r.lock.generation, holderPid: process.pid, links });
      } else {
        say({ op: 'result', round: msg.round, before, won: false, generation: r.holder.generation, holderPid: r.holder.pid, links });
      }
    } else if (msg.op === 'status') {
      say({ op: 'status', round: msg.round, current: held?.isCurrent() ?? false, generation: held?.generation ?? null });
    }
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    partial += chunk;
    for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
      const text = partial.slice(0, i).trim();
      partial = partial.slice(i + 1);
      if (!text) continue;
      const msg = JSON.parse(text) as { op: string; round: number };
      chain = chain.then(() => handle(msg)).catch((e: unknown) => {
        say({ op: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
        process.exit(3);
      });
    }
  });
  process.stdin.on('end', () => process.exit(0));
  say({ op: 'ready', pid: process.pid });
}

main().catch((e: unknown) => {
  say({ op: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  process.exit(2);
});
