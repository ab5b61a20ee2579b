import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameError, MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, checkServerMessage, encodeFrame } from '../../../src/ipc/frames';
import { WelcomeMessage } from '../../../src/ipc/protocol';

/*
 * The client's check of the owner's welcome is written by hand (frames.ts keeps zod out of client processes); it must
 * accept and reject exactly what the WelcomeMessage schema does, and return what the schema returns.
 */
describe('ipc frames: the client checks a welcome by hand, as the schema would', () => {
  const good = { t: 'welcome', owner: { pid: 4242, generation: 7, role: 'serve', since: '2026-12-07T11:00:00.000Z' } };

  it('returns the same owner as the schema, unknown keys dropped', () => {
    const withExtras = { ...good, extra: 1, owner: { ...good.owner, socketPath: '/x', more: { a: 1 } } };
    for (const v of [good, withExtras]) assert.deepEqual(checkServerMessage(v), WelcomeMessage.parse(v));
  });

  it('refuses what the schema refuses, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ t: 'welcome' }, /owner: not an object/],
      [{ t: 'welcome', owner: [] }, /owner: not an object/],
      [{ ...good, owner: { ...good.owner, pid: '4242' } }, /owner\.pid: not an integer/],
      [{ ...good, owner: { ...good.owner, pid: 1.5 } }, /owner\.pid: not an integer/],
      [{ ...good, owner: { ...good.owner, generation: 2 ** 60 } }, /owner\.generation: not an integer/],
      [{ ...good, owner: { ...good.owner, role: null } }, /owner\.role: not a string/],
      [{ ...good, owner: { ...good.owner, since: undefined } }, /owner\.since: not a string/],
    ];
    for (const [v, pattern] of bad) {
      assert.equal(WelcomeMessage.safeParse(v).success, false, `the schema refuses ${JSON.stringify(v)}`);
      assert.throws(() => checkServerMessage(v), (e: unknown) => e instanceof FrameError && pattern.test(e.message));
    }
  });

  it('agrees with the schema on arbitrary owners', () => {
    const value = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.boolean(), fc.constant(2 ** 53), fc.dictionary(fc.string(), fc.integer()));
    const owner = fc.oneof(
      fc.record({ pid: value, generation: value, role: value, since: value }, { requiredKeys: [] }),
      fc.record({ pid: fc.integer(), generation: fc.integer(), role: fc.string(), since: fc.string() }),
      value,
    );
    fc.assert(
      fc.property(owner, (o) => {
        const v = { t: 'welcome', owner: o };
        const schema = WelcomeMessage.safeParse(v);
        let mine: unknown;
        try {
          mine = checkServerMessage(v);
        } catch (e) {
          assert.ok(e instanceof FrameError);
          assert.equal(schema.success, false, `the schema accepts what the hand check refuses: ${JSON.stringify(v)}`);
          return;
        }
        assert.ok(schema.success, `the hand check accepts what the schema refuses: ${JSON.stringify(v)}`);
        assert.deepEqual(mine, schema.data);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('ipc frames: a lower limit for the first frame (the hello) than for the rest', () => {
  const header = (length: number) => {
    const h = Buffer.alloc(FRAME_HEADER_BYTES);
    h.writeUInt32BE(length, 0);
    return h;
  };

  it('refuses a first frame over the hello limit as soon as its header arrives, holding nothing', () => {
    for (const split of [false, true]) {
      const d = new FrameDecoder(MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES);
      const h = header(MAX_FRAME_BYTES);
      const push = () => (split ? (d.push(h.subarray(0, 2)), d.push(h.subarray(2))) : d.push(h));
      assert.throws(push, (e: unknown) => e instanceof FrameError && e.message === `frame of ${MAX_FRAME_BYTES} bytes is over the 4096-byte limit for the first frame (the hello)`);
      assert.equal(d.pendingBytes, 0);
      assert.throws(() => d.push(Buffer.from('[')), /already broke the protocol/);
    }
  });

  it('takes a first frame of exactly the limit, then frames up to the full limit, also in the same chunk', () => {
    const hello = encodeFrame({ t: 'hello', pad: 'x'.repeat(MAX_HELLO_FRAME_BYTES - 22) });
    assert.equal(hello.length, FRAME_HEADER_BYTES + MAX_HELLO_FRAME_BYTES);
    const big = encodeFrame({ t: 'req', blob: 'y'.repeat(1024 * 1024) });
    for (const chunks of [[Buffer.concat([hello, big])], [hello, big], [hello.subarray(0, 3), Buffer.concat([hello.subarray(3), big.subarray(0, 5)]), big.subarray(5)]]) {
      const d = new FrameDecoder(MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES);
      const bodies = chunks.flatMap((c) => d.push(c));
      assert.deepEqual(bodies.map((b) => b.length), [MAX_HELLO_FRAME_BYTES, big.length - FRAME_HEADER_BYTES]);
    }
    assert.throws(() => new FrameDecoder(MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES).push(header(MAX_HELLO_FRAME_BYTES + 1)), /over the 4096-byte limit for the first frame/);
    // Over the limit for every frame, it is reported as that.
    assert.throws(() => new FrameDecoder(MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES).push(header(2 ** 31)), (e: unknown) => e instanceof FrameError && /over the 8388608-byte limit$/.test(e.message));
  });

  it('keeps the full limit for every frame when no first-frame limit is given (the client side)', () => {
    const d = new FrameDecoder();
    assert.equal(d.push(encodeFrame({ blob: 'z'.repeat(64 * 1024) })).length, 1);
    assert.throws(() => new FrameDecoder().push(header(MAX_FRAME_BYTES + 1)), (e: unknown) => e instanceof FrameError && /over the 8388608-byte limit$/.test(e.message));
  });
});
