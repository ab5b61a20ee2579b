import { API_METHODS, type ApiMethod, type OwnerInfo, type QueueMethods } from '../api/contract';
import type { QueueService } from '../core/queue/service';
import type { ScriptIndex } from '../core/scriptIndex';
import type { Housekeeping } from './housekeeping';
import type { WorkerPlaces } from './workerPlaces';

/** A contract method as a part of the owner may implement it: synchronously or not. */
type Served = { [M in ApiMethod]: (...args: Parameters<QueueMethods[M]>) => Awaited<ReturnType<QueueMethods[M]>> | ReturnType<QueueMethods[M]> };

/** The methods the owner answers itself, from its parts; the QueueService answers every other one. */
type OwnMethods = 'status' | 'sweep' | 'scripts' | 'joinQueue' | 'leaveQueue';

export interface OwnerParts {
  info: OwnerInfo;
  service: QueueService;
  housekeeping: Housekeeping;
  places: WorkerPlaces;
  scriptIndex: ScriptIndex;
}

/**
 * The queue API as the owner serves it: each method of the contract, by name, to the part that holds it. Built once
 * per owner. That the service serves every other method, with the contract's signature, is checked by the compiler
 * (`served` below) and by test/unit/api/contract.test.ts at run time.
 */
export function ownerDispatch(parts: OwnerParts): (method: ApiMethod, params: readonly unknown[]) => Promise<unknown> {
  const { service } = parts;
  const own: Pick<Served, OwnMethods> = {
    status: () => {
      const queues = service.listQueues({ includeEnded: false });
      const names = new Map(queues.map((q) => [q.id, q.name]));
      return {
        owner: { ...parts.info },
        project: service.getConfig().project,
        counts: service.counts(),
        queues,
        workers: parts.places.list(Date.now(), (id) => names.get(id) ?? id),
      };
    },
    sweep: () => parts.housekeeping.sweep(),
    scripts: (query) => {
      // Incremental (stat-based): edits, new and removed scripts show up on the next call without a watcher.
      parts.scriptIndex.rebuild();
      return query !== undefined && query.trim() !== '' ? parts.scriptIndex.search(query) : parts.scriptIndex.list();
    },
    joinQueue: (input) => parts.places.join(service.getQueue(input.queue), input, Date.now()),
    leaveQueue: (input) => parts.places.leave(service.getQueue(input.queue), input),
  };
  const served: Omit<Served, OwnMethods> = service;
  const table = new Map<ApiMethod, (...params: unknown[]) => unknown>();
  for (const m of API_METHODS) {
    const fn = (m in own ? own[m as OwnMethods] : served[m as Exclude<ApiMethod, OwnMethods>]) as (...params: unknown[]) => unknown;
    table.set(m, fn.bind(m in own ? own : service));
  }
  return (method, params) => {
    // Called synchronously, so that a mutation's transaction and journal append run in this turn, in request order;
    // a synchronous throw is a rejection like any other failure.
    try {
      return Promise.resolve(table.get(method)!(...params));
    } catch (e) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passed on as thrown
      return Promise.reject(e);
    }
  };
}
