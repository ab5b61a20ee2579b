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
