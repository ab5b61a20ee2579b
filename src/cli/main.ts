/**
 * The `sparkq` command line's entry point, bundled to dist/cli.js: small on purpose, because every command an agent
 * runs starts here. It answers `--version` and help from a table made at build time (fastPaths.ts) without loading
 * the program; anything else loads the program (dist/cli-app.js, app.ts) through V8's code cache (codeCache.ts),
 * and the program loads only the command group it runs (commands/index.ts).
 */
/* eslint-disable @typescript-eslint/no-require-imports -- modules this file needs on some paths only */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as V8 from 'node:v8';
import type * as Workspace from '../owner/workspace';
import type * as App from './app';
import type * as CodeCache from './codeCache';
import type { FastPathTable } from './fastPaths';

/** What scripts/lib/cli-bundle.js puts here when it builds dist/cli.js; undefined when this file runs from source. */
declare const SPARKQ_CLI_BUILD: { app: string; build: string; ascii: boolean; fastPaths: string } | undefined;

const argv = process.argv.slice(2);
const built = (() => {
  try {
    return SPARKQ_CLI_BUILD;
  } catch {
    return undefined; // not defined: running from source
  }
})();

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * Commander wraps help to a terminal's width; the table holds what it prints when output is not a terminal. Asked of
 * the file descriptor first: a pipe or a file is settled without setting up process.stdout.
 */
function widthAsBuilt(fd: 1 | 2): boolean {
  try {
    if (!fs.fstatSync(fd).isCharacterDevice()) return true;
  } catch {
    return true; // closed: nothing will be read either way
  }
  const stream = fd === 1 ? process.stdout : process.stderr;
  return !stream.isTTY || stream.columns === 80;
}

/** Answers from the table (JSON text: a string costs nothing to compile), for a command line that may be in it. */
function answerFromTable(json: string): boolean {
  const maybe = argv.length <= 1 || argv.some((a) => a === '--help' || a === '-h' || a === 'help');
  if (!maybe) return false;
  const table = JSON.parse(json) as FastPathTable;
  const answer = table.answers[argv.join('\u0000')];
  if (!answer || !widthAsBuilt(1) || !widthAsBuilt(2)) return false;
  const [code, out, err] = answer;
  if (out >= 0) writeAll(1, table.texts[out]!);
  if (err >= 0) writeAll(2, table.texts[err]!);
  process.exitCode = code;
  return true;
}

/**
 * Writes straight to the file descriptor: setting up process.stdout (a stream over a pipe) would cost more than the
 * rest of the answer. A reader that left (`sparkq --help | head -1`) is not an error of ours; a non-blocking pipe
 * that is full gets the rest through the stream, which waits for it.
 */
function writeAll(fd: 1 | 2, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  try {
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    (fd === 1 ? process.stdout : process.stderr).on('error', () => undefined).write(buf.subarray(off));
  }
}

/**
 * What this command will most likely be: the owner of its queue (no live owner around) or a client of one. Each gets
 * its own code cache (the owner's code is most of the program; a client deserialising it would pay for nothing) and
 * its own V8 flags. A guess from owner.json, which a live owner keeps: a wrong one costs time, never correctness.
 */
function expectedRole(): 'client' | 'owner' {
  if (process.env['SPARKQ_SOCKET'] && process.env['SPARKQ_TOKEN']) return 'client';
  try {
    const { findWorkspace, sparkqDirOf } = require('../owner/workspace') as typeof Workspace;
    const i = argv.findIndex((a) => a === '--workspace' || a.startsWith('--workspace='));
    const given = i < 0 ? undefined : argv[i] === '--workspace' ? argv[i + 1] : argv[i]!.slice('--workspace='.length);
    return fs.existsSync(path.join(sparkqDirOf(findWorkspace(process.cwd(), given)), 'owner.json')) ? 'client' : 'owner';
  } catch {
    return 'client';
  }
}

/**
 * A command that owns the queue lives a fraction of a second: too short for optimised WebAssembly (sql.js) to pay
 * back its compile time, so baseline code only (about a third less CPU per command). Set before the program is
 * compiled when this command expects to own (V8 takes a code cache only under the flags it was made with), else only
 * if it comes to own after all. Long-running commands (serve, run, mcp) keep the default.
 */
function shortLivedWasm(): void {
  (require('node:v8') as typeof V8).setFlagsFromString('--liftoff-only');
}

function run(): void {
  const longRunning = argv.some((a) => a === 'serve' || a === 'run' || a === 'mcp');
  const role = longRunning ? 'long' : expectedRole();
  if (role === 'owner') shortLivedWasm();
  let flagsChanged = false;
  const prepareToOwn = () => {
    if (role !== 'client') return;
    shortLivedWasm();
    flagsChanged = true;
  };
  let app: typeof App;
  let save: (parts: readonly string[]) => void = () => undefined;
  if (built) {
    const { loadWithCodeCache } = require('./codeCache') as typeof CodeCache;
    const loaded = loadWithCodeCache<typeof App>(path.join(__dirname, built.app), { build: built.build, ascii: built.ascii, require, flavour: role });
    app = loaded.exports;
    save = loaded.save;
  } else {
    // From source (tsx): the program beside this file. A computed path, so that a bundler never inlines it here.
    app = require(path.join(__dirname, 'app')) as typeof App;
  }
  void app.main(argv, { prepareToOwn }).then(async (code) => {
    // Exit explicitly once output is flushed: a command is over when it has answered, whatever timers or sockets a
    // library may still hold open.
    await Promise.all([flush(process.stdout), flush(process.stderr)]);
    // Not under flags other than those it was loaded with: V8 would refuse that cache next time.
    if (!flagsChanged) save(app.partsLoaded());
    process.exit(code);
  });
}

if (!built || !answerFromTable(built.fastPaths)) run();
