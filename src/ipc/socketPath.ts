import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SparkqError, errorMessage } from '../core/errors';

/**
 * sun_path holds 104 bytes on macOS and 108 on Linux, including the terminating NUL; 100 leaves room on both, and a
 * longer path fails at bind time with an error that names neither the path nor the limit.
 */
export const MAX_SOCKET_PATH_BYTES = 100;

/**
 * Where the owner of `workspaceDir` listens for its `generation` of ownership. The name hashes the workspace's real
 * path so that every process opening the same folder (through any symlink) computes the same socket, and the
 * generation keeps a new owner from ever reusing a dead owner's path.
 *
 * Clients should prefer the path the owner recorded in its lock over recomputing it: XDG_RUNTIME_DIR may differ
 * between a VS Code window and, say, an ssh session.
 */
export function socketPathFor(workspaceDir: string, generation: number): string {
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new SparkqError('invalid-input', `an owner generation is a whole number ≥ 0, not ${String(generation)}`);
  }
  const hash = workspaceHash(workspaceDir);
  if (process.platform === 'win32') return `\\\\.\\pipe\\sparkq-${hash}-${generation}`;
  const dir = runtimeDir();
  ensurePrivateDir(dir);
  const full = path.join(dir, `${hash}-${generation}.sock`);
  const bytes = Buffer.byteLength(full);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SparkqError(
      'config',
      `the IPC socket path ${full} is ${bytes} bytes; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES} here. ` +
        'Set XDG_RUNTIME_DIR or TMPDIR to a shorter directory.',
      { path: full },
    );
  }
  return full;
}

function workspaceHash(workspaceDir: string): string {
  let real: string;
  try {
    real = fs.realpathSync.native(workspaceDir);
  } catch (e) {
    throw new SparkqError('not-found', `cannot resolve the workspace folder ${workspaceDir}: ${errorMessage(e)}`);
  }
  return createHash('sha256').update(real).digest('hex').slice(0, 16);
}

/** `$XDG_RUNTIME_DIR/sparkq` when that runtime dir is ours and writable, else `<tmpdir>/sparkq-<uid>`. */
function runtimeDir(): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg && path.isAbsolute(xdg) && isUsableRuntimeDir(xdg)) return path.join(xdg, 'sparkq');
  return path.join(os.tmpdir(), `sparkq-${currentUid()}`);
}

function isUsableRuntimeDir(dir: string): boolean {
  try {
    const st = fs.statSync(dir);
    if (!st.isDirectory() || st.uid !== currentUid()) return false;
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function currentUid(): number {
  return process.getuid?.() ?? 0;
}

/**
 * Makes `dir` a directory that only we can enter: created 0700 if missing; if it exists it must be a real directory
 * (not a symlink) owned by us, and any group/other bits are removed. Someone else's directory is refused, never used:
 * in a shared /tmp that is exactly what an attacker would pre-create.
 */
export function ensurePrivateDir(dir: string): void {
  if (process.platform === 'win32') return;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new SparkqError('config', `cannot create the private IPC directory ${dir}: ${errorMessage(e)}`, { path: dir });
    }
  }
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink planted in our place fails here instead of redirecting us; the checks below and the chmod
    // then act on the very directory we opened, not on whatever the name points to a moment later.
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Linux reports a symlink opened with O_NOFOLLOW | O_DIRECTORY as ENOTDIR, not ELOOP; lstat tells them apart.
    const why = isSymlink(dir) ? 'it is a symlink' : code === 'ENOTDIR' ? 'it is not a directory' : errorMessage(e);
    throw new SparkqError('config', `refusing to use ${dir} for the IPC socket: ${why}. Remove it and try again.`, { path: dir });
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = currentUid();
    if (st.uid !== uid) {
      throw new SparkqError(
        'config',
        `refusing to use ${dir} for the IPC socket: it belongs to uid ${st.uid}, not to us (uid ${uid}). Remove it, or set XDG_RUNTIME_DIR to a directory of your own.`,
        { path: dir, owner: st.uid },
      );
    }
    if ((st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
