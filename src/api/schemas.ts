import { z } from 'zod';
import { LIMITS } from '../core/constants';

/*
 * The schemas of the API's own arguments: the options and references that have no input schema in the core's model.
 * Only the contract's checks load this module (see contract.ts).
 */

/** A session, queue or task named by its name or id. */
export const Ref = z.string().min(1, 'say which one (its name or id)').max(LIMITS.name + 64, 'no name or id is that long');

export const ListSessionsOptions = z.object({ includeEnded: z.boolean().optional() }).strict();

export const ListQueuesOptions = z
  .object({ session: Ref.optional(), includeEnded: z.boolean().optional() })
  .strict();

export const PurgeOptions = z
  .object({ olderThanDays: z.number().min(0, '--older-than must be a number of days ≥ 0') })
  .strict();

export const ScriptQuery = z.string().max(500, 'a script query is at most 500 characters');

const LEASE = 'leaseSeconds must be a number of seconds up to 3600';
const workerName = z.string().trim().min(1, 'say which worker (a name)').max(LIMITS.worker);

export const WorkerJoin = z
  .object({
    queue: Ref,
    worker: workerName,
    leaseSeconds: z.number().positive(LEASE).max(3600, LEASE),
  })
  .strict();

export const WorkerLeave = z.object({ queue: Ref, worker: workerName }).strict();
