// Cold start alone (the part of `npm run bench` that opens a store with 100,000 journal records in a fresh
// process), for iterating on replay speed: `node --expose-gc --import tsx bench/cold.ts [records] [runs]`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleChild, runChild } from './lib/child-protocol';
import { buildUnsnapshottedJournal } from './lib/sparkq';

async function main(): Promise<void> {
  const records = Number(process.argv[2] ?? 100_000);
  const runs = Number(process.argv[3] ?? 5);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkq-cold-'));
  try {
    const child = bundleChild(path.resolve(__dirname, '..'), path.join(tmp, 'child'));
    const dir = path.join(tmp, 'cold');
    const { journalRecords } = await buildUnsnapshottedJournal(dir, records);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runChild(child, ['open', dir]);
      if (r.kind !== 'open') throw new Error('the cold-start child answered with the wrong kind of result');
      times.push(r.openMs);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`cold start, ${journalRecords} journal records: ${times.map((t) => (t / 1000).toFixed(2)).join(', ')} s; median ${(sorted[Math.floor(sorted.length / 2)]! / 1000).toFixed(2)} s`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
void main();
