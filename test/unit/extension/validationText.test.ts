import * as assert from 'node:assert/strict';
import type { Task, TaskValidation } from '../../../src/core/model';
import { toTaskRow } from '../../../src/extension/dashboard/dashboardSchemas';
import { taskDescription } from '../../../src/extension/views/taskText';
import { shortHash, validatesText, validationBadge } from '../../../src/shared/dashboardProtocol';
import { fakeTask } from '../../support/model';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const validation = (over: Partial<TaskValidation> = {}): TaskValidation => ({
  status: 'pending',
  round: 1,
  maxRounds: 2,
  by: [],
  feedback: null,
  spec: { tool: 'run-bash' },
  ...over,
});
const task = (over: Partial<Task> = {}): Task =>
  fakeTask({ attempt: 1, createdAt: new Date(NOW - 65_000).toISOString(), startedAt: new Date(NOW - 65_000).toISOString(), finishedAt: new Date(NOW - 60_000).toISOString(), ...over });

describe('validation badge (tree rows and dashboard)', () => {
  it('says where a validated task stands in the words of sparkq tasks, with its round written out', () => {
    assert.equal(validationBadge(task({ status: 'succeeded', validation: validation() })), 'validating · round 1 of 2');
    assert.equal(validationBadge(task({ status: 'queued', validation: validation({ round: 2 }) })), 'round 2 of 2');
    assert.equal(validationBadge(task({ status: 'succeeded', validation: validation({ status: 'passed' }) })), 'passed');
    assert.equal(validationBadge(task({ status: 'succeeded', validation: validation({ status: 'passed', round: 2 }) })), 'passed · round 2 of 2');
    assert.equal(validationBadge(task({ status: 'failed', validation: validation({ status: 'failed', round: 2 }) })), 'check failed · round 2 of 2');
    assert.equal(validationBadge(task()), null);
  });

  it('puts the badge, what a validation task checks and the change badge after the timing', () => {
    const validated = task({ status: 'succeeded', validation: validation() });
    assert.equal(taskDescription(validated, NOW), 'llm-codex · took 5.0 s · validating · round 1 of 2');
    const checker = task({ status: 'running', tool: 'run-bash', validates: 'tsk_aaaaaaaaaaaa', finishedAt: null });
    assert.equal(validatesText(checker), 'checks tsk_aaaaaaaaaaaa');
    assert.equal(taskDescription(checker, NOW), 'run-bash · running 1m 5s · checks tsk_aaaaaaaaaaaa');
    const changed = task({
      status: 'succeeded',
      validation: validation({ status: 'passed' }),
      change: { branch: 'sparkq/x', baseRef: 'main', baseCommit: 'a'.repeat(40), commit: 'b'.repeat(40), worktree: '/w', filesChanged: 3, insertions: 10, deletions: 2, files: [] } as unknown as Task['change'],
    });
    assert.equal(taskDescription(changed, NOW), 'llm-codex · took 5.0 s · passed · +10 −2 · 3 files');
  });

  it('carries only the badge part of the validation in a Tasks table row', () => {
    const row = toTaskRow(task({ validation: validation({ feedback: 'long feedback', by: ['tsk_bbbbbbbbbbbb'] }), validates: null }));
    assert.deepEqual(row.validation, { status: 'pending', round: 1, maxRounds: 2 });
    assert.equal(row.validates, null);
    assert.equal(toTaskRow(task()).validation, null);
    assert.equal(shortHash('0123456789abcdef'.repeat(4)), '0123456789ab');
  });
});
