import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

/** A fresh temp folder per test, removed afterwards unless SPARKQ_KEEP_TMP is set (for a post-mortem). */
export function tempDir(prefix = 'sparkq-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => (process.env['SPARKQ_KEEP_TMP'] ? undefined : fs.rmSync(dir, { recursive: true, force: true })) };
}

/** Name → sha256 of every file below `dir`, to prove that nothing was rewritten. */
export function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}
