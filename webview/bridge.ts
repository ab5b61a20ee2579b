import type { DashboardMethod, DashboardParams, DashboardResults, DashboardUiState, EnqueueField, HostMessage, WebviewMessage } from '../src/shared/dashboardProtocol';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: DashboardUiState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();

/** A request the host answered with an error; `fields` says which form fields were wrong. */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly fields: Partial<Record<EnqueueField, string>> = {},
  ) {
    super(message);
  }
}

let seq = 0;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
const listeners: ((m: Exclude<HostMessage, { type: 'response' }>) => void)[] = [];

window.addEventListener('message', (e: MessageEvent) => {
  const m = e.data as HostMessage;
  if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
  if (m.type === 'response') {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new RequestError(m.error, m.fields));
    return;
  }
  for (const l of listeners) l(m);
});

/** Sends a request; the result's type follows from the method (DashboardResults). */
export function request<M extends DashboardMethod>(method: M, params: DashboardParams<M>): Promise<DashboardResults[M]> {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    const message = { type: 'request', id, method, params } as WebviewMessage;
    vscode.postMessage(message);
  });
}

export function onHostMessage(listener: (m: Exclude<HostMessage, { type: 'response' }>) => void): void {
  listeners.push(listener);
}

export function sendReady(): void {
  vscode.postMessage({ type: 'ready' });
}

export function loadUiState(): Partial<DashboardUiState> {
  const s = vscode.getState();
  return s && typeof s === 'object' ? s : {};
}

export function saveUiState(state: DashboardUiState): void {
  vscode.setState(state);
}
