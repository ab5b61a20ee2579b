import { strict as assert } from 'node:assert';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import {
  type LockHolder,
  type OwnerLock,
  isProcessAlive,
  processStartTime,
  readOwner,
  tryAcquireOwnerLock,
} from '../../../src/owner/lock';
import { tempDir } from '../../support/tmp';

/*
 * The single-owner lock (DESIGN.md "One writer: the owner"): generation files in .sparkq/, staleness by pid, start time
 * and ping, fencing, and the race of 20 processes × 100 rounds for a dead holder's lock.
 */

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CONTENDER = path.join(ROOT, 'test', 'support', 'lockContender.ts');
const LINUX = process.platform === 'linux';

function lockFile(dir: string, generation: number): string {
  return path.join(dir, `owner-${String(generation).padStart(10, '0')}.lock`);
}

function lockFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => /^owner-\d{10}\.lock$/.test(n))
    .sort();
}

function holderOf(pid: number, generation: number, extra: Partial<LockHolder> = {}): LockHolder {
  return {
    pid,
    startTime: processStartTime(pid),
    generation,
    role: 'test',
    socketPath: null,
    acquiredAt: new Date(Date.now() - 60_000).toISOString(),
    ...extra,
  };
}

/** Puts a complete lock file in place, as another process would have. */
function writeLock(dir: string, holder: LockHolder): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(lockFile(dir, holder.generation), JSON.stringify(holder), { mode: 0o600 });
}

async function acquired(dir: string, opts: Parameters<typeof tryAcquireOwnerLock>[1] = { role: 'test' }): Promise<OwnerLock> {
  const r = await tryAcquireOwnerLock(dir, opts);
  assert.ok('lock' in r, `expected to acquire, but ${JSON.stringify(r)} holds it`);
  return r.lock;
}

async function blocked(dir: string, opts: Parameters<typeof tryAcquireOwnerLock>[1] = { role: 'test' }): Promise<LockHolder> {
  const r = await tryAcquireOwnerLock(dir, opts);
  assert.ok('holder' in r, `expected a live holder, but acquired generation ${'lock' in r ? r.lock.generation : '?'}`);
  return r.holder;
}

/** A process that existed and is gone now, with the start time it had while it lived (null off Linux). */
async function deadProcess(): Promise<{ pid: number; startTime: string | null }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const pid = child.pid!;
  const startTime = processStartTime(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
  return { pid, startTime };
}

/** A live process other than this one, killed by `stop`. */
function liveProcess(): { pid: number; stop: () => Promise<void> } {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('owner lock', () => {
  let tmp: { dir: string; cleanup: () => void };
  let dir: string;
  beforeEach(() => {
    tmp = tempDir('sparkq-lock-');
    dir = path.join(tmp.dir, '.sparkq');
  });
  afterEach(() => tmp.cleanup());

  describe('processes', () => {
    it('knows this process is alive, with a stable start time (Linux)', () => {
      assert.equal(isProcessAlive(process.pid, processStartTime(process.pid)), true);
      assert.equal(isProcessAlive(process.pid, null), true);
      if (LINUX) {
        const st = processStartTime(process.pid);
        assert.ok(st !== null && /:\d+$/.test(st), `start time ${st}`);
        assert.equal(processStartTime(process.pid), st);
        assert.equal(isProcessAlive(process.pid, `${st}0`), false);
      } else {
        assert.equal(processStartTime(process.pid), null);
      }
    });

    it('says a dead pid is dead, and never treats 0, negative or fractional numbers as a pid', async () => {
      const dead = await deadProcess();
      assert.equal(isProcessAlive(dead.pid, dead.startTime), false);
      assert.equal(processStartTime(dead.pid), null);
      for (const pid of [0, -1, -process.pid, 1.5, NaN, Infinity]) assert.equal(isProcessAlive(pid, null), false, String(pid));
    });
  });

  describe('basics', () => {
    it('acquires generation 1 in an empty (even missing) folder, in a private, complete file', async () => {
      const lock = await acquired(dir, { role: 'extension', socketPath: '/run/x.sock' });
      assert.equal(lock.generation, 1);
      assert.deepEqual(lockFiles(dir), ['owner-0000000001.lock']);
      if (process.platform !== 'win32') assert.equal(fs.statSync(lockFile(dir, 1)).mode & 0o777, 0o600);
      const onDisk = JSON.parse(fs.readFileSync(lockFile(dir, 1), 'utf8')) as LockHolder;
      assert.deepEqual(onDisk, lock.holder);
      assert.equal(lock.holder.pid, process.pid);
      assert.equal(lock.holder.startTime, processStartTime(process.pid));
      assert.equal(lock.holder.role, 'extension');
      assert.equal(lock.holder.socketPath, '/run/x.sock');
      assert.deepEqual(readOwner(dir), lock.holder);
      assert.equal(lock.isCurrent(), true);
      assert.deepEqual(fs.readdirSync(dir), ['owner-0000000001.lock'], 'no temp file left');
    });

    it('a second acquire (same process) sees the holder', async () => {
      const lock = await acquired(dir);
      const h = await blocked(dir, { role: 'cli' });
      assert.deepEqual(h, lock.holder);
      assert.equal(lock.isCurrent(), true);
    });

    it('release leaves a released record, so the next owner takes generation 2; the old lock never comes back', async () => {
      const first = await acquired(dir);
      first.release();
      assert.equal(first.isCurrent(), false);
      assert.equal(readOwner(dir), null);
      assert.deepEqual(lockFiles(dir), ['owner-0000000001.lock']);
      const second = await acquired(dir);
      assert.equal(second.generation, 2);
      assert.deepEqual(lockFiles(dir), ['owner-0000000002.lock'], 'lower generations are deleted by the winner');
      first.release(); // not current: must not touch generation 2
      assert.deepEqual(readOwner(dir), second.holder);
      assert.equal(second.isCurrent(), true);
      assert.equal(first.isCurrent(), false);
    });

    it('readOwner: null for a missing or empty folder', () => {
      assert.equal(readOwner(dir), null);
      fs.mkdirSync(dir);
      assert.equal(readOwner(dir), null);
    });

    it('ignores files that are not owner-<10 digits>.lock', async () => {
      fs.mkdirSync(dir);
      const live = holderOf(process.pid, 7);
      for (const name of ['owner-7.lock', 'owner-00000000007.lock', 'owner-0000000007.lock.bak', 'xowner-0000000007.lock']) {
        fs.writeFileSync(path.join(dir, name), JSON.stringify(live));
      }
      const lock = await acquired(dir);
      assert.equal(lock.generation, 1);
      assert.equal(fs.readdirSync(dir).length, 5, 'foreign files are left alone');
    });
  });

  describe('fencing', () => {
    it('isCurrent is false as soon as a higher generation exists, and stays false after it goes', async () => {
      const lock = await acquired(dir);
      writeLock(dir, holderOf(process.pid, 2));
      assert.equal(lock.isCurrent(), false);
      fs.unlinkSync(lockFile(dir, 2));
      assert.equal(lock.isCurrent(), false);
    });

    it('sees any higher generation, not only ours + 1', async () => {
      const lock = await acquired(dir);
      writeLock(dir, holderOf(process.pid, 5));
      assert.equal(lock.isCurrent(), false);

    it('reuses a recent look only when asked to (the check before a write), and never once it saw a newer owner', async () => {
      const lock = await acquired(dir);
      assert.equal(lock.isCurrent(), true);
      writeLock(dir, holderOf(process.pid, 2));
      // Within the window the answer of the look just made stands: nothing was read.
      assert.equal(lock.isCurrent({ reuseMs: 60_000 }), true);
      // Without the option (the check before an acknowledgement) it looks, and sees generation 2.
      assert.equal(lock.isCurrent(), false);
      assert.equal(lock.isCurrent({ reuseMs: 60_000 }), false);
    });

    it('a reused answer expires after reuseMs', async () => {
      const lock = await acquired(dir);
      assert.equal(lock.isCurrent(), true);
      writeLock(dir, holderOf(process.pid, 2));
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(lock.isCurrent({ reuseMs: 1 }), false);
    });
    });

    it('release and setSocketPath never touch the file of a newer owner', async () => {
      const lock = await acquired(dir);
      const newer = holderOf(process.pid, 2, { role: 'newer' });
      writeLock(dir, newer);
      lock.setSocketPath('/tmp/old.sock');
      lock.release();
      assert.deepEqual(readOwner(dir), newer);
      assert.equal(lock.holder.socketPath, null);
    });

    it('setSocketPath rewrites our own file while current', async () => {
      const lock = await acquired(dir, { role: 'extension' });
      lock.setSocketPath('/tmp/sparkq-1/owner.sock');
      assert.equal(lock.holder.socketPath, '/tmp/sparkq-1/owner.sock');
      assert.deepEqual(readOwner(dir), lock.holder);
      assert.deepEqual(fs.readdirSync(dir), ['owner-0000000001.lock']);
      if (process.platform !== 'win32') assert.equal(fs.statSync(lockFile(dir, 1)).mode & 0o777, 0o600);
    });

    it('backs off from a lower generation it re-created after a newer owner had deleted it', async () => {
      // Generation 1 is held by a live process that does not answer. While we ping it, two takeovers happen: someone
      // wins 2, someone else wins 3 and deletes 1 and 2. We then link generation 2 (the name is free again) and must
      // notice generation 3, remove our file and report its holder.
      const other = liveProcess();
      try {
        writeLock(dir, holderOf(other.pid, 1));
        const third = holderOf(other.pid, 3, { role: 'third', acquiredAt: new Date().toISOString() });
        let pings = 0;
        const h = await blocked(dir, {
          role: 'slow',
          pingGraceMs: 1_000,
          ping: (holder) => {
            pings++;
            if (holder.generation === 1) {
              writeLock(dir, holderOf(other.pid, 2));
              writeLock(dir, third);
              fs.unlinkSync(lockFile(dir, 1));
              fs.unlinkSync(lockFile(dir, 2));
              return Promise.resolve(false);
            }
            return Promise.resolve(true);
          },
        });
        assert.deepEqual(h, third);
        assert.equal(pings, 1, 'generation 3 is within its grace period');
        assert.deepEqual(lockFiles(dir), ['owner-0000000003.lock']);
        assert.deepEqual(fs.readdirSync(dir), ['owner-0000000003.lock'], 'no temp file left');
      } finally {
        await other.stop();
      }
    });
  });

  describe('staleness', () => {
    it('takes over the lock of a dead pid, deleting it', async () => {
      const dead = await deadProcess();
      writeLock(dir, { ...holderOf(process.pid, 4), pid: dead.pid, startTime: dead.startTime });
      assert.equal(readOwner(dir)?.pid, dead.pid, 'readOwner does not judge liveness');
      const lock = await acquired(dir);
      assert.equal(lock.generation, 5);
      assert.deepEqual(lockFiles(dir), ['owner-0000000005.lock']);
    });

    it('takes over a live pid whose start time does not match (pid reused), not one whose start time matches', async function () {
      if (!LINUX) this.skip();
      const other = liveProcess();
      try {
        writeLock(dir, holderOf(other.pid, 1));
        assert.equal((await blocked(dir)).pid, other.pid);
        writeLock(dir, holderOf(other.pid, 2, { startTime: `${processStartTime(other.pid)}1` }));
        const lock = await acquired(dir);
        assert.equal(lock.generation, 3);
      } finally {
        await other.stop();
      }
    });

    it('takes over a live holder that fails its ping after the grace period', async () => {
      writeLock(dir, holderOf(process.pid, 1, { acquiredAt: new Date().toISOString() }));
      const asked: LockHolder[] = [];
      const lock = await acquired(dir, {
        role: 'test',
        pingGraceMs: 0,
        ping: (h) => {
          asked.push(h);
          return Promise.resolve(false);
        },
      });
      assert.equal(lock.generation, 2);
      assert.equal(asked.length, 1);
      assert.equal(asked[0]!.generation, 1);
      assert.equal(lock.predecessorMayRun, true, 'a holder that is alive but silent may still write');
    });

    it('says the predecessor may run only when it was alive: not after a dead pid, a release or a fresh start', async function () {
      if (!LINUX) this.skip(); // a pid's start time tells a reused pid apart
      const first = await acquired(dir);
      assert.equal(first.predecessorMayRun, false, 'no holder before');
      // Generation 5: our pid with another start time, i.e. a process that is gone (its pid reused).
      writeLock(dir, holderOf(process.pid, 5, { startTime: `${processStartTime(process.pid)}1` }));
      const afterDead = await acquired(dir);
      assert.equal(afterDead.generation, 6);
      assert.equal(afterDead.predecessorMayRun, false, 'a pid that is not the holder any more');
      afterDead.release();
      const afterRelease = await acquired(dir);
      assert.equal(afterRelease.generation, 7);
      assert.equal(afterRelease.predecessorMayRun, false, 'a released lock');
    });

    it('a ping that answers true, or a lock within its grace period, blocks', async () => {
      writeLock(dir, holderOf(process.pid, 1, { acquiredAt: new Date().toISOString() }));
      let pings = 0;
      const ping = () => {
        pings++;
        return Promise.resolve(false);
      };
      await blocked(dir, { role: 'test', ping }); // default grace 5 s: not pinged
      assert.equal(pings, 0);
      await blocked(dir, { role: 'test', pingGraceMs: 0, ping: () => Promise.resolve(true) });
    });

    it('a ping that hangs past the timeout or throws counts as failed', async () => {
      writeLock(dir, holderOf(process.pid, 1));
      const t0 = Date.now();
      const first = await acquired(dir, { role: 'test', pingGraceMs: 0, pingTimeoutMs: 50, ping: () => new Promise<boolean>(() => {}) });
      assert.ok(Date.now() - t0 < 1_000);
      assert.equal(first.generation, 2);
      const second = await acquired(dir, {
        role: 'test',
        pingGraceMs: 0,
        ping: () => {
          throw new Error('connection refused');
        },
      });
      assert.equal(second.generation, 3);
    });

    it('an unparsable lock blocks while younger than 2 s (being written) and is stale after', async () => {
      fs.mkdirSync(dir);
      fs.writeFileSync(lockFile(dir, 1), '{"pid":12');
      const h = await blocked(dir);
      assert.equal(h.generation, 1);
      assert.equal(h.pid, 0, 'a placeholder: the writer is not known yet');
      assert.equal(readOwner(dir), null);
      const past = new Date(Date.now() - 3_000);
      fs.utimesSync(lockFile(dir, 1), past, past);
      const lock = await acquired(dir);
      assert.equal(lock.generation, 2);
      assert.deepEqual(lockFiles(dir), ['owner-0000000002.lock']);
    });

    it('a lock whose content names another generation than its file name counts as unparsable', async () => {
      writeLock(dir, holderOf(process.pid, 1));
      fs.renameSync(lockFile(dir, 1), lockFile(dir, 3));
      await blocked(dir); // young
      const past = new Date(Date.now() - 3_000);
      fs.utimesSync(lockFile(dir, 3), past, past);
      assert.equal((await acquired(dir)).generation, 4);
    });

    it('removes temp files that dead contenders left behind, keeps those of live ones', async () => {
      const dead = await deadProcess();
      fs.mkdirSync(dir);
      const deadTmp = `.owner-lock.${dead.pid}.abcdef.tmp`;
      const liveTmp = `.owner-lock.${process.pid}.123456.tmp`;
      fs.writeFileSync(path.join(dir, deadTmp), '{');
      fs.writeFileSync(path.join(dir, liveTmp), '{');
      await acquired(dir);
      assert.deepEqual(fs.readdirSync(dir).sort(), [liveTmp, 'owner-0000000001.lock'].sort());
    });
  });

  describe('the race', () => {
    const CONTENDERS = 20;
    const ROUNDS = 100;

    interface Result {
      op: 'result';
      round: number;
      before: boolean;
      won: boolean;
      generation: number;
      holderPid: number;
      links: number;
    }
    interface Status {
      op: 'status';
      round: number;
      current: boolean;
      generation: number | null;
    }
    type Line = { op: 'ready'; pid: number } | Result | Status | { op: 'error'; message: string };

    /** One long-lived contender process; `next()` resolves with its next line. */
    class Contender {
      readonly child: ChildProcessWithoutNullStreams;
      private partial = '';
      private stderr = '';
      private readonly lines: Line[] = [];
      private waiting: ((l: Line) => void) | null = null;
      private exited: string | null = null;
      private readonly failWaiter: (why: string) => void;

      constructor(script: string, sparkqDir: string, onFail: (why: string) => void) {
        this.failWaiter = onFail;
        this.child = spawn(process.execPath, [script, sparkqDir], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
        this.child.stdout.setEncoding('utf8');
        this.child.stderr.setEncoding('utf8');
        this.child.stderr.on('data', (c: string) => (this.stderr += c));
        this.child.stdout.on('data', (chunk: string) => {
          this.partial += chunk;
          for (let i = this.partial.indexOf('\n'); i >= 0; i = this.partial.indexOf('\n')) {
            const line = JSON.parse(this.partial.slice(0, i)) as Line;
            this.partial = this.partial.slice(i + 1);
            if (line.op === 'error') this.failWaiter(`contender ${this.child.pid}: ${line.message}`);
            const w = this.waiting;
            if (w) {
              this.waiting = null;
              w(line);
            } else this.lines.push(line);
          }
        });
        this.child.once('exit', (code, signal) => {
          this.exited = `contender ${this.child.pid} exited (${code ?? signal}): ${this.stderr.slice(-2000)}`;
          if (this.waiting) this.failWaiter(this.exited);
        });
      }

      send(msg: { op: string; round: number }): void {
        this.child.stdin.write(JSON.stringify(msg) + '\n');
      }

      next(): Promise<Line> {
        const l = this.lines.shift();
        if (l) return Promise.resolve(l);
        if (this.exited) return Promise.reject(new Error(this.exited));
        return new Promise((resolve) => (this.waiting = resolve));
      }
    }

    it(`${CONTENDERS} processes race for a dead holder's lock, ${ROUNDS} rounds: exactly one owner each time`, async function () {
      this.timeout(120_000);
      fs.mkdirSync(dir);
      let failure: ((e: Error) => void) | null = null;
      const failed = new Promise<never>((_, reject) => (failure = reject));
      failed.catch(() => {}); // observed through Promise.race below
      const fail = (why: string) => failure?.(new Error(why));
      // The contender bundled once with esbuild (what tsx would compile it with) and run by plain node: 20 starts of
      // `node --import tsx` take ~22 s of wall time on a 2-core machine, 20 starts of the bundle ~7 s.
      const script = path.join(tmp.dir, 'lockContender.js');
      buildSync({ entryPoints: [CONTENDER], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: script, logLevel: 'silent' });
      const contenders = Array.from({ length: CONTENDERS }, () => new Contender(script, dir, fail));
      const all = <T>(p: Promise<T>) => Promise.race([p, failed]);
      try {
        const ready = await all(Promise.all(contenders.map((c) => c.next())));
        for (const r of ready) assert.equal(r.op, 'ready');
        const dead = await deadProcess();
        let contested = 0;
        for (let round = 1; round <= ROUNDS; round++) {
          // The last owner "dies": a dead process's lock appears above it (as if it had taken over and crashed).
          const deadGen = (Math.max(0, ...lockFiles(dir).map((n) => Number(n.slice(6, 16)))) || 0) + 1;
          writeLock(dir, holderOf(dead.pid, deadGen, { startTime: dead.startTime, role: 'dead' }));

          for (const c of contenders) c.send({ op: 'go', round });
          const results = (await all(Promise.all(contenders.map((c) => c.next())))) as Result[];
          const winners = results.filter((r) => r.op === 'result' && r.round === round && r.won);
          assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners ${JSON.stringify(results)}`);
          const winner = winners[0]!;
          assert.equal(winner.generation, deadGen + 1, `round ${round}: generation`);
          for (const r of results) {
            assert.equal(r.before, false, `round ${round}: an earlier lock still counted as current before the round`);
            assert.equal(r.generation, winner.generation, `round ${round}: a loser saw another holder`);
            assert.equal(r.holderPid, winner.holderPid, `round ${round}: a loser saw another holder`);
          }
          if (results.filter((r) => r.links > 0).length > 1) contested++;

          assert.deepEqual(fs.readdirSync(dir), [path.basename(lockFile(dir, winner.generation))], `round ${round}: files left`);
          const owner = readOwner(dir);
          assert.equal(owner?.pid, winner.holderPid);
          assert.equal(owner?.generation, winner.generation);

          for (const c of contenders) c.send({ op: 'status', round });
          const statuses = (await all(Promise.all(contenders.map((c) => c.next())))) as Status[];
          const current = statuses.filter((s) => s.current);
          assert.equal(current.length, 1, `round ${round}: ${current.length} contenders think they are current`);
          assert.equal(current[0]!.generation, winner.generation);
          assert.equal(contenders[statuses.indexOf(current[0]!)]!.child.pid, winner.holderPid);
        }
        // Not an assertion about correctness, but that the test really raced: in most rounds several contenders
        // judged the dead lock stale and went for the same generation with link().
        assert.ok(contested >= ROUNDS / 2, `only ${contested} of ${ROUNDS} rounds had more than one contender linking`);
      } finally {
        for (const c of contenders) c.child.stdin.end();
        await Promise.all(
          contenders.map(
            (c) =>
              new Promise<void>((resolve) => {
                if (c.child.exitCode !== null || c.child.signalCode !== null) return resolve();
                const t = setTimeout(() => c.child.kill('SIGKILL'), 5_000);
                c.child.once('exit', () => {
                  clearTimeout(t);
                  resolve();
                });
              }),
          ),
        );
      }
    });
  });
});
