import type { QueueApi } from '../api/contract';

/** What the views and the task document need: reading only. Both a live queue and Restricted Mode's copy offer it. */
export type QueueReader = Pick<QueueApi, 'status' | 'listSessions' | 'getSession' | 'listQueues' | 'getQueue' | 'listTasks' | 'getTask' | 'report'>;
