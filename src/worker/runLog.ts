import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A task's whole output, in `<runDir>/output.log`, written off the worker's critical path: the directory, the file and
 * every write go through the thread pool, so a tool's next line, the task's outcome and the next claim never wait on
 * the disk. Chunks that arrive while a write is in flight go out together in the next one, in order. Nothing here is
 * fsynced: the log is a convenience; the database keeps the bounded tails durably. A failure (a full
 * disk) drops the rest of the log and never fails the task. `close()` resolves once everything is written and the file
 * is closed; the runner waits for every log before it returns.
 */
export class RunLog {
  private fd: number | null = null;
  private pending: string[] = [];
  private busy = true; // until the file is open
  private failed = false;
  private closing = false;
  private whenClosed: (() => void) | null = null;
  readonly closed: Promise<void>;

  constructor(readonly runDir: string) {
    this.closed = new Promise<void>((resolve) => (this.whenClosed = resolve));
    fs.mkdir(runDir, { recursive: true, mode: 0o700 }, (e) => {
      if (e) return this.fail();
      fs.open(path.join(runDir, 'output.log'), 'a', 0o600, (e2, fd) => {
        if (e2) return this.fail();
        this.fd = fd;
        this.busy = false;
        this.pump();
      });
    });
  }

  write(text: string): void {
    if (this.failed || text === '') return;
    this.pending.push(text);
    if (!this.busy) this.pump();
  }

  /** No more writes: resolves when what was written is in the file and the file is closed. */
  close(): Promise<void> {
    this.closing = true;
    if (!this.busy) this.pump();
    return this.closed;
  }

  private pump(): void {
    if (this.failed) return;
    if (this.pending.length === 0) {
      if (this.closing) this.finish();
      return;
    }
    const buf = Buffer.from(this.pending.length === 1 ? this.pending[0]! : this.pending.join(''), 'utf8');
    this.pending = [];
    this.busy = true;
    this.writeAll(buf, 0);
  }

  private writeAll(buf: Buffer, off: number): void {
    fs.write(this.fd!, buf, off, buf.length - off, null, (e, n) => {
      if (e) return this.fail();
      if (off + n < buf.length) return this.writeAll(buf, off + n);
      this.busy = false;
      this.pump();
    });
  }

  private fail(): void {
    // The terminal and the database still have the output; a full disk must not fail the task.
    this.failed = true;
    this.pending = [];
    this.finish();
  }

  private finish(): void {
    const fd = this.fd;
    this.fd = null;
    this.busy = true; // nothing more is written
    const done = () => {
      this.whenClosed?.();
      this.whenClosed = null;
    };
    if (fd === null) done();
    else fs.close(fd, () => done());
  }
}
