/**
 * Every error the core raises on purpose is a SparkqError with a stable code, so that the CLI can map it to an exit
 * code and the extension to a message, and so that tests can assert on the kind of failure rather than its wording.
 * Messages say what is wrong and, where there is one, how to fix it.
 */
export type ErrorCode =
  | 'invalid-input' // the caller passed something malformed; nothing changed
  | 'not-found' // a named session, queue, task or tool does not exist
  | 'conflict' // the operation does not fit the current state (e.g. completing a queued task)
  | 'lease-mismatch' // a worker presented a lease that is not the task's current attempt
  | 'config' // sparkq.yml is invalid
  | 'corrupt' // a store file failed its checks; nothing was overwritten
  | 'store-failed' // the store can no longer guarantee durability (an fsync failed); reopen it
  | 'internal' // an unexpected failure inside the queue owner, reported to a client over IPC
  | 'unavailable' // the queue owner cannot be reached, refused the connection, or went away mid-call
  | 'closed'; // the store was closed

export class SparkqError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'SparkqError';
  }
}

export function isSparkqError(e: unknown, code?: ErrorCode): e is SparkqError {
  return e instanceof SparkqError && (code === undefined || e.code === code);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
