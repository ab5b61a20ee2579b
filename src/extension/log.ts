import type * as vscode from 'vscode';
import { errorMessage } from '../core/errors';

/** One area's view of the `SparkQ` log channel: every line carries its `[Area]` prefix. */
export interface Log {
  trace(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, err?: unknown): void;
  /** The same channel with another area prefix. */
  area(name: string): Log;
}

export function createLog(channel: vscode.LogOutputChannel, areaName = 'Extension'): Log {
  const prefix = `[${areaName}] `;
  return {
    trace: (m) => channel.trace(prefix + m),
    info: (m) => channel.info(prefix + m),
    warn: (m) => channel.warn(prefix + m),
    error: (m, err) => channel.error(err === undefined ? prefix + m : `${prefix}${m}: ${errorMessage(err)}`),
    area: (name) => createLog(channel, name),
  };
}
