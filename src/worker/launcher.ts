import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/store/fileio';

/**
 * Writes a `sparkq` launcher into `binDir` (created 0700) so that a process with `binDir` first on PATH finds `sparkq`:
 * `command` is the argv that runs the CLI (a runtime and the bundle), `env` variables it needs (e.g.
 * ELECTRON_RUN_AS_NODE). Used for tool processes of a worker and for VS Code's SparkQ terminals. The content comes from
 * the caller's own paths, never from task text; the file is replaced atomically, through a temp file of this process's
 * own (workers of one workspace start together and write the same launcher). Returns `binDir`.
 */
export function writeSparkqLauncher(binDir: string, command: readonly string[], env: Readonly<Record<string, string>> = {}): string {
  fs.mkdirSync(binDir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') {
    const sets = Object.entries(env).map(([k, v]) => `set "${k}=${v}"\r\n`).join('');
    fs.writeFileSync(path.join(binDir, 'sparkq.cmd'), `@echo off\r\n${sets}"${command.join('" "')}" %*\r\n`);
  } else {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const exports = Object.entries(env).map(([k, v]) => `${k}=${q(v)}`).join(' ');
    const file = path.join(binDir, 'sparkq');
    const text = `#!/bin/sh\n${exports ? `export ${exports}\n` : ''}exec ${command.map(q).join(' ')} "$@"\n`;
    // Every worker start and every SparkQ terminal writes it; almost always it is already there, word for word.
    if (!isAlready(file, text)) writeFileAtomic(file, text, { mode: 0o755, durable: false });
  }
  return binDir;
}

/** The file holds exactly `text` and is executable by its owner (a read and a stat instead of a new file and a rename). */
function isAlready(file: string, text: string): boolean {
  try {
    return (fs.statSync(file).mode & 0o100) !== 0 && fs.readFileSync(file, 'utf8') === text;
  } catch {
    return false;
  }
}
