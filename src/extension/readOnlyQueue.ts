import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultConfig } from '../core/config';
import type { ListTasksInput, Queue, Report, ReportInput, Session, TaskDetail, TaskPage } from '../core/model';
import { QueueService } from '../core/queue/service';
import type { StatusReport } from '../api/contract';
import { DB_DIR } from '../owner/owner';
import { sparkqDirOf } from '../owner/workspace';
import type { QueueReader } from './queueReader';

/**
 * The queue as Restricted Mode shows it: a private copy of the store's files opened in memory. Nothing in the
 * workspace is locked, written or served, no socket is opened and sparkq.yml is not read (its tools could run
 * code); the copy is refreshed when the files change.
 */
export class ReadOnlyQueue implements QueueReader {
  private constructor(
    private readonly service: QueueService | null,
    private readonly copyDir: string | null,
    private readonly project: string,
    private readonly role = 'none (Restricted Mode: a read-only copy)',
  ) {}

  /** A queue with nothing in it, for a folder whose queue is not shown in Restricted Mode (a team database). */
  static empty(project: string, role: string): ReadOnlyQueue {
    return new ReadOnlyQueue(null, null, project, role);
  }

  static async open(workspaceDir: string): Promise<ReadOnlyQueue> {
    const project = path.basename(workspaceDir);
    const source = path.join(sparkqDirOf(workspaceDir), DB_DIR);
    if (!fs.existsSync(source)) return new ReadOnlyQueue(null, null, project);
    const copyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-readonly-'));
    try {
      fs.cpSync(source, path.join(copyDir, DB_DIR), { recursive: true });
      const service = await QueueService.open({
        dir: path.join(copyDir, DB_DIR),
        config: defaultConfig(project),
        durability: 'none',
        autoMaintain: false,
      });
      return new ReadOnlyQueue(service, copyDir, project);
    } catch (e) {
      fs.rmSync(copyDir, { recursive: true, force: true });
      throw e;
    }
  }

  status(): Promise<StatusReport> {
    const counts = this.service?.counts() ?? { queued: 0, running: 0, succeeded: 0, failed: 0, stale: 0 };
    return Promise.resolve({
      owner: { pid: 0, generation: 0, role: this.role, since: new Date(0).toISOString() },
      project: this.project,
      counts,
      queues: this.service?.listQueues({ includeEnded: false }) ?? [],
      // Nothing runs in Restricted Mode, and a copy has no workers.
      workers: [],
    });
  }
  listSessions(options?: { includeEnded?: boolean }): Promise<Session[]> {
    return Promise.resolve(this.service?.listSessions(options) ?? []);
  }
  getSession(ref: string): Promise<Session> {
    return this.call((s) => s.getSession(ref));
  }
  listQueues(options?: { session?: string; includeEnded?: boolean }): Promise<Queue[]> {
    return Promise.resolve(this.service?.listQueues(options) ?? []);
  }
  getQueue(ref: string): Promise<Queue> {
    return this.call((s) => s.getQueue(ref));
  }
  listTasks(input?: ListTasksInput): Promise<TaskPage> {
    return Promise.resolve(this.service?.listTasks(input) ?? { tasks: [], next: null });
  }
  getTask(task: string): Promise<TaskDetail> {
    return this.call((s) => s.getTask(task));
  }
  report(input?: ReportInput): Promise<Report> {
    return this.call((s) => s.report(input));
  }

  private call<T>(fn: (s: QueueService) => T | Promise<T>): Promise<T> {
    try {
      if (!this.service) throw new Error('this workspace has no SparkQ queue yet');
      return Promise.resolve(fn(this.service));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  async close(): Promise<void> {
    try {
      this.service?.abandon();
    } finally {
      if (this.copyDir) fs.rmSync(this.copyDir, { recursive: true, force: true });
    }
    await Promise.resolve();
  }
}
