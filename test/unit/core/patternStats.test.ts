import { strict as assert } from 'node:assert';
import type { Task } from '../../../src/core/model';
import { median, patternStats, patternStatsCells, patternStatsMarkdown } from '../../../src/core/patternStats';
import { fakeTask } from '../../support/model';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);
const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

/** A task made at second `at` that ran from `at + 1` for `runS` seconds (when it ran). */
function task(id: string, over: Partial<Task> & { at: number; runS?: number }): Task {
  const { at, runS, ...rest } = over;
  return fakeTask({
    id,
    createdAt: iso(at),
    ...(runS !== undefined ? { startedAt: iso(at + 1), finishedAt: iso(at + 1 + runS) } : {}),
    ...rest,
  });
}
const A = (hash = H1) => ({ name: 'api-endpoint', hash });
const B = { name: 'bugfix', hash: H2 };

describe('patterns table from history', () => {
  it('median of odd and even counts, null of none', () => {
    assert.equal(median([]), null);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('counts uses (a requeued copy is the same use), first-try success, medians per settled use and total cost, exactly', () => {
    const history: Task[] = [
      // api-endpoint, use 1: first try.
      task('tsk_1', { at: 0, runS: 10, pattern: A(), status: 'succeeded', attempt: 1, usage: { inputTokens: 100, outputTokens: 50, costUsd: 0.01 } }),
      // use 2: failed, requeued, failed, requeued, succeeded on the copy's 2nd attempt.
      task('tsk_2', { at: 10, runS: 20, pattern: A(), status: 'failed', attempt: 1, usage: { inputTokens: 200, outputTokens: 100, costUsd: 0.02 } }),
      task('tsk_3', { at: 40, runS: 5, pattern: A(), status: 'failed', attempt: 1, retryOf: 'tsk_2', usage: { inputTokens: 10, cachedInputTokens: 5, costUsd: 0.001 } }),
      task('tsk_4', { at: 50, runS: 30, pattern: A(), status: 'succeeded', attempt: 2, retryOf: 'tsk_3', usage: { inputTokens: 300, outputTokens: 100, costUsd: 0.03 } }),
      // use 3: a newer version of the file, not run yet.
      task('tsk_5', { at: 90, pattern: A(H2), status: 'queued', attempt: 0 }),
      // use 4: succeeded on its 2nd attempt (a retry of the same task), no usage reported.
      task('tsk_6', { at: 95, runS: 4, pattern: A(), status: 'succeeded', attempt: 2, archived: true }),
      // bugfix: a first try that failed, and a copy whose original was purged.
      task('tsk_7', { at: 100, runS: 1, pattern: B, status: 'failed', attempt: 1 }),
      task('tsk_9', { at: 110, runS: 2, pattern: B, status: 'succeeded', attempt: 1, retryOf: 'tsk_gone' }),
      // No pattern: not counted.
      task('tsk_8', { at: 120, runS: 1, status: 'succeeded', attempt: 1, usage: { inputTokens: 9999, costUsd: 9 } }),
    ];
    const rows = patternStats([...history].reverse()); // newest first, as listTasks gives them
    assert.deepEqual(rows, [
      {
        pattern: 'api-endpoint',
        versions: 2,
        uses: 4,
        settled: 3,
        succeeded: 3,
        firstTry: 1,
        firstTryRate: 0.333,
        medianRounds: 1, // [1, 3, 1]: use 2 ran three rounds
        medianAttempts: 2, // [1, 1+1+2, 2]
        medianTokens: 430, // [150, 300+10+400]; use 4 reported none
        medianRunMs: 10_000, // [10 s, 20+5+30 s, 4 s]
        costUsd: 0.061,
        validated: 0,
        firstRoundPassed: 0,
        validationPassRate: null,
      },
      {
        pattern: 'bugfix',
        versions: 1,
        uses: 2,
        settled: 2,
        succeeded: 1,
        firstTry: 0,
        firstTryRate: 0,
        medianRounds: 1,
        medianAttempts: 1,
        medianTokens: null,
        medianRunMs: 1_500,
        costUsd: 0,
        validated: 0,
        firstRoundPassed: 0,
        validationPassRate: null,
      },
    ]);
    assert.deepEqual(patternStatsCells(rows[0]!), ['api-endpoint', '4 (1 running)', '33% (1/3)', '1', '2', '430', '10.0 s', '$0.0610', 'n/a']);
    assert.equal(
      patternStatsMarkdown(rows),
      [
        '| Pattern | Uses | First-try success | Median rounds | Median attempts | Median tokens | Median run time | Cost (USD) | Validation pass (1st round) |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        '| api-endpoint | 4 (1 running) | 33% (1/3) | 1 | 2 | 430 | 10.0 s | $0.0610 | n/a |',
        '| bugfix | 2 | 0% (0/2) | 1 | 1 | n/a | 1.5 s | $0.0000 | n/a |',
      ].join('\n'),
    );
  });

  it('the validation pass rate: of the uses a validator judged in their first round, the ones it passed then', () => {
    const spec = { tool: 'llm-haiku', maxRounds: 2 };
    const v = (status: 'pending' | 'passed' | 'failed', round = 1) => ({ status, round, maxRounds: 2, by: ['tsk_v'], feedback: null, spec });
    const rows = patternStats([
      task('tsk_1', { at: 0, runS: 1, status: 'succeeded', attempt: 1, pattern: A(), validation: v('passed') }),
      task('tsk_2', { at: 1, runS: 1, status: 'failed', attempt: 1, pattern: A(), validation: v('failed') }),
      task('tsk_3', { at: 2, runS: 1, status: 'succeeded', attempt: 1, pattern: A(), retryOf: 'tsk_2', validation: v('passed', 2) }),
      task('tsk_4', { at: 3, runS: 1, status: 'succeeded', attempt: 1, pattern: A(), validation: v('pending') }),
      task('tsk_5', { at: 4, runS: 1, status: 'succeeded', attempt: 1, pattern: A() }),
    ]);
    assert.equal(rows[0]!.validated, 2);
    assert.equal(rows[0]!.firstRoundPassed, 1);
    assert.equal(rows[0]!.validationPassRate, 0.5);
    assert.equal(patternStatsCells(rows[0]!)[8], '50% (1/2)');
    // Rounds per use: tsk_2's use ran two (its fix round tsk_3), the others one; the median of [1, 2, 1, 1].
    assert.equal(rows[0]!.medianRounds, 1);
    const twoRounds = patternStats([task('tsk_2', { at: 1, runS: 1, status: 'failed', attempt: 1, pattern: A(), validation: v('failed') }), task('tsk_3', { at: 2, runS: 1, status: 'succeeded', attempt: 1, pattern: A(), retryOf: 'tsk_2', validation: v('passed', 2) })]);
    assert.equal(twoRounds[0]!.medianRounds, 2);
    assert.equal(patternStatsCells(twoRounds[0]!)[3], '2');
  });

  it('no tasks with a pattern: no rows; a use still running has no rates yet', () => {
    assert.deepEqual(patternStats([task('tsk_1', { at: 0, status: 'succeeded', attempt: 1 })]), []);
    const [row] = patternStats([task('tsk_1', { at: 0, pattern: B, status: 'running', attempt: 1, usage: { costUsd: 0.5 } })]);
    assert.deepEqual(
      { uses: row!.uses, settled: row!.settled, rate: row!.firstTryRate, attempts: row!.medianAttempts, cost: row!.costUsd },
      { uses: 1, settled: 0, rate: null, attempts: null, cost: 0.5 },
    );
  });
});
