import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isSeq } from 'yaml';
import { z } from 'zod';
import { SparkqError } from './errors';
import { isRecord } from './guards';
import { LIMITS, type TaskPattern, type ValidateSpec } from './model';
import { describe, expected, offsetOf, SourceError, type SourceIssue, unknownKeyMessage, valueOffset, YamlSource } from './yamlSource';

/**
 * Prompt patterns: Markdown prompt templates in the patterns folder (sparkq.yml `patterns:`, default sparkq/patterns),
 * one file NAME.md each, used from plans (`pattern: NAME, with: { var: value }`) and `sparkq enqueue --pattern`.
 *
 *     ---
 *     name: api-endpoint
 *     description: Add a REST endpoint with its tests
 *     tool: llm-codex
 *     variables:
 *       resource: { description: the resource, plural (users) }
 *       verb: { description: the HTTP method, default: GET }
 *     ---
 *     Add `{{verb}} /{{resource}}` ...
 *
 * The front matter is YAML checked strictly, like sparkq.yml and plans, so that every issue has its line. The body is
 * the template (blank lines before and after it are dropped), and the template language is deliberately tiny: `{{name}}` (spaces inside the braces allowed) is
 * replaced by the variable's value, verbatim and never scanned again; `{{{{` writes a literal `{{`; any other `{{` is
 * an error. There is no logic, no loops, no filters. Every placeholder must name a declared variable.
 */

export const PATTERN_LIMITS = {
  /** A pattern file holds a prompt and its front matter: at most the prompt limit plus room for the front matter. */
  maxFileBytes: LIMITS.prompt + 64 * 1024,
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export interface PatternVariable {
  description: string;
  /** The value used when none is given; null: the variable must be given. */
  default: string | null;
}

export interface Pattern {
  name: string;
  /** The file it was read from (absolute). */
  file: string;
  /** SHA-256 of the file's bytes, hex: what a task made from it records. */
  hash: string;
  description: string;
  /** The tool its tasks run with unless they say otherwise; null: they must say. */
  tool: string | null;
  /** In the order the front matter declares them. */
  variables: Record<string, PatternVariable>;
  /** The validator of tasks made from this pattern (when their plan or enqueue names none); null when absent. */
  validate: ValidateSpec | null;
  /** The template: the text after the front matter. */
  body: string;
  /** 1-based line of the file on which the body starts. */
  bodyLine: number;
  /** The body split into literal text and placeholders, with the line of each placeholder. */
  segments: readonly TemplateSegment[];
}

export type TemplateSegment = { text: string } | { variable: string; line: number };

/** The record a task keeps of the pattern it came from. */
export function taskPatternOf(p: Pattern): TaskPattern {
  return { name: p.name, hash: p.hash };
}

export class PatternError extends SourceError {
  constructor(file: string, issues: SourceIssue[]) {
    super('invalid-input', file, issues);
    this.name = 'PatternError';
  }
}

// ---- the front matter ------------------------------------------------------------------------------------------

const scalarValue = z.union([z.string(), z.number(), z.boolean()], expected('a string, a number or a boolean'));

const VariableSchema = z
  .object(
    {
      description: z.string(expected('a string: what the variable is for')),
      default: scalarValue.optional(),
    },
    expected('a mapping with description (and optionally default), e.g. { description: the resource name, default: users }'),
  )
  .strict();

const FrontMatterSchema = z
  .object(
    {
      name: z.string(expected('the pattern name (its file name without .md)')),
      description: z.string(expected('a string: what the pattern is for')).max(LIMITS.description, expected(`a string of at most ${LIMITS.description} characters`)),
      tool: z.string(expected('a tool name from sparkq.yml')).min(1, expected('a tool name from sparkq.yml')).optional(),
      variables: z
        .record(
          z.string().regex(VARIABLE, 'a variable name starts with a letter or "_" and holds only letters, digits, "_" and "-"'),
          VariableSchema,
          expected('a mapping of variable name → { description, default }'),
        )
        .nullable()
        .optional(),
      // The validator of tasks made from this pattern (when their plan or enqueue names none).
      validate: z
        .object(
          {
            tool: z.string(expected('a tool name from sparkq.yml')).min(1, expected('a tool name from sparkq.yml')),
            prompt: z.string(expected('a string')).max(LIMITS.prompt, expected(`a string of at most ${LIMITS.prompt} characters`)).optional(),
            queue: z.string(expected('a queue name')).min(1, expected('a queue name')).max(LIMITS.name, expected(`a queue name of at most ${LIMITS.name} characters`)).optional(),
            maxRounds: z.number(expected('a whole number from 1 to 10')).int(expected('a whole number from 1 to 10')).min(1, expected('a whole number from 1 to 10')).max(10, expected('a whole number from 1 to 10')).optional(),
          },
          expected('a mapping (the validator of tasks made from this pattern)'),
        )
        .strict()
        .optional(),
    },
    expected('a mapping of name, description, tool, variables'),
  )
  .strict();

function validateSpecOf(v: { tool: string; prompt?: string | undefined; queue?: string | undefined; maxRounds?: number | undefined }): ValidateSpec {
  return {
    tool: v.tool,
    ...(v.prompt !== undefined ? { prompt: v.prompt } : {}),
    ...(v.queue !== undefined ? { queue: v.queue } : {}),
    ...(v.maxRounds !== undefined ? { maxRounds: v.maxRounds } : {}),
  };
}

function valueText(v: string | number | boolean): string {
  return typeof v === 'string' ? v : String(v);
}

/**
 * Parses a pattern file's text. `file` is its path (named in errors; its base name must equal `name`). Throws a
 * PatternError with every issue, each at its line and column in the file.
 */
export function parsePattern(text: string, file: string): Pattern {
  const hash = createHash('sha256').update(text, 'utf8').digest('hex');
  return parsePatternText(text, file, hash);
}

function parsePatternText(text: string, file: string, hash: string): Pattern {
  const fileName = path.basename(file, '.md');
  const issue = (line: number | null, column: number | null, message: string, p = ''): SourceIssue => ({ path: p, line, column, message });
  const lines = text.split('\n');
  const firstLine = (lines[0] ?? '').replace(/^\uFEFF/, '').replace(/\r$/, '');
  if (firstLine !== '---') {
    throw new PatternError(file, [issue(1, 1, 'expected front matter: the file must start with a line "---", then name, description, tool and variables in YAML, then a line "---" and the prompt')]);
  }
  const close = lines.findIndex((l, i) => i > 0 && l.replace(/\r$/, '') === '---');
  if (close < 0) throw new PatternError(file, [issue(1, 1, 'the front matter is not closed: add a line "---" after it, before the prompt')]);

  // The YAML text keeps the opening "---" (a document start), so that its lines and columns are the file's.
  const src = new YamlSource(lines.slice(0, close).join('\n'));
  const { doc, push, issues } = src;
  const fail = () => new PatternError(file, src.sortedIssues());
  src.checkYamlErrors();
  if (issues.length) throw fail();
  const root = doc.contents;
  if (!isMap(root)) {
    push([], offsetOf(root) ?? 0, `expected a mapping of name, description, tool and variables in the front matter, got ${root === null ? 'nothing' : isSeq(root) ? 'a list' : 'a single value'}`);
    throw fail();
  }
  src.checkPlainKeys(root);
  if (issues.length) throw fail();
  const raw = src.load();
  if (raw === undefined) throw fail();
  const result = FrontMatterSchema.safeParse(raw);
  if (!result.success) src.reportSchemaIssues(FrontMatterSchema, result.error.issues, unknownKeyMessage);
  const rawName = isRecord(raw) ? raw['name'] : undefined;
  if (typeof rawName === 'string' && rawName !== fileName) {
    push(['name'], valueOffset(doc, ['name']), `the name ${describe(rawName)} differs from the file name ${JSON.stringify(`${fileName}.md`)}: they must be the same`);
  }
  if (!NAME.test(fileName) || fileName.length > LIMITS.name) {
    push('', undefined, `the file name ${JSON.stringify(path.basename(file))} is not a pattern name: it must start with a letter or digit, hold only letters, digits, ".", "_" and "-", and be at most ${LIMITS.name} characters before .md`);
  }

  // The prompt starts at its first line with text and ends at its last: blank lines around it are layout.
  let start = close + 1;
  while (start < lines.length && lines[start]!.trim() === '') start++;
  const bodyLine = start + 1;
  const body = lines.slice(start).join('\n').trimEnd();
  const declared = result.success ? Object.keys(result.data.variables ?? {}) : isRecord(raw) && isRecord(raw['variables']) ? Object.keys(raw['variables']) : [];
  const { segments, problems } = compileTemplate(body, bodyLine, new Set(declared));
  const sourceIssues = [...src.sortedIssues(), ...problems.map((p) => issue(p.line, p.column, p.message))];
  if (sourceIssues.length || !result.success) throw new PatternError(file, sourceIssues);

  const fm = result.data;
  const variables: Record<string, PatternVariable> = {};
  for (const [k, v] of Object.entries(fm.variables ?? {})) variables[k] = { description: v.description, default: v.default === undefined ? null : valueText(v.default) };
  return {
    name: fm.name,
    file,
    hash,
    description: fm.description,
    tool: fm.tool ?? null,
    variables,
    validate: fm.validate === undefined ? null : validateSpecOf(fm.validate),
    body,
    bodyLine,
    segments,
  };
}

// ---- the template ----------------------------------------------------------------------------------------------

const PLACEHOLDER = /\{\{[ \t]*([^{}\s]*)[ \t]*\}\}/y;

/** Splits a body into text and placeholders; problems: malformed placeholders and undeclared variables, with lines. */
export function compileTemplate(
  body: string,
  firstLine: number,
  declared: ReadonlySet<string>,
): { segments: TemplateSegment[]; problems: { line: number; column: number; message: string }[] } {
  const segments: TemplateSegment[] = [];
  const problems: { line: number; column: number; message: string }[] = [];
  let text = '';
  let line = firstLine;
  let lineStart = 0;
  const flush = () => {
    if (text) segments.push({ text });
    text = '';
  };
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c === '\n') {
      text += c;
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c !== '{' || body[i + 1] !== '{') {
      text += c;
      i++;
      continue;
    }
    if (body.startsWith('{{{{', i)) {
      text += '{{';
      i += 4;
      continue;
    }
    const column = i - lineStart + 1;
    PLACEHOLDER.lastIndex = i;
    const m = PLACEHOLDER.exec(body);
    if (!m) {
      const shown = body.slice(i, body.indexOf('\n', i) < 0 ? undefined : body.indexOf('\n', i)).slice(0, 30);
      problems.push({ line, column, message: `malformed placeholder ${JSON.stringify(shown)}: a placeholder is {{name}} on one line; write {{{{ for a literal {{` });
      text += '{{';
      i += 2;
      continue;
    }
    const name = m[1]!;
    if (!VARIABLE.test(name)) {
      problems.push({ line, column, message: `placeholder {{${name}}} does not name a variable: a variable name starts with a letter or "_" and holds only letters, digits, "_" and "-"` });
    } else if (!declared.has(name)) {
      const known = [...declared];
      problems.push({ line, column, message: `placeholder {{${name}}} names the variable ${JSON.stringify(name)}, which the front matter does not declare; declare it under variables${known.length ? ` (declared: ${known.join(', ')})` : ''}` });
    } else {
      flush();
      segments.push({ variable: name, line });
    }
    i += m[0].length;
  }
  flush();
  return { segments, problems };
}

/** A problem with the values given to a pattern: a variable it does not declare, or one it needs that was not given. */
export interface VariableProblem {
  variable: string;
  kind: 'unknown' | 'missing';
  message: string;
}

/** Every problem with `values` for `p`, in a stable order (unknown ones as given, then missing ones as declared). */
export function variableProblems(p: Pattern, values: Readonly<Record<string, string>>): VariableProblem[] {
  const out: VariableProblem[] = [];
  const declared = Object.keys(p.variables);
  for (const k of Object.keys(values)) {
    if (p.variables[k] !== undefined) continue;
    const list = declared.length ? `it declares: ${declared.join(', ')}` : 'it declares no variables';
    out.push({ variable: k, kind: 'unknown', message: `pattern ${p.name} has no variable ${JSON.stringify(k)}; ${list}` });
  }
  for (const [k, v] of Object.entries(p.variables)) {
    if (values[k] !== undefined || v.default !== null) continue;
    const used = p.segments.find((s): s is { variable: string; line: number } => 'variable' in s && s.variable === k);
    const where = used ? ` (used at ${p.file}:${used.line})` : '';
    out.push({ variable: k, kind: 'missing', message: `pattern ${p.name} needs the variable ${JSON.stringify(k)} (${v.description}), which has no default${where}; give it a value` });
  }
  return out;
}

/** The prompt `p` makes with `values` (defaults fill the rest). Throws invalid-input naming every bad variable. */
export function renderPattern(p: Pattern, values: Readonly<Record<string, string>>): string {
  const problems = variableProblems(p, values);
  if (problems.length) throw new SparkqError('invalid-input', problems.map((x) => x.message).join('\n'), { pattern: p.name, problems });
  return fillTemplate(p, values);
}

/** The template filled in; the values must have passed variableProblems. */
export function fillTemplate(p: Pattern, values: Readonly<Record<string, string>>): string {
  let out = '';
  for (const s of p.segments) out += 'text' in s ? s.text : (values[s.variable] ?? p.variables[s.variable]?.default ?? '');
  return out;
}

/** A pattern's prompt with the task's own prompt after it (the task's specifics), a blank line between. */
export function joinPrompts(rendered: string, own: string | undefined): string {
  if (own === undefined || own === '') return rendered;
  return rendered === '' ? own : `${rendered}\n\n${own}`;
}

/** A `with:` / `--var` value as text: strings as they are, numbers and booleans written out. */
export function variableText(v: unknown): string | null {
  return typeof v === 'string' ? v : (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean' ? String(v) : null;
}

// ---- the folder ------------------------------------------------------------------------------------------------

/** Finds patterns by name (for the plan parser and the CLI), reading each file once. */
export interface PatternLoader {
  /** The folder they are read from. */
  readonly dir: string;
  /** Names of the pattern files in the folder (NAME.md), sorted. */
  names(): string[];
  /** The pattern, or null when there is no such file; throws a PatternError when its file is invalid. */
  load(name: string): Pattern | null;
}

/** A loader reading `dir` (absolute). */
export function patternLoader(dir: string): PatternLoader {
  const cache = new Map<string, Pattern | null>();
  let names: string[] | null = null;
  return {
    dir,
    names() {
      if (names === null) {
        try {
          names = fs
            .readdirSync(dir, { withFileTypes: true })
            .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith('.md'))
            .map((e) => e.name.slice(0, -3))
            .sort();
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          names = [];
        }
      }
      return names;
    },
    load(name) {
      if (!NAME.test(name) || name.length > LIMITS.name) return null; // never a path: no "/" and no leading "."
      if (cache.has(name)) return cache.get(name)!;
      const p = readPatternFile(path.join(dir, `${name}.md`));
      cache.set(name, p);
      return p;
    },
  };
}

/** Reads and parses one pattern file; null when it does not exist. */
export function readPatternFile(file: string): Pattern | null {
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new PatternError(file, [{ path: '', line: null, column: null, message: 'expected a pattern file, found a directory or something else' }]);
    if (st.size > PATTERN_LIMITS.maxFileBytes) throw new PatternError(file, [{ path: '', line: null, column: null, message: `the file is ${st.size} bytes; a pattern file is at most ${PATTERN_LIMITS.maxFileBytes} bytes` }]);
    bytes = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof PatternError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PatternError(file, [{ path: '', line: null, column: null, message: `cannot read the file: ${e instanceof Error ? e.message : String(e)}` }]);
  }
  // The hash is of the bytes as stored, so that it changes exactly when the file does.
  return parsePatternText(bytes.toString('utf8'), file, createHash('sha256').update(bytes).digest('hex'));
}

/** Every pattern of the folder that parses, and the errors of those that do not. */
export function listPatterns(loader: PatternLoader): { patterns: Pattern[]; errors: PatternError[] } {
  const patterns: Pattern[] = [];
  const errors: PatternError[] = [];
  for (const n of loader.names()) {
    try {
      const p = loader.load(n);
      if (p) patterns.push(p);
    } catch (e) {
      if (e instanceof PatternError) errors.push(e);
      else throw e;
    }
  }
  return { patterns, errors };
}

/** A pattern that is not in the folder, with the names that are (and the near ones first). */
export function unknownPattern(name: string, loader: PatternLoader): SparkqError {
  const names = loader.names();
  const list = names.length ? `the patterns in ${loader.dir} are: ${names.join(', ')}` : `${loader.dir} holds no patterns (NAME.md files)`;
  return new SparkqError('not-found', `unknown pattern ${JSON.stringify(name)}; ${list}`);
}
