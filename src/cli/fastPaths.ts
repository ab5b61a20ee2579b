import type { Command } from 'commander';
import type { CliIo } from './io';
import { buildProgram, runCli } from './program';

/*
 * Answers the program knows by heart: `--version`, `--help` and every command's help, and the usage a group command
 * alone prints. They depend on nothing but the program itself, so the build runs the real program once for each of
 * these command lines and stores the exact output and exit code in dist/cli.js, which answers them without loading
 * the program (it only would have spent its time evaluating modules). Commander wraps help to the terminal's width,
 * so the table is made for output that is not a terminal (80 columns), and main.ts uses it only in that case.
 */

export interface FastPathTable {
  /** Each distinct text once. */
  texts: string[];
  /** argv joined by NUL → [exit code, stdout's text index, stderr's text index] (-1: nothing written). */
  answers: Record<string, [number, number, number]>;
}

export const FAST_PATH_KEY_SEPARATOR = '\u0000';

/** The command lines the table answers: the program's and each command's help in all three spellings. */
export function fastPathCommandLines(): string[][] {
  const lines: string[][] = [[], ['--version'], ['-v'], ['--help'], ['-h'], ['help']];
  const program = buildProgram(captureIo().io);
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const p = [...prefix, sub.name()];
      lines.push([...p, '--help'], [...p, '-h'], [...prefix, 'help', sub.name()]);
      if (sub.commands.length > 0) {
        // A group whose bare name runs a default subcommand (`patterns` lists them) reads the workspace: never by heart.
        if ((sub as unknown as { _defaultCommandName?: string | null })._defaultCommandName == null) lines.push(p);
        lines.push([...p, 'help']);
        walk(sub, p);
      }
    }
  };
  walk(program, []);
  return lines;
}

/** Runs the real program for each of those command lines, with captured streams. */
export async function fastPathTable(): Promise<FastPathTable> {
  const texts: string[] = [];
  const index = new Map<string, number>();
  const text = (s: string) => {
    if (s === '') return -1;
    let i = index.get(s);
    if (i === undefined) {
      i = texts.push(s) - 1;
      index.set(s, i);
    }
    return i;
  };
  const answers: FastPathTable['answers'] = {};
  for (const argv of fastPathCommandLines()) {
    const c = captureIo();
    const code = await runCli(argv, c.io);
    answers[argv.join(FAST_PATH_KEY_SEPARATOR)] = [code, text(c.out()), text(c.err())];
  }
  return { texts, answers };
}

function captureIo(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: {
      write: (s: string) => (out += s),
      isTTY: false,
    },
    stderr: { write: (s: string) => (err += s) },
    env: {},
    cwd: '/',
    readStdin: () => '',
    onStopSignal: () => () => undefined,
  };
  return { io, out: () => out, err: () => err };
}
