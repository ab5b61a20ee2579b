import { type ApiMethod, type ChangeEvent, ForwardingQueue, type QueueApi, checkParams } from '../api/contract';
import type { IpcClient } from './ipcClient';

/**
 * The queue as seen from a process that is not the owner: every method is one request over the owner's socket.
 * Results are trusted as the owner's QueueService produced them (the owner validated the inputs); errors arrive as
 * SparkqErrors with the owner's code and message.
 */
export class RemoteQueue extends ForwardingQueue implements QueueApi {
  constructor(readonly client: IpcClient) {
    super();
  }

  /**
   * A request too large for one frame is not sent. If its arguments break one of the queue's own limits (a 10 MB
   * prompt), the contract's checks throw the answer the owner would give below the frame limit: the same error
   * whoever owns the queue. Otherwise the caller gets the frame's error. The checks load the schemas only then.
   */
  protected forward(method: ApiMethod, params: unknown[]): Promise<unknown> {
    return this.client.call(method, params, () => checkParams(method, params));
  }

  /** Subscribes the connection once (on the first listener) and fans each batch out to every listener. */
  onChange(listener: (events: ChangeEvent[]) => void): () => void {
    return this.client.subscribe(listener);
  }
}
