import * as fs from 'node:fs';
import * as path from 'node:path';
import type { JsonValue, TaskStatus } from '../core/model';
import { LIMITS, TASK_STATUSES } from '../core/constants';
import { wellFormedProblem } from '../core/wellFormed';
import { CliError } from './errors';
import type { CliIo } from './io';

/*
 * Option values are checked here, before the command touches the queue, so a bad value changes nothing. A bad value
 * is a plain error (exit 1, one line that says what to pass instead); commander keeps usage errors (exit 2) for
 * unknown or missing options and arguments.
 */

/** An integer option within [min, max]; `what` is the option as typed, e.g. `--priority`. */
export function intOption(what: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new CliError(`${what} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** A number of days ≥ 0, fractions allowed (`--older-than 0.5`). */
export function daysOption(what: string): (value: string) => number {
  return (value) => {
    const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isFinite(n) || n < 0) throw new CliError(`${what} must be a number of days ≥ 0 (e.g. 30 or 0.5), not ${JSON.stringify(value)}`);
    return n;
  };
}

/** `--status queued,failed` → ['queued', 'failed']. */
export function statusOption(value: string): TaskStatus[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = parts.filter((s) => !(TASK_STATUSES as readonly string[]).includes(s));
  if (parts.length === 0 || bad.length > 0) {
    throw new CliError(`--status must be one of ${TASK_STATUSES.join(', ')} (or several, comma-separated), not ${JSON.stringify(value)}`);
  }
  return parts as TaskStatus[];
}

/** A JSON value given on the command line. */
export function parseJsonText(what: string, text: string): JsonValue {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new CliError(`${what} is not valid JSON (${why}); pass a JSON value, e.g. ${what} '{"file":"src/a.ts"}' or ${what} '"plain text"'`);
  }
  return checkedJson(what, value);
}

/**
 * `value` if its text is well-formed Unicode and it nests at most LIMITS.jsonDepth levels; otherwise a CliError naming
 * the option. JSON.parse reads any depth, but everything after it (the schemas, JSON.stringify of the request frame)
 * recurses, so this runs first.
 */
export function checkedJson(what: string, value: JsonValue): JsonValue {
  const problem = wellFormedProblem(value, what, LIMITS.jsonDepth);
  if (problem !== null) throw new CliError(problem);
  return value;
}

/** A file's text, `-` meaning standard input. */
export function readTextArg(io: CliIo, what: string, file: string): string {
  if (file === '-') return io.readStdin();
  const full = path.resolve(io.cwd, file);
  try {
    return fs.readFileSync(full, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : e instanceof Error ? e.message : String(e);
    throw new CliError(`cannot read ${what} ${full}: ${why}; pass a readable file (or - for standard input)`);
  }
}
