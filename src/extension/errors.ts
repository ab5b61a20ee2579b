import { isSparkqError } from '../core/errors';
import { ConfigError } from '../core/config';

/** A failure whose message is meant for the person: what is wrong and what to do. Shown as is, never as a stack. */
export class UserFacingError extends Error {
  constructor(
    message: string,
    /** Buttons offered with the message: a label and the command it runs. */
    readonly actions: { title: string; command: string; args?: unknown }[] = [],
  ) {
    super(message);
    this.name = 'UserFacingError';
  }
}

/** Cancelled from a QuickPick or InputBox: the command ends quietly. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

/** The one-line message a person sees for any failure, with advice for the kinds SparkQ knows. */
export function describeError(e: unknown): { message: string; actions: UserFacingError['actions'] } {
  if (e instanceof UserFacingError) return { message: e.message, actions: e.actions };
  if (e instanceof ConfigError) {
    return {
      message: `sparkq.yml is invalid: ${e.issues[0]?.message ?? e.message}. Fix it (see Problems), then save.`,
      actions: [{ title: 'Open sparkq.yml', command: 'sparkq.openConfig' }],
    };
  }
  if (isSparkqError(e, 'unavailable')) {
    return { message: `SparkQ cannot reach the queue: ${e.message}`, actions: [{ title: 'Show Log', command: 'sparkq.showLog' }] };
  }
  if (isSparkqError(e)) return { message: e.message, actions: [] };
  const text = e instanceof Error ? e.message : String(e);
  return { message: `SparkQ failed unexpectedly: ${text}. See the SparkQ log for details.`, actions: [{ title: 'Show Log', command: 'sparkq.showLog' }] };
}
