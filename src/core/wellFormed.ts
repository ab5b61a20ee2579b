/*
 * The checks every value from outside passes before anything recursive touches it (zod's lazy JsonValue schema,
 * JSON.stringify, the store): its text is well-formed Unicode, and it nests no deeper than a fixed limit.
 *
 * Lone UTF-16 surrogates ("a\ud800b" in a JSON frame) cannot be stored as UTF-8: SQLite and Buffer turn them into
 * U+FFFD, so what was acknowledged would differ from what is read back, and two different names would become one.
 * Deep nesting overflows the stack of every recursive reader (3,000 levels were enough), and is refused by depth
 * rather than by whichever reader happens to fail first. One iterative walk does both, so that the walk itself
 * can be neither overflowed nor made to allocate per level beyond its own three small stacks.
 */

/**
 * At most this many values (strings, numbers, containers …) are looked at in one call. Anything from a frame has far
 * fewer (a frame is at most 8 MiB, and each value costs at least a byte or two); the bound is for in-process
 * callers, whose objects may share children and so describe exponentially many values in little memory.
 */
const MAX_VALUES = 8 * 1024 * 1024;

/** Longest key quoted in a message, and longest path: a message must stay one short line. */
const KEY_QUOTE_CHARS = 40;
const PATH_CHARS = 200;

type StringWithCheck = string & { isWellFormed?: () => boolean };
const NATIVE_CHECK = typeof (String.prototype as StringWithCheck).isWellFormed === 'function';
/** In a `u` regex a surrogate pair is one code point, so this matches only a surrogate that is not in a pair. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** True when `s` holds no lone UTF-16 surrogate. */
export function isWellFormedText(s: string): boolean {
  return NATIVE_CHECK ? (s as StringWithCheck).isWellFormed!() : !LONE_SURROGATE.test(s);
}

/**
 * Null when `value` is fine; otherwise one line naming where it is wrong (`path` and the way down from it) and how
 * to fix it. Wrong means: a string or object key that is not well-formed Unicode, or arrays and objects nested more
 * than `maxDepth` levels deep. Depth counts from `value`: `[]` and `{}` are level 1, `[[1]]` is level 2; a string or
 * number is level 0. Types are not checked here: that is the schema's job, which may run safely once this passed.
 */
export function wellFormedProblem(value: unknown, path: string, maxDepth: number): string | null {
  if (typeof value === 'string') return isWellFormedText(value) ? null : textProblem(path, value, 'text');
  if (typeof value !== 'object' || value === null) return null;
  if (maxDepth < 1) return depthProblem(path, maxDepth);
  // The way down, as three parallel stacks: the container, its keys (null for an array), the next index to visit.
  const nodes: object[] = [value];
  const keyLists: (string[] | null)[] = [Array.isArray(value) ? null : Object.keys(value)];
  const next: number[] = [0];
  let seen = 1;
  while (nodes.length > 0) {
    const top = nodes.length - 1;
    const node = nodes[top]!;
    const keys = keyLists[top]!;
    const i = next[top]!;
    let child: unknown;
    if (keys === null) {
      const items = node as unknown[];
      if (i >= items.length) {
        nodes.pop();
        keyLists.pop();
        next.pop();
        continue;
      }
      child = items[i];
    } else {
      if (i >= keys.length) {
        nodes.pop();
        keyLists.pop();
        next.pop();
        continue;
      }
      const key = keys[i]!;
      next[top] = i + 1;
      if (!isWellFormedText(key)) return textProblem(pathOf(path, keyLists, next), key, 'a key');
      child = (node as Record<string, unknown>)[key];
    }
    next[top] = i + 1;
    if (++seen > MAX_VALUES) return `${clip(path)} holds more than ${MAX_VALUES} values; send less at a time`;
    if (typeof child === 'string') {
      if (!isWellFormedText(child)) return textProblem(pathOf(path, keyLists, next), child, 'text');
    } else if (typeof child === 'object' && child !== null) {
      if (nodes.length >= maxDepth) return depthProblem(pathOf(path, keyLists, next), maxDepth, path);
      nodes.push(child);
      keyLists.push(Array.isArray(child) ? null : Object.keys(child));
      next.push(0);
    }
  }
  return null;
}

/**
 * The path of the member being visited at the top of the stack: `path` followed by `[i]` for array items and `.key`
 * (or `["key"]`) for object members. Built only when something is wrong, so the walk itself allocates no strings.
 */
function pathOf(path: string, keyLists: (string[] | null)[], next: number[]): string {
  let out = path;
  for (let level = 0; level < keyLists.length; level++) {
    const keys = keyLists[level]!;
    // next[] is one past the member being visited at every level.
    const i = next[level]! - 1;
    if (i < 0) break;
    if (keys === null) out += `[${i}]`;
    else {
      const key = keys[i]!;
      out += /^[A-Za-z_$][\w$]*$/.test(key) ? (out === '' ? key : `.${key}`) : `[${JSON.stringify(key.length > KEY_QUOTE_CHARS ? `${key.slice(0, KEY_QUOTE_CHARS)}…` : key)}]`;
    }
    if (out.length > PATH_CHARS * 4) break;
  }
  return clip(out);
}

/** `path`, or its start and end around an ellipsis when too long, cut between steps (`[0]`, `.key`) where possible. */
function clip(path: string): string {
  if (path === '') return 'the value';
  if (path.length <= PATH_CHARS) return path;
  let head = path.slice(0, PATH_CHARS / 2);
  let tail = path.slice(-PATH_CHARS / 2);
  const headCut = Math.max(head.lastIndexOf('['), head.lastIndexOf('.'));
  if (headCut > 0) head = head.slice(0, headCut);
  const tailCut = tail.search(/[[.]/);
  if (tailCut > 0) tail = tail.slice(tailCut);
  return `${head}…${tail}`;
}

function textProblem(where: string, text: string, what: 'text' | 'a key'): string {
  let at = 0;
  for (; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c >= 0xd800 && c <= 0xdbff && at + 1 < text.length) {
      const d = text.charCodeAt(at + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        at++;
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) break;
  }
  const unit = `\\u${text.charCodeAt(at).toString(16).padStart(4, '0')}`;
  const holder = what === 'text' ? clip(where) : `${clip(where)} (${what})`;
  return `${holder} is not well-formed Unicode: a lone UTF-16 surrogate ${unit} at character ${at}; send valid UTF-8 text (remove the stray half of the surrogate pair)`;
}

function depthProblem(where: string, maxDepth: number, root = where): string {
  const at = where === root ? '' : ` (at ${clip(where)})`;
  return `${clip(root)} nests arrays and objects more than ${maxDepth} levels deep${at}; the limit is ${maxDepth}: flatten it, or write it to a file and pass the file's path`;
}
