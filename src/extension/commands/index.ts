import { CommandId } from './commandIds';
import type { CommandFactory } from './commandContext';
import { openDashboard } from './dashboardCommands';
import { setup } from './setupCommand';
import { createQueue, createSession, endQueue, endSession } from './sessionCommands';
import { claim, complete, enqueue, fail, purge, requeue, showTask } from './taskCommands';
import { filterTasks, openConfig, refresh, reloadConfig, showLog, showTasks } from './viewCommands';
import { startWorker, startWorkers, stopWorker } from './workerCommands';
import { applyPlan } from './planCommands';
import { pauseQueue, requeueFailed, resumeQueue } from './queueCommands';
import { report } from './reportCommand';
import { connectTeamDatabase, disconnectTeamDatabase } from './teamCommands';
import { discardChange, mergeChange, openWorktree, showChanges } from './changeCommands';

/** Every command with its handler: the one map the composition root registers. */
export const COMMANDS: Record<CommandId, CommandFactory> = {
  [CommandId.Setup]: setup,
  [CommandId.CreateSession]: createSession,
  [CommandId.EndSession]: endSession,
  [CommandId.CreateQueue]: createQueue,
  [CommandId.EndQueue]: endQueue,
  [CommandId.Enqueue]: enqueue,
  [CommandId.Claim]: claim,
  [CommandId.Complete]: complete,
  [CommandId.Fail]: fail,
  [CommandId.Requeue]: requeue,
  [CommandId.ShowTask]: showTask,
  [CommandId.StartWorker]: startWorker,
  [CommandId.StopWorker]: stopWorker,
  [CommandId.ReloadConfig]: reloadConfig,
  [CommandId.Purge]: purge,
  [CommandId.Refresh]: refresh,
  [CommandId.FilterTasks]: filterTasks,
  [CommandId.ShowLog]: showLog,
  [CommandId.OpenConfig]: openConfig,
  [CommandId.ShowTasks]: showTasks,
  [CommandId.OpenDashboard]: openDashboard,
  [CommandId.StartWorkers]: startWorkers,
  [CommandId.ApplyPlan]: applyPlan,
  [CommandId.PauseQueue]: pauseQueue,
  [CommandId.ResumeQueue]: resumeQueue,
  [CommandId.RequeueFailed]: requeueFailed,
  [CommandId.Report]: report,
  [CommandId.ConnectTeamDatabase]: connectTeamDatabase,
  [CommandId.DisconnectTeamDatabase]: disconnectTeamDatabase,
  [CommandId.ShowChanges]: showChanges,
  [CommandId.MergeChange]: mergeChange,
  [CommandId.OpenWorktree]: openWorktree,
  [CommandId.DiscardChange]: discardChange,
};
