import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Summary, now, summarize } from './stats';

export interface FdatasyncMeasurement {
  bytes: number;
  fdatasync: Summary;
  appendAndSync: Summary;
}

/** What one journal group commit costs on this disk: append `bytes` to a file, then fdatasync it. */
export function measureFdatasync(dir: string, samples: number, bytes: number, warmup = 50): FdatasyncMeasurement {
  const file = path.join(dir, 'fdatasync-probe.bin');
  const fd = fs.openSync(file, 'a', 0o600);
  const sync: number[] = [];
  const both: number[] = [];
  try {
    const buf = randomBytes(bytes);
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = now();
      fs.writeSync(fd, buf);
      const t1 = now();
      fs.fdatasyncSync(fd);
      const t2 = now();
      if (i >= warmup) {
        sync.push(t2 - t1);
        both.push(t2 - t0);
      }
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return { bytes, fdatasync: summarize(sync), appendAndSync: summarize(both) };
}
