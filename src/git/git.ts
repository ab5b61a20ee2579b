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

/**
 * Something that starts processes for this one (the worker's spawn helper, src/worker/spawner.ts): a process that
 * holds a queue in memory is large, and forking it for each git command costs more than the command. `spawn` returns
 * null when it cannot; git is then started directly.
 */
export interface GitLauncher {
  spawn(req: { command: string; args: readonly string[]; cwd: string; env: NodeJS.ProcessEnv; stdin?: string }): {
    onSpawn: (pid: number | undefined) => void;
    onData: (chunk: string, stream: 'stdout' | 'stderr') => void;
    onError: (e: { code?: string; message: string }) => void;
    onClose: (code: number | null, signal: NodeJS.Signals | null) => void;
  } | null;
}

let launcher: GitLauncher | null = null;

/** Starts git through `l` from now on (null: directly). The worker sets it while it owns the queue. */
export function useGitLauncher(l: GitLauncher | null): void {
  launcher = l;
}

function notStarted(args: readonly string[], e: { code?: string; message: string }): SparkqError {
  return e.code === 'ENOENT'
    ? new SparkqError('unavailable', 'git was not found on the PATH: install git (https://git-scm.com) and make sure `git --version` works in this terminal', { args })
    : new SparkqError('unavailable', `could not start ${describeGit(args)}: ${e.message}`, { args });
}

/** Runs git and reports how it exited; never throws for a non-zero exit (only when git cannot be started). */
export function runGit(args: readonly string[], opts: GitOptions): Promise<GitResult> {
  if (!fs.existsSync(opts.cwd)) {
    // spawn reports a missing cwd as ENOENT, which would read as "git is not installed".
    return Promise.reject(new SparkqError('invalid-input', `${opts.cwd} does not exist: cannot run ${describeGit(args)} there`));
  }
  const argv = [...platformConfig(), ...args];
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', LANGUAGE: 'C', ...opts.env };
  return new Promise((resolve, reject) => {
    const done = (code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr: stderr + (signal ? `\n(git was killed by ${signal})` : '') });
    // The helper passes output on as UTF-8 text: git's -z output and text are that; nothing here reads bytes.
    const remote = typeof opts.input === 'object' ? null : (launcher?.spawn({ command: 'git', args: argv, cwd: opts.cwd, env, ...(opts.input !== undefined ? { stdin: opts.input } : {}) }) ?? null);
    if (remote) {
      let stdout = '';
      let stderr = '';
      remote.onSpawn = () => undefined;
      remote.onData = (chunk, stream) => {
        if (stream === 'stdout') stdout += chunk;
        else stderr += chunk;
      };
      remote.onError = (e) => reject(notStarted(args, e));
      remote.onClose = (code, signal) => done(code, signal, stdout, stderr);
      return;
    }
    const child = spawn('git', argv, { cwd: opts.cwd, shell: false, windowsHide: true, stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => reject(notStarted(args, { ...(e.code ? { code: e.code } : {}), message: e.message })));
    child.on('close', (code, signal) => done(code, signal, Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8')));
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
