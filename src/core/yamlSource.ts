import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { type ErrorCode, SparkqError } from './errors';

/**
 * The YAML files SparkQ validates (sparkq.yml and plan files), read together with where each thing was written, so
 * that every issue names its line and column. Both are parsed with the YAML 1.2 core schema and validated strictly
 * against a zod schema; the checks and messages they share live here so that the two files report alike.
 */

export type Seg = string | number;

export interface SourceIssue {
  /** Dotted path of the offending key, e.g. "tools.run-bash.taskClass"; "" for the file as a whole. */
  path: string;
  /** 1-based; null when the issue has no place in the text (e.g. the file is missing). */
  line: number | null;
  column: number | null;
  message: string;
}

export function formatSourceIssue(file: string, i: SourceIssue): string {
  const where = i.line === null ? file : `${file}:${i.line}:${i.column ?? 1}`;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

/** A file that did not pass its checks: every issue found, one `file:line:column: path: message` line each. */
export class SourceError extends SparkqError {
  constructor(
    code: ErrorCode,
    readonly file: string,
    readonly issues: SourceIssue[],
  ) {
    super(code, issues.map((i) => formatSourceIssue(file, i)).join('\n'), { file, issues });
  }
}

// ---- messages --------------------------------------------------------------------------------------------------

export function describe(v: unknown): string {
  if (v === null) return 'an empty value (null)';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (v instanceof Date) return 'a timestamp';
  if (v instanceof Set) return 'a set';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

/** zod error option that says what was expected and what was found instead. */
export function expected(what: string) {
  return {
    error: (iss: { input?: unknown }) => (iss.input === undefined ? `missing; expected ${what}` : `expected ${what}, got ${describe(iss.input)}`),
  };
}

export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

export function unknownKeyMessage(key: string, allowed: string[]): string {
  if (key === '<<') return 'unknown key "<<": YAML merge keys are not supported in sparkq.yml; write the settings out';
  const near = allowed
    .map((k) => ({ k, d: editDistance(key.toLowerCase(), k.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(x.k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  const hint = near ? ` (did you mean "${near.k}"?)` : '';
  return `unknown key ${JSON.stringify(key)}${hint}; expected one of: ${allowed.join(', ')}`;
}

/**
 * The keys the mapping at path `p` of `schema` accepts, for "did you mean" hints on unknown keys; [] where the
 * schema has no mapping of known keys there. Read from the schema itself, so that a key added to it is offered too.
 */
export function keysAt(schema: z.ZodType, p: readonly PropertyKey[]): string[] {
  let s: z.ZodType | undefined = schema;
  for (const seg of p) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = typeof seg === 'string' ? (s.shape as Record<string, z.ZodType>)[seg] : undefined;
    else if (s instanceof z.ZodArray) s = typeof seg === 'number' ? (s.element as z.ZodType) : undefined;
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else s = undefined;
    if (s === undefined) return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function unwrap(s: z.ZodType): z.ZodType {
  while (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
  return s;
}

// ---- locating things in the YAML text -------------------------------------------------------------------------

export function pathString(p: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z0-9_-]+$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

export function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

export interface Located {
  node: Node | null;
  keyNode: Node | null;
  /** How many path segments were found; less than the path's length means the deepest existing parent. */
  depth: number;
}

export function locate(doc: Document, p: readonly PropertyKey[]): Located {
  let node: unknown = doc.contents;
  let keyNode: Node | null = null;
  let depth = 0;
  for (const seg of p) {
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    let nextKey: Node | null = null;
    if (isMap(node)) {
      const pair = node.items.find((it) => keyText(it.key) === String(seg));
      if (pair) {
        next = pair.value;
        nextKey = (pair.key as Node | null) ?? null;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (next === undefined && nextKey === null) break;
    node = next;
    keyNode = nextKey;
    depth++;
  }
  return { node: (node as Node | null) ?? null, keyNode, depth };
}

export function offsetOf(n: Node | null | undefined): number | undefined {
  return n?.range?.[0];
}

/**
 * Where to point for an issue with the value at `p`: the value; its key when the value has no text of its own
 * (`x:`); the mapping that lacks it when the key is missing.
 */
export function valueOffset(doc: Document, p: readonly PropertyKey[]): number {
  const l = locate(doc, p);
  const empty = !l.node || (isScalar(l.node) && l.node.value === null && !l.node.source);
  return (empty ? undefined : offsetOf(l.node)) ?? offsetOf(l.keyNode) ?? offsetOf(l.node) ?? 0;
}

/** Where to point for an issue with the key at `p` itself: the key, or where valueOffset points when it has none. */
export function keyOffset(doc: Document, p: readonly PropertyKey[]): number {
  return offsetOf(locate(doc, p).keyNode) ?? valueOffset(doc, p);
}

export function walkScalars(doc: Document, node: unknown, p: Seg[], visit: (p: Seg[], n: Node) => void, seen = new Set<unknown>()): void {
  if (isAlias(node)) node = node.resolve(doc);
  if (!node || seen.has(node)) return; // aliases may make cycles
  seen.add(node);
  if (isMap(node)) {
    for (const it of node.items) {
      const k = keyText(it.key);
      if (k !== undefined) walkScalars(doc, it.value, [...p, k], visit, seen);
    }
  } else if (isSeq(node)) {
    node.items.forEach((it, i) => walkScalars(doc, it, [...p, i], visit, seen));
  } else if (isScalar(node)) visit(p, node);
}

const INT_SOURCE = /^[-+]?(?:0x[0-9a-fA-F]+|0o[0-7]+|[0-9]+)$/;

/**
 * The source text of a whole number written as a float (1.0, 3e2), or undefined for anything else. Such a scalar
 * loads as the same JS number as an integer would, so only its text shows that an integer setting was given a float.
 */
export function floatSource(n: unknown): string | undefined {
  if (!isScalar(n) || typeof n.value !== 'number' || !Number.isInteger(n.value) || typeof n.source !== 'string') return undefined;
  return INT_SOURCE.test(n.source) ? undefined : n.source;
}

/**
 * The path of the deepest key whose pair spans `offset`: a best guess at where a syntax error sits. A pair's range
 * runs to the next key (it includes trailing comments and line breaks), so the pair that holds `offset` is the last
 * one that starts at or before it, never an earlier one that merely ends there: a duplicate key is named itself.
 */
export function pathAtOffset(doc: Document, offset: number): string {
  const p: Seg[] = [];
  const startOf = (n: unknown) => (n as Node | null)?.range?.[0] ?? Infinity;
  const endOf = (n: unknown) => (n as Node | null)?.range?.[2] ?? -Infinity;
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const i = lastStartingBy(node.items.map((it) => startOf(it.key)), offset);
      const pair = node.items[i];
      const k = pair ? keyText(pair.key) : undefined;
      if (!pair || k === undefined || offset > Math.max(endOf(pair.value), endOf(pair.key))) break;
      p.push(k);
      node = pair.value;
    } else if (isSeq(node)) {
      const i = lastStartingBy(node.items.map(startOf), offset);
      if (i < 0 || offset > endOf(node.items[i])) break;
      p.push(i);
      node = node.items[i];
    } else break;
  }
  return pathString(p);
}

/** The index of the last start at or before `offset` (starts are in file order); -1 if none is. */
function lastStartingBy(starts: readonly number[], offset: number): number {
  let i = starts.length - 1;
  while (i >= 0 && starts[i]! > offset) i--;
  return i;
}

// ---- one file being checked ------------------------------------------------------------------------------------

/**
 * A YAML file being validated: its parsed document and the issues found so far, each placed at its line and column.
 * Callers run the checks in order and stop at the first stage that found anything, so that a syntax error is not
 * buried under the schema errors it causes.
 */
export class YamlSource {
  readonly doc: Document.Parsed;
  readonly issues: SourceIssue[] = [];
  private readonly lineCounter = new LineCounter();

  constructor(text: string) {
    // logLevel 'error': nothing is printed; what yaml would warn about stays in doc.warnings for the caller.
    this.doc = parseDocument(text, { lineCounter: this.lineCounter, prettyErrors: false, version: '1.2', schema: 'core', uniqueKeys: true, logLevel: 'error' });
  }

  /** 1-based line and column of an offset into the text. */
  at(offset: number | undefined): { line: number | null; column: number | null } {
    if (offset === undefined) return { line: null, column: null };
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }

  readonly push = (p: readonly PropertyKey[] | string, offset: number | undefined, message: string): void => {
    this.issues.push({ path: typeof p === 'string' ? p : pathString(p), ...this.at(offset), message });
  };

  /** The issues in the order they appear in the file. */
  sortedIssues(): SourceIssue[] {
    return this.issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  }

  /** Reports what the YAML parser found (syntax errors, duplicate keys, a second document) with the path it sits at. */
  checkYamlErrors(): void {
    for (const e of this.doc.errors) {
      const message =
        e.code === 'DUPLICATE_KEY'
          ? 'duplicate key: each key may appear only once in a mapping'
          : e.code === 'MULTIPLE_DOCS'
            ? 'expected a single YAML document, found more than one (a second "---")'
            : `YAML syntax error: ${e.message}`;
      this.push(e.code === 'MULTIPLE_DOCS' ? '' : pathAtOffset(this.doc, e.pos[0]), e.pos[0], message);
    }
  }

  /** Reports every key that is a list or a mapping (toJS would stringify it into nonsense), with where it is. */
  checkPlainKeys(root: unknown): void {
    const walk = (node: unknown, p: Seg[], seen: Set<unknown>): void => {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (!node || seen.has(node)) return;
      seen.add(node);
      if (isMap(node)) {
        for (const it of node.items) {
          const k = keyText(it.key);
          if (k === undefined) this.push(p, offsetOf(it.key as Node | null) ?? offsetOf(node), 'expected a plain key, got a list or mapping used as a key');
          else walk(it.value, [...p, k], seen);
        }
      } else if (isSeq(node)) node.items.forEach((it, i) => walk(it, [...p, i], seen));
    };
    walk(root, [], new Set());
  }

  /** The document as plain data ({} for an empty one), or undefined with an issue when it cannot be loaded. */
  load(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: 100 }) ?? {};
    } catch (e) {
      // Only an alias bomb gets here: everything else was reported as a parse error.
      this.push([], 0, `cannot load the YAML: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }

  /**
   * Reports the schema's issues with `data` where they were written: an unknown key at the key, with the keys the
   * mapping accepts (`unknownKey` words the message); anything else at the value (see valueOffset).
   */
  reportSchemaIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[], unknownKey: (key: string, allowed: string[]) => string = unknownKeyMessage): void {
    for (const iss of issues) {
      const p = iss.path as Seg[];
      if (iss.code === 'unrecognized_keys') {
        for (const key of iss.keys) this.push([...p, key], keyOffset(this.doc, [...p, key]), unknownKey(key, keysAt(schema, p)));
      } else if (iss.code === 'invalid_key') {
        this.push(p, offsetOf(locate(this.doc, p).keyNode), iss.issues[0]?.message ?? iss.message);
      } else {
        this.push(p, valueOffset(this.doc, p), iss.message);
      }
    }
  }
}
