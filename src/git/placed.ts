/*
 * The untracked things a task needs in its worktree (`worktree: { copy, link }` in sparkq.yml): which paths of the
 * repository the globs match, and putting them in place. The matcher is small on purpose (`*`, `?`, `**`, `[...]`,
 * `{a,b}`) and walks only as deep as a pattern can still match: never into `.git` or `.sparkq`, never into a matched
 * directory, and into `node_modules` only when a pattern names it (it may hold a million files).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SparkqError } from '../core/errors';

export interface PlacedSettings {
  copy: readonly string[];
  link: readonly string[];
}

export interface PlacedPath {
  /** Relative to the repository top, forward slashes. */
  path: string;
  how: 'copy' | 'link';
  dir: boolean;
}

/** Never walked into, nor matched. */
const NEVER = new Set(['.git', '.sparkq']);
/** Not walked into unless a pattern names it literally (a `**` alone never descends into it). */
const HEAVY = new Set(['node_modules']);

type Segment = { kind: 'globstar' } | { kind: 'literal'; text: string } | { kind: 'pattern'; re: RegExp };

function escapeRe(s: string): string {
  return s.replace(/[.+^${}()|[\]\\*?]/g, '\\$&');
}

/** One path segment of a glob as a regular expression, or a literal when it has no wildcard. */
function compileSegment(seg: string, glob: string): Segment {
  if (seg === '**') return { kind: 'globstar' };
  if (!/[*?[{]/.test(seg)) return { kind: 'literal', text: seg };
  let re = '';
  let braces = 0;
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) throw new SparkqError('config', `worktree glob ${JSON.stringify(glob)}: "[" without a closing "]"`);
      let body = seg.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else re += escapeRe(c);
  }
  if (braces > 0) throw new SparkqError('config', `worktree glob ${JSON.stringify(glob)}: "{" without a closing "}"`);
  return { kind: 'pattern', re: new RegExp(`^${re}$`) };
}

export interface CompiledGlob {
  glob: string;
  segments: Segment[];
}

/** A glob relative to the repository top: forward or back slashes, no `..`, not absolute. */
export function compileGlob(glob: string): CompiledGlob {
  const clean = glob.trim().replace(/\\/g, '/').replace(/^\.\//, '').replace(/\/+$/, '');
  if (!clean || clean.startsWith('/') || /^[A-Za-z]:/.test(clean) || clean.split('/').includes('..')) {
    throw new SparkqError('config', `worktree glob ${JSON.stringify(glob)} must be a path relative to the repository's top, without "..": e.g. "node_modules" or "**/.env"`);
  }
  const segments = clean
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => compileSegment(s, glob));
  return { glob, segments };
}

function segmentMatches(seg: Segment, name: string): boolean {
  if (seg.kind === 'literal') return seg.text === name;
  if (seg.kind === 'pattern') return seg.re.test(name);
  return true;
}

/** Whether `parts` (a path's segments) match the whole glob. */
export function matchesGlob(g: CompiledGlob, parts: readonly string[]): boolean {
  const go = (pi: number, si: number): boolean => {
    if (pi === g.segments.length) return si === parts.length;
    const seg = g.segments[pi]!;
    if (seg.kind === 'globstar') {
      for (let k = si; k <= parts.length; k++) if (go(pi + 1, k)) return true;
      return false;
    }
    return si < parts.length && segmentMatches(seg, parts[si]!) && go(pi + 1, si + 1);
  };
  return go(0, 0);
}

/** Whether something below the directory `parts` could still match (so the walk has to go in). */
function mayMatchBelow(g: CompiledGlob, parts: readonly string[]): boolean {
  const go = (pi: number, si: number): boolean => {
    if (si === parts.length) return pi < g.segments.length;
    if (pi === g.segments.length) return false;
    const seg = g.segments[pi]!;
    if (seg.kind === 'globstar') {
      if (HEAVY.has(parts[si]!)) return go(pi + 1, si);
      return go(pi + 1, si) || go(pi, si + 1);
    }
    return segmentMatches(seg, parts[si]!) && go(pi + 1, si + 1);
  };
  return go(0, 0);
}

/**
 * The paths of `top` the copy and link globs match, in walk order, each once (a link wins over a copy of the same
 * path). A matched directory is taken whole and not walked into.
 */
export function matchPlaced(top: string, settings: PlacedSettings): PlacedPath[] {
  const globs = [...settings.link.map((g) => ({ how: 'link' as const, g: compileGlob(g) })), ...settings.copy.map((g) => ({ how: 'copy' as const, g: compileGlob(g) }))];
  if (globs.length === 0) return [];
  const out: PlacedPath[] = [];
  const walk = (parts: string[]) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(top, ...parts), { withFileTypes: true });
    } catch {
      return; // unreadable or gone: nothing to place from it
    }
    for (const e of entries) {
      if (NEVER.has(e.name)) continue;
      const p = [...parts, e.name];
      const hit = globs.find((x) => matchesGlob(x.g, p));
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        try {
          isDir = fs.statSync(path.join(top, ...p)).isDirectory();
        } catch {
          isDir = false;
        }
      }
      if (hit) {
        out.push({ path: p.join('/'), how: hit.how, dir: isDir });
        continue;
      }
      // Never follow a symbolic link while walking (a link to / would walk the disk).
      if (e.isDirectory() && globs.some((x) => mayMatchBelow(x.g, p))) walk(p);
    }
  };
  walk([]);
  return out;
}

/**
 * Puts each matched path into the worktree at `dir`: a copy, or a symbolic link to the original (a junction for a
 * directory on Windows; a file that cannot be linked there without privileges is copied). An existing path in the
 * worktree (a tracked file of the same name) is left alone, except an old link of ours, which is replaced.
 */
export function placePaths(top: string, dir: string, placed: readonly PlacedPath[]): void {
  for (const p of placed) {
    const from = path.join(top, ...p.path.split('/'));
    const to = path.join(dir, ...p.path.split('/'));
    let existing: fs.Stats | null;
    try {
      existing = fs.lstatSync(to);
    } catch {
      existing = null;
    }
    if (existing && !existing.isSymbolicLink()) continue;
    if (existing) fs.rmSync(to, { force: true });
    fs.mkdirSync(path.dirname(to), { recursive: true });
    if (p.how === 'copy') {
      fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      continue;
    }
    try {
      fs.symlinkSync(from, to, process.platform === 'win32' ? (p.dir ? 'junction' : 'file') : undefined);
    } catch (e) {
      if (process.platform === 'win32' && !p.dir && (e as NodeJS.ErrnoException).code === 'EPERM') fs.copyFileSync(from, to);
      else throw new SparkqError('conflict', `could not link ${p.path} into the worktree ${dir}: ${(e as Error).message}; use "copy" for it in sparkq.yml instead`);
    }
  }
}

/**
 * The exclude pathspecs for `git add`/`git status` that keep placed paths out of commits and out of "dirty": a path
 * literally, a glob (from sparkq.yml) with git's own glob magic.
 */
export function excludeSpecs(paths: readonly string[]): string[] {
  return paths.map((p) => (/[*?[]/.test(p) ? `:(exclude,glob)${p}` : `:(exclude,literal)${p}`));
}
