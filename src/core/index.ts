/** The core's public surface: the queue, its model, config and script index. No `vscode` anywhere below here. */
export * from './model';
export * from './errors';
export * from './clock';
export { newId, looksLikeId } from './ids';
export { QueueService, type OpenQueueOptions } from './queue/service';
export type { ChangeEvent, SweepResult } from './events';
export type { RecoveryReport } from './store/store';
export type { Durability } from './store/journal';
