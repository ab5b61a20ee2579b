import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The scripts that script tools may run, found by walking the configured script dirs. Each script may describe
 * itself in its leading comment block:
 *
 *   #!/usr/bin/env bash
 *   # name: backup-db
 *   # description: Dump the database to backups/
 *   # tags: db, ops
 *
 * Rebuilds are incremental (a file is re-read only when its mtime or size changed) so that a rebuild on every
 * file-system event stays cheap. Only the first 8 KiB of a file is ever read.
 */

export interface ScriptEntry {
  name: string;
  /** Absolute path as found under its script dir (not resolved through symlinks). */
  path: string;
  /** Relative to its script dir, with `/` separators on every platform. */
  relativePath: string;
  /** The script dir it was found in, as given to the index. */
  dir: string;
  description: string;
  inputs: string;
  outputs: string;
  tags: string[];
  mtimeMs: number;
  size: number;
}

export interface ScriptIndexOptions {
  /** Directory levels below a script dir that are walked. */
  maxDepth?: number;
  /** Files looked at, over all dirs, before the walk stops (and `truncated` is set). */
  maxFiles?: number;
}

export const SCRIPT_EXTENSIONS: readonly string[] = ['.sh', '.bash', '.py', '.js', '.mjs', '.ts', '.rb', '.pl', '.zsh'];
const HEADER_BYTES = 8 * 1024;
const HEADER_KEYS = new Set(['name', 'description', 'inputs', 'outputs', 'tags']);

interface Cached {
  mtimeMs: number;
  size: number;
  /** null: looked at, not a script. Kept so that unchanged non-scripts are not reopened on every rebuild. */
  entry: ScriptEntry | null;
}

interface Header {
  name?: string;
  description?: string;
  inputs?: string;
  outputs?: string;
  tags?: string;
}

/** Reads the `key: value` lines of the leading comment block. Exported for tests and for previews. */
export function parseScriptHeader(text: string): { isShebang: boolean; fields: Header } {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const isShebang = lines[0]?.startsWith('#!') ?? false;
  const fields: Header = {};
  let last: keyof Header | undefined;
  for (const line of lines.slice(isShebang ? 1 : 0)) {
    const trimmed = line.trim();
    if (trimmed === '') {
      last = undefined;
      continue;
    }
    const m = /^(?:#+|\/\/+)(.*)$/.exec(trimmed);
    if (!m) break; // the first line of code ends the header
    const body = m[1] ?? '';
    const kv = /^\s?([A-Za-z]+)\s*:\s*(.*)$/.exec(body);
    const key = kv?.[1]?.toLowerCase();
    if (kv && key !== undefined && HEADER_KEYS.has(key)) {
      const k = key as keyof Header;
      last = undefined;
      // The first occurrence wins: a later comment that happens to start with "Name:" is prose, not the header.
      if (fields[k] === undefined) {
        fields[k] = (kv[2] ?? '').trim();
        last = k;
      }
    } else if (last && last !== 'name' && /^\s{2,}\S/.test(body)) {
      // An indented comment line continues the previous value, so long descriptions can wrap.
      fields[last] = `${fields[last] ?? ''} ${body.trim()}`.trim();
    } else {
      last = undefined;
    }
  }
  return { isShebang, fields };
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function compareEntries(a: ScriptEntry, b: ScriptEntry, dirOrder: Map<string, number>): number {
  const an = a.name.toLowerCase();
  const bn = b.name.toLowerCase();
  if (an !== bn) return an < bn ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.relativePath !== b.relativePath) return a.relativePath < b.relativePath ? -1 : 1;
  return (dirOrder.get(a.dir) ?? 0) - (dirOrder.get(b.dir) ?? 0);
}

export class ScriptIndex {
  private dirs: string[];
  private cache = new Map<string, Cached>();
  private sorted: ScriptEntry[] = [];
  private readonly maxDepth: number;
  private readonly maxFiles: number;
  /** True when the last rebuild stopped at maxFiles; the list is then incomplete. */
  truncated = false;

  constructor(dirs: string[], opts: ScriptIndexOptions = {}) {
    this.dirs = ScriptIndex.normalize(dirs);
    this.maxDepth = opts.maxDepth ?? 8;
    this.maxFiles = opts.maxFiles ?? 10_000;
  }

  private static normalize(dirs: string[]): string[] {
    return [...new Set(dirs.map((d) => path.resolve(d)))];
  }

  /** Takes effect at the next rebuild(), which also counts the scripts of dropped dirs as removed. */
  setDirs(dirs: string[]): void {
    this.dirs = ScriptIndex.normalize(dirs);
  }

  rebuild(): { added: number; updated: number; removed: number; unchanged: number } {
    const counts = { added: 0, updated: 0, removed: 0, unchanged: 0 };
    const next = new Map<string, Cached>();
    const seenReal = new Map<string, string>();
    let files = 0;
    this.truncated = false;

    const consider = (dir: string, abs: string, real: string, rel: string): void => {
      // A file inside two configured dirs (one nested in the other) is listed once, under the first dir.
      const firstDir = seenReal.get(real);
      if (firstDir !== undefined && firstDir !== dir) return;
      seenReal.set(real, dir);
      let st: fs.Stats;
      try {
        st = fs.statSync(abs);
      } catch {
        return; // vanished or unreadable since readdir: simply not there
      }
      if (!st.isFile()) return;
      const key = `${dir}\0${rel}`;
      const old = this.cache.get(key);
      if (old && old.mtimeMs === st.mtimeMs && old.size === st.size) {
        next.set(key, old);
        if (old.entry) counts.unchanged++;
        return;
      }
      const entry = this.read(dir, abs, rel, st);
      next.set(key, { mtimeMs: st.mtimeMs, size: st.size, entry });
      if (entry) {
        if (old?.entry) counts.updated++;
        else counts.added++;
      } else if (old?.entry) counts.removed++;
    };

    // `ancestors`: real paths of the dirs above, so that a link back up is not walked in circles.
    const walk = (dir: string, rootReal: string, abs: string, real: string, rel: string, depth: number, ancestors: Set<string>): void => {
      let dirents: fs.Dirent[];
      try {
        dirents = fs.readdirSync(abs, { withFileTypes: true });
      } catch {
        return;
      }
      dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)); // readdir order differs by file system
      for (const d of dirents) {
        if (this.truncated) return;
        const childAbs = path.join(abs, d.name);
        const childRel = rel ? `${rel}/${d.name}` : d.name;
        let childReal = path.join(real, d.name);
        let isDir = d.isDirectory();
        let isFile = d.isFile();
        if (d.isSymbolicLink()) {
          // Follow a link only to somewhere inside the script dir: a link out of it must not widen what may run.
          try {
            childReal = fs.realpathSync(childAbs);
            const st = fs.statSync(childReal);
            isDir = st.isDirectory();
            isFile = st.isFile();
          } catch {
            continue; // a dangling link
          }
          if (!isInside(rootReal, childReal)) continue;
        }
        if (isDir) {
          if (d.name.startsWith('.') || d.name === 'node_modules' || depth >= this.maxDepth || ancestors.has(childReal)) continue;
          walk(dir, rootReal, childAbs, childReal, childRel, depth + 1, new Set(ancestors).add(childReal));
        } else if (isFile) {
          if (++files > this.maxFiles) {
            this.truncated = true;
            return;
          }
          consider(dir, childAbs, childReal, childRel);
        }
      }
    };

    for (const dir of this.dirs) {
      if (this.truncated) break;
      let rootReal: string;
      try {
        rootReal = fs.realpathSync(dir);
        if (!fs.statSync(rootReal).isDirectory()) continue;
      } catch {
        continue; // a configured dir that does not exist (yet) holds no scripts
      }
      walk(dir, rootReal, dir, rootReal, '', 0, new Set([rootReal]));
    }

    for (const [key, old] of this.cache) if (old.entry && !next.has(key)) counts.removed++;
    this.cache = next;
    const dirOrder = new Map(this.dirs.map((d, i) => [d, i]));
    this.sorted = [...next.values()]
      .map((c) => c.entry)
      .filter((e): e is ScriptEntry => e !== null)
      .sort((a, b) => compareEntries(a, b, dirOrder));
    return counts;
  }

  /** The entry for a script file, or null when it is not a script (no known extension and no shebang). */
  private read(dir: string, abs: string, rel: string, st: fs.Stats): ScriptEntry | null {
    const buf = Buffer.alloc(Math.min(HEADER_BYTES, st.size));
    let n: number;
    try {
      const fd = fs.openSync(abs, 'r');
      try {
        n = fs.readSync(fd, buf, 0, buf.length, 0);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return null;
    }
    let text = buf.subarray(0, n).toString('utf8');
    // A cut at 8 KiB may leave half a line, which could parse as a shorter value than the file holds: drop it.
    if (st.size > HEADER_BYTES) text = text.slice(0, Math.max(0, text.lastIndexOf('\n')));
    const ext = path.extname(abs).toLowerCase();
    const { isShebang, fields } = parseScriptHeader(text);
    if (!isShebang && !SCRIPT_EXTENSIONS.includes(ext)) return null;
    const base = path.basename(abs);
    const fallbackName = ext && base.length > ext.length ? base.slice(0, -ext.length) : base;
    return {
      name: fields.name || fallbackName,
      path: abs,
      relativePath: rel,
      dir,
      description: fields.description ?? '',
      inputs: fields.inputs ?? '',
      outputs: fields.outputs ?? '',
      tags: parseTags(fields.tags ?? ''),
      mtimeMs: st.mtimeMs,
      size: st.size,
    };
  }

  list(): ScriptEntry[] {
    return [...this.sorted];
  }

  search(query: string): ScriptEntry[] {
    const q = query.trim().toLowerCase();
    if (!q) return this.list();
    const terms = q.split(/\s+/);
    const scored: { e: ScriptEntry; score: number; i: number }[] = [];
    this.sorted.forEach((e, i) => {
      const name = e.name.toLowerCase();
      const description = e.description.toLowerCase();
      const tags = e.tags.map((t) => t.toLowerCase());
      let score = 0;
      for (const t of terms) {
        // Rank of the best place this term matches: exact name, name prefix, name contains, tag, description.
        const r =
          name === t ? 0 : name.startsWith(t) ? 1 : name.includes(t) ? 2 : tags.some((g) => g.includes(t)) ? 3 : description.includes(t) ? 4 : -1;
        if (r < 0) return;
        score += r;
      }
      if (name === q) score = -1; // the whole query is the name (names may hold spaces)
      scored.push({ e, score, i });
    });
    return scored.sort((a, b) => a.score - b.score || a.i - b.i).map((s) => s.e);
  }

  get(nameOrRelativePath: string): ScriptEntry | undefined {
    // `sorted` orders equal names by relativePath, so the first match is the one a duplicate name resolves to.
    const byName = this.sorted.find((e) => e.name === nameOrRelativePath);
    if (byName) return byName;
    const rel = nameOrRelativePath.replace(/\\/g, '/').replace(/^(\.\/)+/, '');
    return this.sorted.find((e) => e.relativePath === rel);
  }
}

function parseTags(s: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const t of s.split(',')) {
    const tag = t.trim();
    if (tag && !seen.has(tag.toLowerCase())) {
      seen.add(tag.toLowerCase());
      out.push(tag);
    }
  }
  return out;
}
