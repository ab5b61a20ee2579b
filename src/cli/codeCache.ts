import * as fs from 'node:fs';
import type * as Os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import * as zlib from 'node:zlib';

/*
 * Loads the CLI's main bundle with V8's code cache, so that a command does not compile the bundle from source each
 * time (about a fifth of what a short command costs; Node 22's module.enableCompileCache() does this, Node 20 has
 * nothing built in). The cache is what V8 produced for this exact bundle, this Node and these V8 flags, written once
 * after a command ran (so it holds the functions that command compiled) and reused by every later command.
 *
 * Trust: V8 code is as good as the bundle, and V8 only checks the source's length, so a cache is only ever read from
 * a directory this user alone can write — beside the bundle (dist/.cache/) or, when that is read-only,
 * $XDG_CACHE_HOME/sparkq (or ~/.cache/sparkq) — and only when its header names the exact build (and the bundle file's
 * size and mtime). V8 does not check a cache's contents in release builds: one flipped bit made a command spin
 * forever here. So the header carries a CRC-32 of the data, checked before V8 sees it (as Node 22's own compile cache
 * does). A cache V8 refuses (another V8, other flags) is replaced. Writes go to a temp file that is fsynced and
 * renamed, so a crash leaves the old cache or the new one, never a torn one. Any problem with the cache means
 * compiling from source, never a failure.
 */

const MAGIC = 'sparkq-code-cache 1\n';

export interface CodeCacheOptions {
  /** The bundle's build id (a digest of its contents, computed when it was built). */
  build: string;
  /** What else V8 compiled under: the flags set before loading (V8 refuses a cache made under other flags). */
  flavour: string;
  /** The bundle is all ASCII (esbuild escapes the rest), so it can be read as Latin-1: no UTF-8 decoding. */
  ascii?: boolean;
  /**
   * The `require` the bundle gets: the caller's own, which must sit in the bundle's folder (the bundle requires only
   * Node's modules and finds sql-wasm.wasm by __dirname). Passed in because node:module, for createRequire, would
   * cost a command more than this whole file.
   */
  require: NodeJS.Require;
}

export interface LoadedBundle<T> {
  exports: T;
  /**
   * Call once the command has run, with the parts of the program it ran (e.g. command groups): writes the cache when
   * there was none usable, or when this command ran parts the cache was made without. V8 then includes what came
   * from the cache and what this command compiled, so a cache grows to what the commands run here need, and stops
   * being rewritten. Never throws.
   */
  save: (parts: readonly string[]) => void;
}

interface Header {
  build: string;
  flavour: string;
  node: string;
  arch: string;
  /** The bundle file as it was when the cache was made: a copy edited in place is not the build any more. */
  size: number;
  mtimeMs: number;
  /** The parts of the program whose code the cache holds (see save). */
  parts: string[];
  bytes: number;
  crc32: number;
}

/** Runs the CommonJS `file` as `require` would, compiled from the code cache when there is a usable one. */
export function loadWithCodeCache<T>(file: string, opts: CodeCacheOptions): LoadedBundle<T> {
  // zlib.crc32 came in Node 20.15; without it, no cache (compiled from source, as always before).
  const checkable = typeof zlib.crc32 === 'function';
  const fd = fs.openSync(file, 'r');
  let source: string;
  let want: Omit<Header, 'bytes' | 'crc32' | 'parts'>;
  try {
    const st = fs.fstatSync(fd);
    source = fs.readFileSync(fd, opts.ascii ? 'latin1' : 'utf8');
    want = { build: opts.build, flavour: opts.flavour, node: process.version, arch: process.arch, size: st.size, mtimeMs: st.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
  const found = checkable ? readCache(file, want) : { data: null, dir: null, parts: [] };
  const script = new vm.Script(wrap(source), { filename: file, ...(found.data ? { cachedData: found.data } : {}) });
  const usable = found.data !== null && !script.cachedDataRejected;
  const mod = { exports: {} as T };
  const fn = script.runInThisContext() as (exports: T, require: NodeJS.Require, module: { exports: T }, filename: string, dirname: string) => void;
  fn.call(mod.exports, mod.exports, opts.require, mod, file, path.dirname(file));
  return {
    exports: mod.exports,
    save: (parts) => {
      if (!checkable || (usable && parts.every((p) => found.parts.includes(p)))) return;
      try {
        writeCache(file, want, usable ? [...new Set([...found.parts, ...parts])] : [...parts], script.createCachedData(), found.dir);
      } catch {
        // no cache this time; the next command tries again
      }
    },
  };
}

/** The CommonJS wrapper, as Node's own loader puts around a module (a shebang line is commented out). */
function wrap(source: string): string {
  const body = source.startsWith('#!') ? `//${source.slice(2)}` : source;
  return `(function (exports, require, module, __filename, __dirname) { ${body}\n});`;
}

function cacheName(file: string, h: Omit<Header, 'bytes' | 'crc32' | 'parts'>): string {
  return `${path.basename(file)}.${h.flavour}.${h.node}-${h.arch}.v8cache`;
}

/** Where a cache may live, best first: a private folder beside the bundle, then one in the user's cache folder. */
function* cacheDirs(file: string): Generator<string> {
  yield path.join(path.dirname(file), '.cache');
  const xdg = process.env['XDG_CACHE_HOME'];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join((require('node:os') as typeof Os).homedir(), '.cache');
  yield path.join(base, 'sparkq', 'code-cache', fnv1a(path.resolve(file)));
}

/** A short name for a bundle's path (FNV-1a, 32 bits): one cache folder per installed copy. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** True when `dir` is a real directory of this user that no one else can write to. */
function isPrivateDir(dir: string): boolean {
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory()) return false;
    if (process.platform === 'win32') return true;
    return st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The cached code for this build, if a private cache folder has it; `dir` is where a stale one was found. */
function readCache(file: string, want: Omit<Header, 'bytes' | 'crc32' | 'parts'>): { data: Buffer | null; dir: string | null; parts: string[] } {
  for (const dir of cacheDirs(file)) {
    if (!isPrivateDir(dir)) continue;
    let raw: Buffer;
    try {
      raw = fs.readFileSync(path.join(dir, cacheName(file, want)));
    } catch {
      continue;
    }
    try {
      const nl = raw.indexOf(10, MAGIC.length);
      if (nl < 0 || raw.toString('latin1', 0, MAGIC.length) !== MAGIC) return { data: null, dir, parts: [] };
      const h = JSON.parse(raw.toString('utf8', MAGIC.length, nl)) as Header;
      const data = raw.subarray(nl + 1);
      const same =
        h.build === want.build &&
        h.flavour === want.flavour &&
        h.node === want.node &&
        h.arch === want.arch &&
        h.size === want.size &&
        h.mtimeMs === want.mtimeMs &&
        h.bytes === data.length &&
        h.crc32 === zlib.crc32(data);
      return same && Array.isArray(h.parts) ? { data, dir, parts: h.parts } : { data: null, dir, parts: [] };
    } catch {
      return { data: null, dir, parts: [] };
    }
  }
  return { data: null, dir: null, parts: [] };
}

function writeCache(file: string, want: Omit<Header, 'bytes' | 'crc32' | 'parts'>, parts: string[], data: Buffer, staleIn: string | null): void {
  for (const dir of staleIn ? [staleIn] : cacheDirs(file)) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch {
      continue;
    }
    if (!isPrivateDir(dir)) continue;
    const final = path.join(dir, cacheName(file, want));
    const tmp = `${final}.${process.pid}.tmp`;
    try {
      const header: Header = { ...want, parts, bytes: data.length, crc32: zlib.crc32(data) };
      const fd = fs.openSync(tmp, 'w', 0o600);
      try {
        fs.writeSync(fd, MAGIC + JSON.stringify(header) + '\n');
        fs.writeSync(fd, data);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, final);
      return;
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }
}
