import { buildSync } from 'esbuild';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Bundles a test child (with sql.js's WebAssembly beside it, as `npm run build` ships the CLI) once per output dir and
 * returns the node arguments that start it. A bundle starts in a fraction of the time tsx needs to compile sources.
 */
export function bundleChild(source: string, outDir: string): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, path.basename(source).replace(/\.ts$/, '.js'));
  buildSync({ entryPoints: [path.resolve(ROOT, source)], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile, logLevel: 'error' });
  fs.copyFileSync(path.join(path.dirname(require.resolve('sql.js')), 'sql-wasm.wasm'), path.join(outDir, 'sql-wasm.wasm'));
  return [outfile];
}

export interface Child {
  proc: ChildProcess;
  /** Parsed JSON lines from stdout so far. */
  lines: Record<string, unknown>[];
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Resolves with the first line for which `pred` holds (rejects if the child exits first). */
  waitFor: (pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>;
}

export function startChild(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let err = '';
  let buf = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!text.trim()) continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (c: string) => (err += c));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = lines.find(pred);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`child ${proc.pid}: no matching line within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`child ${proc.pid} exited (${code}) before a matching line; stderr: ${err}`));
      });
    });
  return { proc, lines, stderr: () => err, exited, waitFor };
}

/** Alive and not a zombie (a killed orphan stays a zombie until its new parent reaps it; it runs nothing). Linux only. */
export function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
