import { errorMessage } from '../core/errors';
import type { TaskPattern, ValidateSpec } from '../core/model';
import { joinPrompts, type Pattern, PatternError, type PatternLoader, renderPattern, taskPatternOf, unknownPattern, variableProblems } from '../core/patterns';

/**
 * A task made from a prompt pattern, as `sparkq enqueue --pattern NAME --var k=v` makes it, for the dashboard's form
 * and the Enqueue Task command: the core renders the prompt (the pattern's, then the task's own text), the task
 * records the pattern and its file's hash, and the pattern's validator and tool apply unless the caller names others.
 * Without vscode, so that it is unit-tested in plain Node.
 */

export interface FromPattern {
  pattern: Pattern;
  prompt: string;
  record: TaskPattern;
  /** The pattern's validator, or undefined when it names none. */
  validate: ValidateSpec | undefined;
}

/** What is wrong, on the form field it belongs to: the pattern itself, or one variable's field (`var:NAME`). */
export interface PatternFieldProblem {
  field: 'pattern' | `var:${string}`;
  message: string;
}

/** A pattern file's first problem with its line: "line 3: …". */
export function patternProblem(e: PatternError): string {
  const first = e.issues[0];
  if (!first) return e.message;
  const more = e.issues.length > 1 ? ` (and ${e.issues.length - 1} more)` : '';
  return `${first.line !== null ? `line ${first.line}: ` : ''}${first.message}${more}`;
}

/**
 * The task `name` makes with `values` and the task's own prompt text. An empty value counts as not given (the
 * variable's default applies, or it is missing). `loader` null: the patterns folder is not read (no folder, or
 * Restricted Mode, where sparkq.yml is not read).
 */
export function taskFromPattern(
  loader: PatternLoader | null,
  name: string,
  values: Readonly<Record<string, string>>,
  own: string | undefined,
): { made: FromPattern; problems?: undefined } | { made?: undefined; problems: PatternFieldProblem[] } {
  if (loader === null) return { problems: [{ field: 'pattern', message: 'Patterns are read from the folder sparkq.yml names, which is not read here (no folder, or Restricted Mode).' }] };
  let found: Pattern | null;
  try {
    found = loader.load(name);
  } catch (e) {
    return { problems: [{ field: 'pattern', message: e instanceof PatternError ? `Pattern ${name} is invalid: ${patternProblem(e)}` : errorMessage(e) }] };
  }
  if (found === null) return { problems: [{ field: 'pattern', message: unknownPattern(name, loader).message }] };
  const given = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ''));
  const problems = variableProblems(found, given).map(
    (p): PatternFieldProblem =>
      p.kind === 'missing' ? { field: `var:${p.variable}`, message: `Give ${p.variable} a value: ${found.variables[p.variable]?.description ?? 'it has no default'}.` } : { field: 'pattern', message: p.message },
  );
  if (problems.length > 0) return { problems };
  const text = own !== undefined && own.trim() !== '' ? own : undefined;
  return {
    made: {
      pattern: found,
      prompt: joinPrompts(renderPattern(found, given), text),
      record: taskPatternOf(found),
      validate: found.validate === null ? undefined : { ...found.validate },
    },
  };
}
