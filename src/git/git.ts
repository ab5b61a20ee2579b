/*
 * Calling git: always an argv array (never a shell string), never a prompt (a worker has nobody to answer one), and
 * in the C locale so that what we parse is git's own English. Every failure becomes a SparkqError that names the git
 * command, git's own words and what to do next.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ErrorCode, SparkqError } from '../core/errors';

export interface GitOptions {
  cwd: string;
  /** Written to git's stdin (then closed). */
  input?: string | Buffer;
  /** Added to the environment (after ours, so a caller can set GIT_INDEX_FILE and the like). */
  env?: Record<string, string>;
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface GitCallOptions extends GitOptions {
  /** The error code when git exits non-zero (default 'conflict': git refused what the state of the repository does not allow). */
  code?: ErrorCode;
  /** What to do next, appended to the message when git fails. */
  hint?: string;
}

/** Where stderr and stdout are cut in an error message: enough for git's explanation, never a whole diff. */
const MESSAGE_CUT = 2_000;

/** `-c core.longpaths=true` on Windows, where a worktree under .sparkq/worktrees easily passes 260 characters. */
function platformConfig(): string[] {
  return process.platform === 'win32' ? ['-c', 'core.longpaths=true'] : [];
}

/** The command as a person would type it, for messages (quoted where an argument has a space). */
export function describeGit(args: readonly string[]): string {
  return ['git', ...args].map((a) => (/^[\w@%+=:,./^~-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Runs git and reports how it exited; never throws for a non-zero exit (only when git cannot be started). */
export function runGit(args: readonly string[], opts: GitOptions): Promise<GitResult> {
  if (!fs.existsSync(opts.cwd)) {
    // spawn reports a missing cwd as ENOENT, which would read as "git is not installed".
    return Promise.reject(new SparkqError('invalid-input', `${opts.cwd} does not exist: cannot run ${describeGit(args)} there`));
  }
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...platformConfig(), ...args], {
      cwd: opts.cwd,
      shell: false,
      windowsHide: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', LANGUAGE: 'C', ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        reject(new SparkqError('unavailable', 'git was not found on the PATH: install git (https://git-scm.com) and make sure `git --version` works in this terminal', { args }));
      } else reject(new SparkqError('unavailable', `could not start ${describeGit(args)}: ${e.message}`, { args }));
    });
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `\n(git was killed by ${signal})` : ''),
      });
    });
    // A git that exits before reading its input closes the pipe; that is reported through its exit code.
    child.stdin.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** The error for a git command that failed: the command, git's own message, and the hint. */
export function gitError(args: readonly string[], r: GitResult, opts: Pick<GitCallOptions, 'code' | 'hint' | 'cwd'>): SparkqError {
  const said = (r.stderr.trim() || r.stdout.trim()).slice(0, MESSAGE_CUT) || '(git said nothing)';
  const hint = opts.hint ? `; ${opts.hint}` : '';
  return new SparkqError(opts.code ?? 'conflict', `${describeGit(args)} failed (exit ${r.code}) in ${opts.cwd}: ${said}${hint}`, {
    args,
    exitCode: r.code,
    stderr: r.stderr.slice(0, MESSAGE_CUT),
  });
}

/** Runs git and returns its stdout; a non-zero exit throws a SparkqError naming the command and git's stderr. */
export async function git(args: readonly string[], opts: GitCallOptions): Promise<string> {
  const r = await runGit(args, opts);
  if (r.code !== 0) throw gitError(args, r, opts);
  return r.stdout;
}

/** Splits `-z` output into its fields (the trailing NUL gives no empty last field). */
export function splitZ(s: string): string[] {
  const parts = s.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** The first line of stdout without its newline (for rev-parse and the like). */
export function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).replace(/\r$/, '');
}

/**
 * `-c user.name=SparkQ -c user.email=sparkq@localhost` when git has no committer identity here (CI, a fresh
 * container), so that a task's commit or a merge commit never fails for that reason; nothing otherwise.
 */
export async function identityFallback(cwd: string): Promise<string[]> {
  const r = await runGit(['var', 'GIT_COMMITTER_IDENT'], { cwd });
  return r.code === 0 ? [] : ['-c', 'user.name=SparkQ', '-c', 'user.email=sparkq@localhost'];
}

/** A path relative to `from`, with forward slashes (how SparkQ reports repository paths on every platform). */
export function slashRelative(from: string, to: string): string {
  return (path.relative(from, to) || '.').split(path.sep).join('/');
}
