import type { ToolKind } from '../../core/config';
import type { Executor } from '../types';
import { claudeExecutor } from './claude';
import { codexExecutor } from './codex';
import { scriptExecutor } from './script';

/** The executor for each tool kind that runs a process; 'manual' is the runner's own (it waits for a person). */
export const EXECUTORS: Partial<Record<ToolKind, Executor>> = {
  script: scriptExecutor,
  codex: codexExecutor,
  claude: claudeExecutor,
};
