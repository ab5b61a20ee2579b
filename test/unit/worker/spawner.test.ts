import { strict as assert } from 'node:assert';
import { runProcess } from '../../../src/worker/proc';
import { Spawner } from '../../../src/worker/spawner';
import { tempDir } from '../../support/tmp';

/* A helper started ahead of use (the worker's `start()`) never holds up a spawn while it starts. */
describe('worker: the spawn helper started ahead', function () {
  this.timeout(30_000);
  let t: ReturnType<typeof tempDir>;
  let spawner: Spawner;
  beforeEach(function () {
    if (process.platform === 'win32') this.skip();
    t = tempDir('sparkq-spawner-warm-');
    spawner = new Spawner();
  });
  afterEach(() => {
    spawner?.close();
    t?.cleanup();
  });

  const helperOf = (s: Spawner) => (s as unknown as { helper: { pid: number } | null }).helper;
  const parentOf = async (s: Spawner) => {
    const r = await runProcess({ command: 'bash', args: ['-c', 'echo $PPID'], cwd: t.dir, env: { ...process.env }, spawner: s });
    assert.equal(r.exitCode, 0);
    return Number(r.stdoutTail.trim());
  };
  const untilThroughHelper = async (s: Spawner) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const helper = helperOf(s);
      if (helper && (await parentOf(s)) === helper.pid) return helper.pid;
      if (Date.now() > deadline) throw new Error('the helper never took a spawn');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('until the helper is ready a spawn is the caller’s own (no wait for a Node start-up); then it goes through the helper', async () => {
    spawner.start();
    const req = { command: 'bash', args: ['-c', 'true'], cwd: t.dir, env: { ...process.env } };
    // Right after start() the helper is still starting: the caller starts the process itself, at once.
    assert.equal(spawner.spawn(req), null);
    const first = await runProcess({ ...req, args: ['-c', 'echo $PPID'], spawner });
    assert.equal(Number(first.stdoutTail.trim()), process.pid, 'the first process was not started directly');
    await untilThroughHelper(spawner);
  });

  it('a helper started ahead that ends is started again, and spawns are direct until it is ready', async () => {
    spawner.start();
    const pid = await untilThroughHelper(spawner);
    const gone = new Promise((r) => (helperOf(spawner) as unknown as NodeJS.EventEmitter).once('exit', r));
    process.kill(pid, 'SIGKILL');
    await gone;
    assert.equal(await parentOf(spawner), process.pid);
    const again = await untilThroughHelper(spawner);
    assert.notEqual(again, pid);
  });

  it('a helper that is not started ahead is waited for by the first spawn, as before', async () => {
    assert.equal(await parentOf(spawner), helperOf(spawner)?.pid);
  });
});
