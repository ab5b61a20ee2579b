/**
 * Every command id SparkQ registers, in one place. User-facing ones are in package.json's `contributes.commands`
 * (the palette, under the category "SparkQ"); internal ones are registered too but never shown. The integration
 * suite checks that package.json and the registered commands agree.
 */
export const CommandId = {
  Setup: 'sparkq.setup',
  CreateSession: 'sparkq.createSession',
  EndSession: 'sparkq.endSession',
  CreateQueue: 'sparkq.createQueue',
  EndQueue: 'sparkq.endQueue',
  Enqueue: 'sparkq.enqueue',
  Claim: 'sparkq.claim',
  Complete: 'sparkq.complete',
  Fail: 'sparkq.fail',
  Requeue: 'sparkq.requeue',
  ShowTask: 'sparkq.showTask',
  StartWorker: 'sparkq.startWorker',
  StopWorker: 'sparkq.stopWorker',
  ReloadConfig: 'sparkq.reloadConfig',
  Purge: 'sparkq.purge',
  Refresh: 'sparkq.refresh',
  FilterTasks: 'sparkq.filterTasks',
  ShowLog: 'sparkq.showLog',
  OpenConfig: 'sparkq.openConfig',
  ShowTasks: 'sparkq.showTasks',
  OpenDashboard: 'sparkq.openDashboard',
  StartWorkers: 'sparkq.startWorkers',
  ApplyPlan: 'sparkq.applyPlan',
  PauseQueue: 'sparkq.pauseQueue',
  ResumeQueue: 'sparkq.resumeQueue',
  RequeueFailed: 'sparkq.requeueFailed',
  Report: 'sparkq.report',
  ConnectTeamDatabase: 'sparkq.connectTeamDatabase',
  DisconnectTeamDatabase: 'sparkq.disconnectTeamDatabase',
  ShowChanges: 'sparkq.showChanges',
  MergeChange: 'sparkq.mergeChange',
  OpenWorktree: 'sparkq.openWorktree',
  DiscardChange: 'sparkq.discardChange',
} as const;
export type CommandId = (typeof CommandId)[keyof typeof CommandId];

/** Commands that are registered but not contributed to the palette (e.g. clicked from a tree row or a notification). */
export const INTERNAL_COMMANDS: readonly CommandId[] = [];
