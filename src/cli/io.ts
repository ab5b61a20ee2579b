import * as fs from 'node:fs';

/**
 * Everything a command touches outside the queue: its streams, environment and folder. Commands never reach for
 * `process` themselves, so the whole program could run in-process with captured streams.
 */
export interface CliIo {
  stdout: {
    write(s: string): unknown;
    isTTY?: boolean;
    /**
     * Resolves once what was written has gone to the reader, so a command that prints a lot in parts (`tasks --all`)
     * holds one part at a time; false when the reader has gone (`sparkq tasks --all | head`), so it can stop early.
     */
    drain?(): Promise<boolean>;
  };
  stderr: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** All of standard input, for `--prompt-file -` and `--data-file -`. */
  readStdin(): string;
  /** Calls `cb` on SIGINT, SIGTERM or SIGHUP (serve, run) instead of the default exit; returns an unsubscribe. */
  onStopSignal(cb: (signal: NodeJS.Signals) => void): () => void;
  /**
   * Called once, right before this process becomes the queue's owner (loads the owner's code, compiles sql.js): the
   * entry file (main.ts) tunes V8 for a short life there when it expected to be a client.
   */
  prepareToOwn?: () => void;
}

export function processIo(): CliIo {
  // `sparkq tasks | head -1`: once the reader is gone, drop further output rather than die of EPIPE in the middle of
  // the command (which may own the queue and must still hand it over).
  let readerGone = false;
  let stderrGone = false;
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'EIO') stderrGone = true;
    else throw e;
  });
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // EPIPE: the reader of a pipe left; EIO: the terminal was closed under a running worker.
    if (e.code === 'EPIPE' || e.code === 'EIO') readerGone = true;
    else throw e;
  });
  return {
    stdout: {
      write: (s: string) => readerGone || process.stdout.write(s),
      get isTTY() {
        return process.stdout.isTTY;
      },
      drain: () => {
        if (readerGone || !process.stdout.writableNeedDrain) return Promise.resolve(!readerGone);
        return new Promise<boolean>((resolve) => {
          const done = () => {
            process.stdout.off('drain', done).off('close', done).off('error', done);
            resolve(!readerGone);
          };
          process.stdout.on('drain', done).on('close', done).on('error', done);
        });
      },
    },
    stderr: { write: (s: string) => stderrGone || process.stderr.write(s) },
    env: process.env,
    cwd: process.cwd(),
    readStdin: () => fs.readFileSync(0, 'utf8'),
    onStopSignal: (cb) => {
      // SIGHUP: the terminal closed (a worker terminal in VS Code, an ssh session) — stop like Ctrl+C, not die.
      const signals: NodeJS.Signals[] = process.platform === 'win32' ? ['SIGINT', 'SIGTERM'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
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
