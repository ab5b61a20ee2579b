import { FakeClock } from '../../src/core/clock';
import { defaultConfig } from '../../src/core/config';
import { QueueService, type OpenQueueOptions } from '../../src/core/queue/service';
import { tempDir } from './tmp';

/** A queue in a temp folder with a movable clock, one session `s` and one queue `q`. */
export async function testQueue(extra: Partial<OpenQueueOptions> = {}) {
  const t = tempDir();
  const clock = new FakeClock();
  const config = defaultConfig('test');
  const open = (more: Partial<OpenQueueOptions> = {}) =>
    QueueService.open({ dir: t.dir, config, clock, autoMaintain: false, ...extra, ...more });
  const q = await open();
  await q.createSession({ name: 's' });
  await q.createQueue({ name: 'q', session: 's', instructions: 'Be brief.' });
  return { q, clock, dir: t.dir, config, open, cleanup: t.cleanup };
}

export type TestQueue = Awaited<ReturnType<typeof testQueue>>;

/**
 * For a describe block: a fresh testQueue before each test, handed to `set`, and after it the queue `current` gives
 * (a test may have reopened it) closed and the folder removed.
 */
export function eachTestQueue(set: (env: TestQueue) => void, current: () => QueueService): void {
  let env: TestQueue;
  beforeEach(async () => {
    env = await testQueue();
    set(env);
  });
  afterEach(async () => {
    await current().close().catch(() => undefined);
    env.cleanup();
  });
}
