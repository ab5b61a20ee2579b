import { type ApiMethod, type ChangeEvent, ForwardingQueue, type OwnerInfo, SAFE_TO_REPEAT, checkParams, invoke, withIdempotencyKey } from '../api/contract';
import { resolveScriptDirs } from '../core/config';
import { isSparkqError } from '../core/errors';
import { ScriptIndex } from '../core/scriptIndex';
import { ConfigWatcher } from '../owner/configWatcher';
import { TeamQueue } from '../team/teamQueue';
import type { OpenOptions, QueueHandle } from './open';
import type { TeamStore } from './teamStore';

/*
 * Team mode as a workspace sees it: when sparkq.yml says `store: { kind: postgres }`, the workspace's queue is the
 * team database, and this process is one of its clients like every other process on every machine (no owner, no
 * socket, no lock). What is per machine stays in the workspace: tools, task classes, script dirs, retries.
 */

/** Opens the team queue for this workspace: connects, migrates once, sweeps once. */
export async function openTeamQueue(workspaceDir: string, store: TeamStore, options: Pick<OpenOptions, 'role' | 'clock' | 'sweepIntervalMs' | 'log'>): Promise<QueueHandle> {
  const scripts = new ScriptIndex(resolveScriptDirs(store.config, workspaceDir));
  const queue = await TeamQueue.open({
    url: store.url,
    schema: store.schema,
    config: store.config,
    applicationName: `sparkq-${options.role}`,
    scripts: (query) => {
      scripts.rebuild();
      return query !== undefined && query.trim() !== '' ? scripts.search(query) : scripts.list();
    },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  // Timeouts and lost workers are swept by every team process in turn (one at a time, under an advisory lock).
  queue.startHousekeeping(options.sweepIntervalMs ?? 5_000, options.log);
  return new TeamHandle(workspaceDir, queue, scripts);
}

/**
 * The workspace handle of a team queue: each method of the contract checked at the boundary (the same checks and
 * messages as over IPC) and run on the TeamQueue. An enqueue carries an idempotency key (made here when the caller
 * gave none), so a call whose answer was lost with the connection is run again safely, as are reads.
 */
class TeamHandle extends ForwardingQueue implements QueueHandle {
  readonly isOwner = false;
  readonly owner = null;
  private watcher: ConfigWatcher | null = null;

  constructor(
    readonly workspaceDir: string,
    readonly queue: TeamQueue,
    private readonly scriptIndex: ScriptIndex,
  ) {
    super();
  }

  protected async forward(method: ApiMethod, params: unknown[]): Promise<unknown> {
    checkParams(method, params);
    const keyed = withIdempotencyKey(method, params);
    const args = keyed ?? params;
    try {
      return await invoke(this.queue, method, args);
    } catch (e) {
      // The pool opens a new connection for the next call; once is enough to ride out a dropped one.
      if (isSparkqError(e, 'unavailable') && (keyed !== null || SAFE_TO_REPEAT.has(method))) return invoke(this.queue, method, args);
      throw e;
    }
  }

  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.queue.onChange(listener);
  }

  onReconnect(cb: () => void): () => void {
    return this.queue.onReconnect(cb);
  }

  get ownerInfo(): OwnerInfo {
    return { pid: process.pid, generation: 0, role: `team database ${this.queue.where}`, since: new Date(0).toISOString() };
  }

  /** For long-lived processes: this machine's sparkq.yml reloaded when it changes (tools, script dirs, retries). */
  watchConfig(log: (line: string) => void): void {
    this.watcher ??= new ConfigWatcher(this.workspaceDir, log, (config) => {
      this.queue.setConfig(config);
      this.scriptIndex.setDirs(resolveScriptDirs(config, this.workspaceDir));
    });
    this.watcher.watch();
  }

  async close(): Promise<void> {
    this.watcher?.stop();
    await this.queue.close();
  }
}
