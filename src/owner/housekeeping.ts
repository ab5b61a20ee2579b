import type { SweepResult } from '../api/contract';
import type { Clock } from '../core/clock';
import { errorMessage } from '../core/errors';
import type { Task } from '../core/model';
import { workerLostReason } from '../core/queue/rules';
import type { QueueService } from '../core/queue/service';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Running tasks are read this many at a time when looking for lost workers. */
const PAGE = 1000;

/**
 * The owner's time-driven work: the time budget (stale at 1× a task's timeout, failed at 2×), tasks whose worker was
 * lost, and the automatic purge of old finished tasks. Runs once before the owner answers anything (so a one-command
 * owner applies it too), then on timers while it owns.
 */
export class Housekeeping {
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(
    private readonly service: QueueService,
    private readonly clock: Clock,
    private readonly log: (line: string) => void,
    /** False once the owner is closing or lost: nothing is started then. */
    private readonly active: () => boolean,
  ) {}

  /** One round: timeouts and tasks of lost workers. Never throws. */
  async round(): Promise<void> {
    await this.sweep().catch((e: unknown) => this.log(`sweep failed: ${errorMessage(e)}`));
    await this.reapLostWorkers().catch((e: unknown) => this.log(`looking for lost workers failed: ${errorMessage(e)}`));
  }

  start(sweepIntervalMs: number): void {
    const sweep = setInterval(() => void this.round(), sweepIntervalMs);
    const purge = () => {
      const days = this.service.getConfig().purgeAfterDays;
      if (days === null || this.stopped || !this.active()) return;
      this.service.purge({ olderThanDays: days }).then(
        (r) => {
          if (r.purged > 0) this.log(`automatic purge: ${r.purged} finished tasks older than ${days} days removed`);
        },
        (e: unknown) => this.log(`automatic purge failed: ${errorMessage(e)}`),
      );
    };
    this.timers.push(sweep, setTimeout(purge, 0), setInterval(purge, DAY_MS));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
  }

  async sweep(): Promise<SweepResult> {
    const r = await this.service.sweep();
    for (const t of r.staled) this.log(`task ${t.id} is stale: running past its ${t.timeoutSeconds} s timeout`);
    for (const t of r.failed) this.log(`task ${t.id} auto-failed: ${t.error ?? ''}`);
    return r;
  }

  /**
   * Liveness, apart from the time budget: a running task whose worker heartbeated at least once (so it is worked by
   * `sparkq run`, not claimed by hand) and then fell silent for longer than worker.leaseSeconds has lost its worker
   * (process killed, terminal closed, machine asleep): it is failed as "worker lost", in seconds rather than at 2× its
   * timeout. Tasks claimed with a bare `sparkq claim` never heartbeat and stay bounded only by their timeout. The
   * evidence is the durable heartbeat time, so this works across restarts and hand-overs of the owner.
   */
  async reapLostWorkers(): Promise<Task[]> {
    if (this.stopped || !this.active()) return [];
    const leaseMs = this.service.getConfig().worker.leaseSeconds * 1000;
    const now = this.clock.now();
    const failed: Task[] = [];
    for (let before: string | undefined; ; ) {
      const page = this.service.listTasks({ status: 'running', limit: PAGE, ...(before ? { before } : {}) });
      for (const t of page.tasks) {
        if (!t.heartbeatAt || !t.startedAt) continue;
        const beat = Date.parse(t.heartbeatAt);
        if (beat <= Date.parse(t.startedAt) || now - beat <= leaseMs) continue;
        const silent = Math.round((now - beat) / 1000);
        try {
          failed.push(
            await this.service.fail({
              task: t.id,
              error: workerLostReason(t.worker, now - beat),
            }),
          );
          this.log(`task ${t.id}: worker ${t.worker ?? '?'} lost (no heartbeat for ${silent} s); failed`);
        } catch (e) {
          // It finished or was failed meanwhile: nothing to do.
          this.log(`task ${t.id}: could not fail it as worker lost: ${errorMessage(e)}`);
        }
      }
      if (page.tasks.length < PAGE) break;
      before = page.tasks[page.tasks.length - 1]!.id;
    }
    return failed;
  }
}
