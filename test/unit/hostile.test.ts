import { strict as assert } from 'node:assert';
import { wellFormedProblem } from '../../src/core/wellFormed';

/** `[[[…]]]` `depth` levels deep, built without recursion so that a test can go far beyond the stack. */
function nestedArrays(depth: number, inner: unknown = 1): unknown {
  let v: unknown = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}
function nestedObjects(depth: number, inner: unknown = 1): unknown {
  let v: unknown = inner;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('wellFormedProblem: malformed Unicode and deep nesting, found without recursion', () => {
  it('passes well-formed values of every kind, surrogate pairs included', () => {
    for (const v of [null, undefined, true, 0, -1.5, '', 'plain', 'emoji 😀 and 𝄞', [], {}, [1, 'a', null, { b: ['😀'] }], { '😀': { k: [[]] } }]) {
      assert.equal(wellFormedProblem(v, 'payload', 64), null, JSON.stringify(v));
    }
  });

  it('refuses a lone surrogate anywhere in a string, naming the field, the unit and its position', () => {
    const cases: [string, number, string][] = [
      ['a\ud800b', 1, '\\ud800'],
      ['x\udbff', 1, '\\udbff'],
      ['\udc00', 0, '\\udc00'],
      ['😀\udc00\ud800', 2, '\\udc00'], // a low half before a high half is not a pair
    ];
    for (const [s, at, unit] of cases) {
      const p = wellFormedProblem(s, 'prompt', 64);
      assert.ok(p !== null, JSON.stringify(s));
      assert.ok(p.startsWith('prompt is not well-formed Unicode'), p);
      assert.ok(p.includes(`${unit} at character ${at}`), p);
    }
  });

  it('names the way down to a bad string or key inside arrays and objects', () => {
    assert.match(wellFormedProblem({ files: ['ok', 'b\ud800'] }, 'data', 64)!, /^data\.files\[1\] is not well-formed Unicode/);
    assert.match(wellFormedProblem({ 'odd key': { x: '\udfff' } }, 'payload', 64)!, /^payload\["odd key"\]\.x is not/);
    const badKey = wellFormedProblem({ ok: 1, ['k\ud800']: 2 }, 'payload', 64)!;
    assert.match(badKey, /^payload\["k\\ud800"\] \(a key\) is not well-formed Unicode/);
    assert.equal(wellFormedProblem(badKey, 'message', 1), null, 'the message itself is well-formed: the bad key is quoted escaped');
    assert.match(wellFormedProblem(['\ud800'], '', 64)!, /^\[0\] is not/);
  });

  it('allows exactly maxDepth levels and refuses one more, naming the limit and where', () => {
    for (const make of [nestedArrays, nestedObjects]) {
      assert.equal(wellFormedProblem(make(64), 'payload', 64), null);
      const p = wellFormedProblem(make(65), 'payload', 64);
      assert.ok(p !== null);
      assert.match(p, /^payload nests arrays and objects more than 64 levels deep \(at payload(\[0\]|\.a)+\); the limit is 64/);
    }
    assert.equal(wellFormedProblem([[], [[]], { a: [] }], 'x', 3), null, 'depth is the deepest branch, not the sum');
    assert.match(wellFormedProblem([[], [[[]]]], 'x', 3)!, /more than 3 levels/);
    assert.match(wellFormedProblem([], 'x', 0)!, /more than 0 levels/);
    assert.equal(wellFormedProblem('text', 'x', 0), null, 'a scalar is level 0');
  });

  it('walks 100,000 levels of arrays or objects without overflowing the stack, and quotes a short path', () => {
    for (const make of [nestedArrays, nestedObjects]) {
      const p = wellFormedProblem(make(100_000), 'data', 64);
      assert.ok(p !== null);
      assert.ok(p.length < 600, `one short line, not ${p.length} characters`);
      assert.match(p, /more than 64 levels/);
    }
    // The stack itself would fail long before: what the walker replaces.
    assert.throws(() => JSON.stringify(nestedArrays(100_000)), RangeError);
  });

  it('ends on objects that refer to themselves or share children (in-process callers)', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    assert.match(wellFormedProblem(cyclic, 'payload', 64)!, /more than 64 levels/);
    // 2^40 paths through 40 shared objects: bounded by the count of values looked at, not by memory.
    let shared: unknown = 'leaf';
    for (let i = 0; i < 40; i++) shared = [shared, shared];
    assert.match(wellFormedProblem(shared, 'payload', 64)!, /holds more than \d+ values/);
  });

  it('finds the first problem in document order', () => {
    assert.match(wellFormedProblem({ a: ['ok', nestedArrays(10)], b: '\ud800' }, 'p', 5)!, /^p nests .* \(at p\.a\[1\]/);
    assert.match(wellFormedProblem({ a: '\ud800', b: nestedArrays(10) }, 'p', 5)!, /^p\.a is not well-formed/);
  });
});
