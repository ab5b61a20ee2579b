import * as vscode from 'vscode';
import type { Queue, Task } from '../../core/model';
import { shortHash, validationBadge } from '../../shared/dashboardProtocol';
import { changeBadge, mergeTargetLabel } from '../changes/changeText';
import { firstLine, formatClock, holdOf, lookOf, type TaskHold, type TaskLook, taskTiming } from './taskText';

/**
 * How a task looks wherever it is shown: icon, label, description, tooltip and the context value menus match.
 * The words (labels, descriptions, context values) are in taskText.ts, without vscode; icons and tooltips are here.
 */

export * from './taskText';

const ICONS: Record<TaskLook, [string, string | undefined]> = {
  queued: ['circle-large-outline', 'charts.blue'],
  running: ['sync~spin', 'charts.blue'],
  stale: ['warning', 'list.warningForeground'],
  succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
};

/** A queued task that cannot be claimed yet looks different from one that can. */
const HOLD_ICONS: Record<Exclude<TaskHold, null>, [string, string]> = {
  blocked: ['circle-slash', 'list.errorForeground'],
  waiting: ['watch', 'descriptionForeground'],
  'retry-later': ['history', 'descriptionForeground'],
};

const HOLD_WORDS: Record<Exclude<TaskHold, null>, string> = {
  blocked: 'Queued — blocked (a task it waits on failed)',
  waiting: 'Queued — waiting on other tasks',
  'retry-later': 'Queued — retry later',
};

function iconIdOf(task: Pick<Task, 'status' | 'stale'> & Partial<Pick<Task, 'waitingOn' | 'blockedBy' | 'notBefore'>>): [string, string | undefined] {
  const hold = holdOf({ status: task.status, waitingOn: task.waitingOn ?? [], blockedBy: task.blockedBy ?? [], notBefore: task.notBefore ?? null });
  return hold ? HOLD_ICONS[hold] : ICONS[lookOf(task)];
}

export function taskIcon(task: Pick<Task, 'status' | 'stale'> & Partial<Pick<Task, 'waitingOn' | 'blockedBy' | 'notBefore'>>): vscode.ThemeIcon {
  const [id, color] = iconIdOf(task);
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

export function queueIcon(queue: Pick<Queue, 'status' | 'stale' | 'paused'>): vscode.ThemeIcon {
  if (queue.status === 'ended') return new vscode.ThemeIcon('archive');
  if (queue.stale > 0) return new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));
  if (queue.paused) return new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('list.warningForeground'));
  return new vscode.ThemeIcon('list-ordered');
}

const LOOK_WORDS: Record<TaskLook, string> = {
  queued: 'Queued',
  running: 'Running',
  stale: 'Running — stale (past its timeout)',
  succeeded: 'Succeeded',
  failed: 'Failed',
};

export function taskTooltip(task: Task): vscode.MarkdownString {
  const md = new vscode.MarkdownString('', true);
  const hold = holdOf(task);
  md.appendMarkdown(`$(${iconIdOf(task)[0].replace('~spin', '')}) **${hold ? HOLD_WORDS[hold] : LOOK_WORDS[lookOf(task)]}** · `);
  md.appendText(`${task.tool} · ${task.queue} · ${task.id}`);
  md.appendMarkdown('\n\n');
  if (task.plan) {
    md.appendMarkdown('**Plan:** ');
    md.appendText(`${task.plan}${task.planKey ? ` · ${task.planKey}` : ''}`);
    md.appendMarkdown('\n\n');
  }
  if (task.blockedBy.length > 0) {
    md.appendMarkdown('**Blocked by (failed; requeue them to release this task):** ');
    md.appendText(task.blockedBy.join(', '));
    md.appendMarkdown('\n\n');
  }
  const stillWaiting = task.waitingOn.filter((id) => !task.blockedBy.includes(id));
  if (stillWaiting.length > 0) {
    md.appendMarkdown('**Waiting on:** ');
    md.appendText(stillWaiting.join(', '));
    md.appendMarkdown('\n\n');
  }
  if (task.after.length > 0 && task.waitingOn.length === 0) {
    md.appendMarkdown('**After:** ');
    md.appendText(task.after.join(', '));
    md.appendMarkdown('\n\n');
  }
  if (hold === 'retry-later' && task.notBefore) {
    md.appendMarkdown('**Retry at:** ');
    md.appendText(formatClock(task.notBefore));
    md.appendMarkdown('\n\n');
  }
  const badge = validationBadge(task);
  if (badge !== null && task.validation) {
    md.appendMarkdown('**Validation:** ');
    md.appendText(`${badge} · validator ${task.validation.spec.tool}${task.validation.by.length > 0 ? ` · by ${task.validation.by.join(', ')}` : ''}`);
    md.appendMarkdown('\n\n');
    if (task.validation.feedback) {
      md.appendMarkdown('**Validator feedback:** ');
      md.appendText(firstLine(task.validation.feedback, 500));
      md.appendMarkdown('\n\n');
    }
  }
  if (task.validates) {
    md.appendMarkdown('**Checks:** ');
    md.appendText(`${task.validates} (this is its validation task)`);
    md.appendMarkdown('\n\n');
  }
  if (task.pattern) {
    md.appendMarkdown('**Pattern:** ');
    md.appendText(`${task.pattern.name} @ ${shortHash(task.pattern.hash)}`);
    md.appendMarkdown('\n\n');
  }
  if (task.result?.summary) {
    md.appendMarkdown('**Summary:** ');
    md.appendText(task.result.summary);
    md.appendMarkdown('\n\n');
  }
  if (task.change) {
    const c = task.change;
    md.appendMarkdown('**Change:** ');
    md.appendText(`${changeBadge(task) ?? ''} · ${c.branch}${c.commit ? ` @ ${c.commit.slice(0, 12)}` : ''} → ${mergeTargetLabel(c)}`);
    md.appendMarkdown('\n\n');
  }
  if (task.error) {
    md.appendMarkdown('**Error:** ');
    md.appendText(firstLine(task.error, 500));
    md.appendMarkdown('\n\n');
  }
  if (task.prompt) {
    md.appendMarkdown('**Prompt:** ');
    md.appendText(firstLine(task.prompt, 300));
    md.appendMarkdown('\n\n');
  }
  md.appendText(`${taskTiming(task)}${task.worker ? ` · worker ${task.worker}` : ''}${task.attempt > 1 ? ` · attempt ${task.attempt}` : ''}`);
  return md;
}
