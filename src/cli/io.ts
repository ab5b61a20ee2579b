import * as fs from 'node:fs';

/**
 * Everything a command touches outside the queue: its streams, environment and folder. Commands never reach for
 * `process` themselves, so the whole program could run in-process with captured streams.
 */
export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** All of standard input, for `--prompt-file -` and `--data-file -`. */
  readStdin(): string;
  /** Calls `cb` on SIGINT or SIGTERM (for `sparkq serve`) instead of the default exit; returns an unsubscribe. */
  onStopSignal(cb: (signal: NodeJS.Signals) => void): () => void;
}

export function processIo(): CliIo {
  // `sparkq tasks | head -1`: once the reader is gone, drop further output rather than die of EPIPE in the middle of
  // the command (which may own the queue and must still hand it over).
  let readerGone = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') readerGone = true;
    else throw e;
  });
  return {
    stdout: {
      write: (s: string) => readerGone || process.stdout.write(s),
      get isTTY() {
        return process.stdout.isTTY;
      },
    },
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    readStdin: () => fs.readFileSync(0, 'utf8'),
    onStopSignal: (cb) => {
      const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
      for (const s of signals) process.on(s, cb);
      return () => {
        for (const s of signals) process.off(s, cb);
      };
    },
  };
}

/**
 * Colour only for a person at a terminal: stdout is a TTY and NO_COLOR (https://no-color.org) is unset or empty.
 * FORCE_COLOR=1 turns it on without a TTY (for tests and `less -R`); NO_COLOR still wins.
 */
export function wantsColour(io: CliIo): boolean {
  const no = io.env['NO_COLOR'];
  if (no !== undefined && no !== '') return false;
  const force = io.env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true;
  return io.stdout.isTTY === true;
}
