import * as assert from 'node:assert/strict';
import type { PlanReport, Queue, Report, Task } from '../../../src/core/model';
import { renderReport } from '../../../src/extension/reportText';
import { fakeQueue, fakeTask } from '../../support/model';
import { formatClock, holdOf, holdText, queueContextValue, queueDescription, queuePauseText, taskContextValue, taskDescription } from '../../../src/extension/views/taskText';

const NOW = Date.parse('2026-11-21T12:00:00Z');

const task = (over: Partial<Task> = {}): Task => fakeTask({ attempt: 1, createdAt: new Date(NOW - 65_000).toISOString(), ...over });
const queue = (over: Partial<Queue> = {}): Queue =>
  fakeQueue({ createdAt: new Date(NOW).toISOString(), counts: { queued: 2, running: 0, succeeded: 0, failed: 0 }, ...over });

describe('extension text (tree rows without vscode)', () => {
  it('says what holds a queued task back: failed dependencies first, then unfinished ones, then a retry delay', () => {
    assert.equal(holdOf(task(), NOW), null);
    assert.equal(holdOf(task({ waitingOn: ['tsk_b', 'tsk_c'] }), NOW), 'waiting');
    assert.equal(holdOf(task({ waitingOn: ['tsk_b', 'tsk_c'], blockedBy: ['tsk_c'] }), NOW), 'blocked');
    assert.equal(holdOf(task({ notBefore: new Date(NOW + 60_000).toISOString() }), NOW), 'retry-later');
    assert.equal(holdOf(task({ notBefore: new Date(NOW - 1).toISOString() }), NOW), null);
    assert.equal(holdOf(task({ status: 'running', waitingOn: ['tsk_b'] }), NOW), null);
    assert.equal(holdText(task({ waitingOn: ['tsk_b', 'tsk_c'] }), NOW), 'waiting on 2');
    assert.equal(holdText(task({ waitingOn: ['tsk_b', 'tsk_c'], blockedBy: ['tsk_b', 'tsk_c'] }), NOW), 'blocked by tsk_b (+1)');
  });

  it('puts the hold between the tool and the timing, and flags it in the context value', () => {
    assert.equal(taskDescription(task({ waitingOn: ['tsk_b'] }), NOW), 'llm-codex · waiting on 1 · queued 1m 5s ago');
    assert.equal(taskDescription(task(), NOW), 'llm-codex · queued 1m 5s ago');
    assert.equal(taskContextValue(task({ blockedBy: ['tsk_b'], waitingOn: ['tsk_b'] })), 'sparkq:task+queued+blocked');
    assert.equal(taskContextValue(task({ status: 'running', stale: true })), 'sparkq:task+running+stale');
    assert.equal(taskContextValue(task({ status: 'failed' })), 'sparkq:task+failed');
  });

  it('shows a paused queue in its description and context value', () => {
    const until = new Date(NOW + 3_600_000).toISOString();
    assert.equal(queuePauseText(queue({ paused: true, pausedUntil: until }), NOW), `paused until ${formatClock(until, NOW)}`);
    assert.match(formatClock(until, NOW), /^\d\d:\d\d$/);
    assert.match(formatClock(new Date(NOW + 3 * 86_400_000).toISOString(), NOW), /^[A-Z][a-z]{2} \d{1,2} \d\d:\d\d$/);
    assert.equal(queueDescription(queue({ paused: true }), NOW), 'paused · 2 queued');
    assert.equal(queueDescription(queue(), NOW), '2 queued');
    assert.equal(queueContextValue(queue({ paused: true }), true), 'sparkq:queue+active+paused+worker');
    assert.equal(queueContextValue(queue({ paused: true, status: 'ended' }), false), 'sparkq:queue+ended');
    assert.equal(queueContextValue(queue(), false), 'sparkq:queue+active');
  });

  it('renders the usage report as one Markdown table per grouping with a total row', () => {
    const row = { tasks: 3, succeeded: 2, failed: 1, runMs: 65_000, inputTokens: 12_345, cachedInputTokens: 0, outputTokens: 678, reasoningTokens: 0, costUsd: 0.01234 };
    const reports: Report[] = [
      { by: 'tool', session: 'api', rows: [{ key: 'llm-codex', ...row }], total: row },
      { by: 'day', session: 'api', rows: [{ key: '2026-11-21', ...row }], total: row },
    ];
    const md = renderReport(reports, '2026-11-21T12:00:00.000Z');
    assert.match(md, /^# SparkQ usage report — session api/);
    assert.match(md, /## By tool\n\n\| TOOL \| TASKS/);
    assert.match(md, /\| llm-codex \| 3 \| 2 \| 1 \| 1m 5s \| 12,345 \| 0 \| 678 \| \$0\.0123 \|/);
    assert.match(md, /## By day \(UTC, of finishing\)/);
    assert.match(md, /\| \*\*total\*\* \|/);
    assert.match(renderReport([{ by: 'tool', session: null, rows: [], total: { ...row, tasks: 0 } }], 'now'), /No tasks yet\./);
  });

  it('renders what a plan bought above its tables: speed-up, critical path as it ran, Codex tokens at API prices', () => {
    const row = { tasks: 4, succeeded: 4, failed: 0, runMs: 100_000, inputTokens: 1_000_000, cachedInputTokens: 500_000, outputTokens: 100_000, reasoningTokens: 0, costUsd: 0 };
    const plan: PlanReport = {
      id: 'login',
      tasks: 4,
      unfinished: 0,
      checks: 0,
      firstStartAt: '2026-11-21T12:00:00.000Z',
      lastFinishAt: '2026-11-21T12:00:50.000Z',
      wallClockMs: 50_000,
      serialMs: 100_000,
      speedup: 2,
      parallelShare: 0.85,
      criticalPath: { runMs: 50_000, tasks: [{ key: 'schema', id: 'tsk_a', runMs: 20_000 }, { key: 'api', id: 'tsk_b', runMs: 30_000 }] },
      codex: { tasks: 2, inputTokens: 1_000_000, cachedInputTokens: 500_000, outputTokens: 100_000, costUsd: 0, pricedAt: [{ model: 'gpt-5', costUsd: 1.6875 }] },
      naive: { model: 'claude-sonnet-4-5', tasks: 2, inputTokens: 1_000_000, cachedInputTokens: 500_000, outputTokens: 100_000, costUsd: 3.15, actualCostUsd: 0, savedUsd: 3.15, savedShare: 1, timeSavedMs: 50_000 },
    };
    const md = renderReport([{ by: 'tool', session: null, rows: [{ key: 'llm-codex', ...row }], total: row, plan }], 'now');
    assert.match(md, /^# SparkQ usage report — plan login/);
    assert.match(md, /`sparkq report --plan login --by …`/);
    assert.match(md, /\| 50 s \| 1m 40s \| 2× \| 85% \| 4 \| 0 \|/);
    assert.match(md, /Critical path as it ran \(50 s\): schema \(20 s\) → api \(30 s\)/);
    assert.match(md, /- gpt-5: \$1\.6875/);
    assert.ok(md.indexOf('## Plan login') < md.indexOf('## By tool'), 'the plan first, then its tables');
    assert.match(renderReport([{ by: 'tool', session: null, rows: [], total: { ...row, tasks: 0 }, plan: { ...plan, firstStartAt: null } }], 'now'), /None of its 4 tasks has run yet\./);
  });
});
