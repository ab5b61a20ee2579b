import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveScriptDirs } from '../../core/config';
import { isRecord } from '../../core/guards';
import { LIMITS } from '../../core/model';
import { commandOf } from '../../core/queue/validation';
import { ScriptIndex } from '../../core/scriptIndex';
import { runProcess } from '../proc';
import { splitShellWords } from '../shellWords';
import type { ExecContext, ExecOutcome, Executor } from '../types';

/** What a script task asks for: a script (index name or path relative to a script dir) and its arguments. */
export interface ScriptRequest {
  script: string;
  args: string[];
}

/**
 * The payload `{script, args}` wins over the prompt; a prompt is split into shell words, the first naming the script.
 * Throws an Error whose message says what is wrong with the request.
 */
export function scriptRequest(prompt: string | null, payload: unknown): ScriptRequest {
  if (isRecord(payload) && 'script' in payload) {
    const script = payload['script'];
    const given = payload['args'];
    if (typeof script !== 'string' || script.trim() === '') throw new Error('payload.script must be the name or relative path of a script');
    let args: string[] = [];
    if (typeof given === 'string') args = splitShellWords(given);
    else if (Array.isArray(given) && given.every((a) => typeof a === 'string')) args = given;
    else if (given !== undefined) throw new Error('payload.args must be an array of strings or one string of shell words');
    return { script, args };
  }
  // A validator's feedback, appended to the prompt of a task's next round, is no argument: the script reads it from
  // $SPARKQ_VALIDATOR_FEEDBACK.
  const words = splitShellWords(commandOf(prompt ?? ''));
  if (words.length === 0) throw new Error('the task names no script: put the script name and its arguments in the prompt, or {"script": …, "args": […]} in the payload');
  return { script: words[0]!, args: words.slice(1) };
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * One index per set of script dirs, kept for the life of the process (a worker runs many tasks): every lookup still
 * rebuilds it, so it is exact, but a rebuild re-reads only the files whose mtime or size changed, not every header.
 */
const indexes = new Map<string, ScriptIndex>();

function scriptIndexOf(scriptDirs: readonly string[]): ScriptIndex {
  const key = scriptDirs.join('\0');
  let index = indexes.get(key);
  if (!index) {
    if (indexes.size >= 8) indexes.clear();
    index = new ScriptIndex([...scriptDirs]);
    indexes.set(key, index);
  }
  index.rebuild();
  return index;
}

/**
 * The script's real path, which must lie inside one of the script dirs (after resolving symlinks): a name from the
 * index, or a path relative to a script dir. Absolute paths and `..` are refused outright.
 */
export function resolveScript(name: string, scriptDirs: readonly string[]): string {
  if (path.isAbsolute(name) || /^[A-Za-z]:/.test(name)) throw new Error(`script ${name}: absolute paths are not allowed; name a script inside the script dirs (${scriptDirs.join(', ')})`);
  if (name.split(/[\\/]/).includes('..')) throw new Error(`script ${name}: ".." is not allowed; name a script inside the script dirs (${scriptDirs.join(', ')})`);
  const index = scriptIndexOf(scriptDirs);
  const candidates: string[] = [];
  const entry = index.get(name);
  if (entry) candidates.push(entry.path);
  for (const d of scriptDirs) candidates.push(path.resolve(d, name));
  for (const c of candidates) {
    let real: string;
    try {
      real = fs.realpathSync(c);
    } catch {
      continue;
    }
    const insideSome = scriptDirs.some((d) => {
      try {
        return isInside(fs.realpathSync(d), real);
      } catch {
        return false;
      }
    });
    if (!insideSome) throw new Error(`script ${name} resolves to ${real}, outside the script dirs (${scriptDirs.join(', ')}); symlinks may not lead out of them`);
    if (!fs.statSync(real).isFile()) continue;
    return real;
  }
  throw new Error(`no script ${JSON.stringify(name)} in the script dirs (${scriptDirs.join(', ')}); \`sparkq scripts\` lists them`);
}

function lastLines(text: string, n: number): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-n).join('\n');
}

function bounded(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

/** Runs a script from the script dirs with the tool's interpreter: argv only, never a shell. */
export const scriptExecutor: Executor = {
  async run(ctx: ExecContext): Promise<ExecOutcome> {
    const dirs = resolveScriptDirs(ctx.config, ctx.workspaceDir);
    let req: ScriptRequest;
    let scriptPath: string;
    try {
      req = scriptRequest(ctx.task.prompt, ctx.task.payload);
      scriptPath = resolveScript(req.script, dirs);
    } catch (e) {
      return { status: 'failed', error: e instanceof Error ? e.message : String(e) };
    }
    const interpreter = ctx.tool.interpreter ?? ctx.tool.command;
    const command = interpreter ?? scriptPath;
    const args = interpreter ? [...ctx.tool.args, scriptPath, ...req.args] : [...ctx.tool.args, ...req.args];
    ctx.output(`$ ${[command, ...args].map(displayWord).join(' ')}\n`, 'info');
    const r = await runProcess({
      command,
      args,
      cwd: ctx.cwd,
      env: ctx.env,
      signal: ctx.signal,
      onChunk: (chunk, stream) => ctx.output(chunk, stream),
      tailChars: LIMITS.output,
      ...(ctx.spawner ? { spawner: ctx.spawner } : {}),
    });
    const base = { stdout: r.stdoutTail, stderr: r.stderrTail };
    if (r.spawnError) return { status: 'failed', error: r.spawnError, ...base };
    if (r.stopped) return { status: 'failed', error: 'stopped', ...base };
    if (r.exitCode === 0) {
      const last = lastLines(r.stdoutTail, 1);
      return {
        status: 'succeeded',
        summary: bounded(last || 'exit 0', LIMITS.summary),
        data: { exitCode: 0, script: path.relative(ctx.workspaceDir, scriptPath), args: req.args, output: lastLines(r.stdoutTail, 50) },
        ...base,
      };
    }
    const how = r.exitCode !== null ? `exit ${r.exitCode}` : `killed by ${r.signal ?? 'a signal'}`;
    // The last line of stderr is where tools put the reason (a Python exception, `set -e`'s command); the whole tail
    // is kept in the task's stderr.
    const tail = lastLines(r.stderrTail, 1) || lastLines(r.stdoutTail, 1);
    return {
      status: 'failed',
      error: bounded(`${how}${tail ? `: ${tail}` : ''}`, LIMITS.error),
      data: { exitCode: r.exitCode, signal: r.signal, script: path.relative(ctx.workspaceDir, scriptPath), args: req.args },
      ...base,
    };
  },
};

/** A word as a person would type it, for the "about to run" line only (never executed). */
function displayWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
