import type { DashboardMethod, DashboardParams, DashboardResults, DashboardUiState, EnqueueField, HostMessage, WebviewMessage } from '../src/shared/dashboardProtocol';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: DashboardUiState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** What the HTML's first script left (src/extension/dashboard/dashboardHtml.ts: EARLY_REQUEST_SCRIPT). */
interface Early {
  api: VsCodeApi;
  /** The parameters of the listTasks request it sent with id 0, or null when it sent none. */
  params: Record<string, unknown> | null;
  /** Its answer, when that came before this bundle listened. */
  held: Extract<HostMessage, { type: 'response' }>[];
  stop(): void;
}
const early = (window as unknown as { sparkqEarly?: Early }).sparkqEarly;
const vscode = early?.api ?? acquireVsCodeApi();

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
    settle(p, m);
    return;
  }
  for (const l of listeners) l(m);
});

/** Same keys and values, whatever their order. */
function sameParams(a: object, b: object): boolean {
  const canon = (o: object) => JSON.stringify(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return canon(a) === canon(b);
}

/**
 * The answer to the listTasks request the HTML sent before this bundle loaded, when it asked for exactly `params`;
 * null otherwise (the caller then sends its own request). Taken once.
 */
export function adoptEarlyPage(params: DashboardParams<'listTasks'>): Promise<DashboardResults['listTasks']> | null {
  if (!early) return null;
  early.stop();
  const asked = early.params;
  early.params = null;
  if (asked === null || !sameParams(asked, params)) return null;
  return new Promise((resolve, reject) => {
    const p = { resolve: resolve as (v: unknown) => void, reject };
    const held = early.held.shift();
    if (held) settle(p, held);
    else pending.set(0, p);
  });
}

function settle(p: { resolve: (v: unknown) => void; reject: (e: unknown) => void }, m: Extract<HostMessage, { type: 'response' }>): void {
  if (m.ok) p.resolve(m.result);
  else p.reject(new RequestError(m.error, m.fields));
}

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
