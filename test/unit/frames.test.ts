import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { FrameError, checkServerMessage } from '../../src/ipc/frames';
import { WelcomeMessage } from '../../src/ipc/protocol';

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
