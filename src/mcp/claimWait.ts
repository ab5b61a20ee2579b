import type { QueueApi } from '../api/contract';
import type { Claim, ClaimInput } from '../core/model';

/** The longest a claim waits for work: long enough to save an agent many turns, short of hosts' tool-call timeouts. */
export const MAX_WAIT_SECONDS = 300;

/**
 * While waiting, the claim is tried again at least this often: a change event announces every enqueue, finish and
 * resume, but not what time alone does (a timed pause running out, a retry's delay passing) nor events missed while
 * the connection moved to another owner.
 */
const RECHECK_MS = 5_000;

/** The error of a task whose claim was answered after the MCP client had cancelled it. */
export const CANCELLED = 'the MCP client cancelled its claim before it got the answer; the task was never started';

/**
 * Claims the oldest claimable task of the queue, waiting up to `waitSeconds` for one: tried again as soon as the queue
 * reports a change, never in a tight loop. Null when none came in time, or once `signal` aborted (the client cancelled
 * the call); no claim is attempted after that, and one that was in flight is failed (see CANCELLED).
 */
export async function claimWaiting(q: Pick<QueueApi, 'claim' | 'fail' | 'onChange'>, input: ClaimInput, waitSeconds: number, signal: AbortSignal): Promise<Claim | null> {
  const deadline = Date.now() + waitSeconds * 1000;
  let changed: boolean;
  let wake: () => void = () => undefined;
  // Subscribed before the first claim: a task enqueued between an empty claim and the wait still wakes it.
  const unsubscribe = waitSeconds > 0 ? q.onChange(() => ((changed = true), wake())) : () => undefined;
  try {
    for (;;) {
      if (signal.aborted) return null;
      changed = false;
      const claim = await q.claim(input);
      if (claim !== null && signal.aborted) {
        // Cancelled while this claim was on its way: nobody will get its lease. Failing it says so at once (and lets
        // the retry policy run it again), where a silent claim would hold the task until its time budget ran out.
        await q.fail({ task: claim.task.id, lease: claim.lease, error: CANCELLED }).catch(() => undefined);
        return null;
      }
      if (claim !== null) return claim;
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return null;
      if (changed) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          wake = () => undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, RECHECK_MS));
        signal.addEventListener('abort', done, { once: true });
        wake = done;
      });
    }
  } finally {
    unsubscribe();
  }
}
