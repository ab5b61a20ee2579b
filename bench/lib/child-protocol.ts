import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

/** What bench/child.ts reports, one `RESULT <json>` line on stdout. */
export const RESULT_PREFIX = 'RESULT ';

export interface ColdStartResult {
  openMs: number;
  replayed: number;
  snapshotSeq: number;
  rssMb: number;
  wasmMb: number;
}

export interface RssMilestone {
  tasks: number;
  seconds: number;
  rssMb: number;
  heapUsedMb: number;
  /** sql.js's WebAssembly memory (SQLite's heap and page cache); it grows and never shrinks. */
  wasmMb: number;
  /** ArrayBuffers outside the wasm memory: mostly the database file sql.js keeps in its in-memory file system. */
  arrayBuffersMb: number;
}

export interface RssResult {
  target: number;
  tasks: number;
  /** True when the time budget ran out before `target` tasks: then `tasks` and the rate say how far it got. */
  stoppedEarly: boolean;
  buildSeconds: number;
  tasksPerSecond: number;
  rssMb: number;
  heapUsedMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  wasmMb: number;
  /** RSS of the same bundle with sql.js loaded and an empty queue open: the floor the history adds to. */
  emptyRssMb: number;
  peakRssMb: number;
  succeeded: number;
  liveFinished: number;
  archiveChunks: number;
  milestones: RssMilestone[];
  gcExposed: boolean;
}

export type ChildResult = ({ kind: 'open' } & ColdStartResult) | ({ kind: 'rss' } & RssResult);

/**
 * Bundles bench/child.ts the way scripts/build.mjs bundles the CLI (esbuild, cjs, node20, sql-wasm.wasm beside it),
 * so that the child runs as SparkQ runs in production: plain Node, no TypeScript loader. (tsx alone adds ~45 MB of
 * RSS, its loader thread, which would be charged to SparkQ.)
 */
export function bundleChild(root: string, outDir: string): string {
  fs.mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, 'child.js');
  buildSync({
    entryPoints: [path.join(root, 'bench', 'child.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile,
    logLevel: 'silent',
  });
  const wasm = path.join(path.dirname(createRequire(path.join(root, 'package.json')).resolve('sql.js')), 'sql-wasm.wasm');
  fs.copyFileSync(wasm, path.join(outDir, 'sql-wasm.wasm'));
  return outfile;
}

/** Runs the bundled child in a fresh Node process (with --expose-gc) and returns its result line. */
export function runChild(script: string, args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code === 0 && line) {
        resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult);
      } else {
        reject(new Error(`bench child ${args.join(' ')} ended with ${signal ?? `code ${String(code)}`}${line ? '' : ' and no result'}`));
      }
    });
  });
}
