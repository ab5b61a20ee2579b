import * as os from 'node:os';
import type { WorkerInfo, WorkerJoin, WorkerLeave, WorkerPlace } from '../api/contract';
import { SparkqError } from '../core/errors';
import type { Queue } from '../core/model';
import { plural } from '../core/text';

/**
 * The places of workers on queues (`sparkq run` joins, renews as a heartbeat, and leaves). A queue takes at most its
 * maxWorkers workers; a worker beyond that is refused with 'conflict'. Places live in the owner's memory and expire
 * without renewal, so a dead worker frees its place by itself, and a new owner learns the workers from their next
 * renewal.
 */
export class WorkerPlaces {
  /** Queue id → worker name → when its place expires (ms). */
  private readonly places = new Map<string, Map<string, number>>();

  join(queue: Queue, input: WorkerJoin, now: number): WorkerPlace {
    if (queue.status !== 'active') throw new SparkqError('conflict', `queue ${queue.name} has ended; workers can only work active queues`);
    let places = this.places.get(queue.id);
    if (!places) this.places.set(queue.id, (places = new Map<string, number>()));
    for (const [w, until] of places) if (until <= now) places.delete(w);
    if (!places.has(input.worker) && places.size >= queue.maxWorkers) {
      const others = [...places.keys()].join(', ');
      throw new SparkqError(
        'conflict',
        `queue ${queue.name} already has ${plural(places.size, 'worker')} (${others}) and allows ${queue.maxWorkers}; ` +
          'stop that worker first, or create the queue with a higher --max-workers',
        { queue: queue.id, workers: [...places.keys()], maxWorkers: queue.maxWorkers },
      );
    }
    places.set(input.worker, now + input.leaseSeconds * 1000);
    return { queueId: queue.id, workers: [...places.keys()], maxWorkers: queue.maxWorkers };
  }

  leave(queue: Queue, input: WorkerLeave): void {
    this.places.get(queue.id)?.delete(input.worker);
  }

  /** The places not expired at `now`, with their queue's name; every worker of the embedded store runs on this host. */
  list(now: number, queueName: (id: string) => string): WorkerInfo[] {
    const host = os.hostname();
    const out: WorkerInfo[] = [];
    for (const [queueId, places] of this.places) {
      for (const [worker, until] of places) if (until > now) out.push({ queue: queueName(queueId), worker, host, until: new Date(until).toISOString() });
    }
    return out.sort((a, b) => a.queue.localeCompare(b.queue) || a.worker.localeCompare(b.worker));
  }
}
