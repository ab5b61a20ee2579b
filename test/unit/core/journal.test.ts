import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { isSparkqError } from '../../../src/core/errors';
import { JOURNAL_HEADER_BYTES, JournalWriter, encodeHeader, encodeRecord, readJournal, recordText } from '../../../src/core/store/journal';
import { tempDir } from '../../support/tmp';

describe('journal', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  function writeJournal(records: string[], baseSeq = 0): string {
    const file = path.join(t.dir, 'j.log');
    const parts = [encodeHeader(baseSeq), ...records.map((r, i) => encodeRecord(baseSeq + i + 1, Buffer.from(r)))];
    fs.writeFileSync(file, Buffer.concat(parts));
    return file;
  }

  for (const syncOn of ['thread-pool', 'event-loop'] as const) {
  it(`reads back what the writer appended, in order, after group commit (fdatasync on the ${syncOn})`, async () => {
    const file = path.join(t.dir, 'w.log');
    const w = JournalWriter.create(file, 10, 'full', { syncOn });
    const acks = [];
    for (let i = 0; i < 50; i++) acks.push(w.append(Buffer.from(`record ${i}`)));
    assert.deepEqual(
      acks.map((a) => a.seq),
      Array.from({ length: 50 }, (_, i) => 11 + i),
    );
    await Promise.all(acks.map((a) => a.durable));
    w.close();
    const r = readJournal(file);
    assert.equal(r.baseSeq, 10);
    assert.equal(r.records.length, 50);
    assert.equal(r.records[49]!.payload.toString(), 'record 49');
    assert.equal(r.tornTail, null);
    assert.equal(r.validLength, fs.statSync(file).size);
  });
  }

  it('gives each record’s payload and its UTF-8 text from the file’s bytes', () => {
    const texts = ['a', '', 'ünïcødé 😀', 'x'.repeat(70_000)];
    const r = readJournal(writeJournal(texts, 3));
    assert.deepEqual(r.records.map((x) => x.seq), [4, 5, 6, 7]);
    assert.deepEqual(r.records.map((x) => recordText(x)), texts);
    assert.deepEqual(r.records.map((x) => x.payload.toString('utf8')), texts);
    assert.equal(recordText({ seq: 1, payload: Buffer.from('plain') }), 'plain');
  });

  it('continues an intact journal after its last record', async () => {
    const file = writeJournal(['a', 'b']);
    const w = JournalWriter.continue(file, readJournal(file), 'full');
    assert.equal(w.append(Buffer.from('c')).seq, 3);
    await w.flush();
    w.close();
    assert.deepEqual(
      readJournal(file).records.map((r) => r.payload.toString()),
      ['a', 'b', 'c'],
    );
  });

  it('reports a record cut short at the end as a torn tail, at every cut point', () => {
    const file = writeJournal(['first', 'second record', 'third']);
    const full = fs.readFileSync(file);
    const lastStart = full.length - encodeRecord(3, Buffer.from('third')).length;
    for (let cut = lastStart + 1; cut < full.length; cut++) {
      fs.writeFileSync(file, full.subarray(0, cut));
      const r = readJournal(file);
      assert.equal(r.records.length, 2, `cut at ${cut}`);
      assert.deepEqual(r.tornTail, { offset: lastStart, bytes: cut - lastStart });
    }
  });

  it('treats trailing zero bytes (a power cut while extending the file) as a torn tail', () => {
    const file = writeJournal(['a']);
    fs.appendFileSync(file, Buffer.alloc(37));
    const r = readJournal(file);
    assert.equal(r.records.length, 1);
    assert.equal(r.tornTail?.bytes, 37);
  });

  it('detects every single-bit flip anywhere in the file as corruption, never as a torn tail', () => {
    const file = writeJournal(['alpha', 'beta', JSON.stringify({ t: 'task.enqueue', id: 'tsk_x' })]);
    const good = fs.readFileSync(file);
    let detected = 0;
    for (let byte = 0; byte < good.length; byte++) {
      for (const bit of [0, 3, 7]) {
        const bad = Buffer.from(good);
        bad[byte]! ^= 1 << bit;
        fs.writeFileSync(file, bad);
        assert.throws(
          () => readJournal(file),
          (e: unknown) => isSparkqError(e, 'corrupt'),
          `flip of bit ${bit} at byte ${byte} went unnoticed`,
        );
        detected++;
      }
    }
    assert.equal(detected, good.length * 3);
  });

  it('refuses an empty file, a cut header, a missing file and a sequence gap', () => {
    const file = writeJournal(['a']);
    fs.writeFileSync(file, Buffer.alloc(0));
    assert.throws(() => readJournal(file), /is empty/);
    fs.writeFileSync(file, encodeHeader(0).subarray(0, JOURNAL_HEADER_BYTES - 3));
    assert.throws(() => readJournal(file), /header is cut short/);
    assert.throws(() => readJournal(path.join(t.dir, 'nope.log')), /is missing/);
    fs.writeFileSync(file, Buffer.concat([encodeHeader(0), encodeRecord(1, Buffer.from('a')), encodeRecord(3, Buffer.from('c'))]));
    assert.throws(() => readJournal(file), /sequence 3 where 2 was expected/);
  });

  it('in repair mode returns the records before the first damage', () => {
    const file = writeJournal(['a', 'b', 'c']);
    const buf = fs.readFileSync(file);
    buf[buf.length - 3]! ^= 0xff; // inside record c's checksum
    fs.writeFileSync(file, buf);
    const r = readJournal(file, { stopAtDamage: true });
    assert.deepEqual(
      r.records.map((x) => x.payload.toString()),
      ['a', 'b'],
    );
    assert.match(String(r.damage?.message), /fails its checksum/);
  });

  for (const syncOn of ['thread-pool', 'event-loop'] as const) {
    it(`refuses appends after a failed flush and rejects the waiters (fdatasync on the ${syncOn})`, async () => {
    const file = path.join(t.dir, 'f.log');
    const w = JournalWriter.create(file, 0, 'full', { syncOn });
    // Close the descriptor underneath the writer: the next flush fails the way a dying disk would.
    fs.closeSync((w as unknown as { fd: number }).fd);
    const { durable } = w.append(Buffer.from('x'));
    await assert.rejects(durable, (e: unknown) => isSparkqError(e, 'store-failed'));
    assert.throws(() => w.append(Buffer.from('y')), (e: unknown) => isSparkqError(e, 'store-failed'));
  });
  }

  it('on the event loop: one write and one fdatasync for the records of a turn, done before their promises settle', async () => {
    const file = path.join(t.dir, 'e.log');
    const w = JournalWriter.create(file, 0, 'full', { syncOn: 'event-loop' });
    const real = { writeSync: fs.writeSync, fdatasyncSync: fs.fdatasyncSync, fdatasync: fs.fdatasync };
    const calls: string[] = [];
    // The module object itself (the namespace import above is a read-only view of it), as journal.ts reads it per call.
    const patched = createRequire(__filename)('node:fs') as Record<string, unknown>;
    patched['writeSync'] = (...a: Parameters<typeof fs.writeSync>) => (calls.push('write'), real.writeSync(...a));
    patched['fdatasyncSync'] = (fd: number) => (calls.push('fdatasyncSync'), real.fdatasyncSync(fd));
    patched['fdatasync'] = () => calls.push('fdatasync (pool)');
    try {
      const acks = Array.from({ length: 20 }, (_, i) => w.append(Buffer.from(`r${i}`)));
      assert.deepEqual(calls, [], 'nothing is written in the turn of the appends');
      assert.equal(w.syncedSeq, 0);
      let settledWith: string[] | null = null;
      await Promise.all(acks.map((a) => a.durable)).then(() => (settledWith = [...calls]));
      assert.deepEqual(settledWith, ['write', 'fdatasyncSync'], 'one batch: one write, one sync, before any promise settled');
      assert.equal(w.syncedSeq, 20);
      await w.append(Buffer.from('next turn')).durable;
      assert.deepEqual(calls, ['write', 'fdatasyncSync', 'write', 'fdatasyncSync']);
    } finally {
      Object.assign(patched, real);
    }
    w.close();
    assert.equal(readJournal(file).records.length, 21);
  });
});
