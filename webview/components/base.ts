import { formatDuration } from '../../src/shared/format';
import { LitElement, type PropertyValues, type TemplateResult, html } from '../lit';
import { type DashboardState, store } from '../store';

/**
 * A dashboard component: a lit element that draws from the one store and re-renders when it changes. It renders into
 * its own element's children, not a shadow root, so that the page's one stylesheet (adopted by boot.ts: no <style>
 * for the CSP to refuse) reaches every view, and element ids stay unique in, and findable from, the document.
 */
export class StoreElement extends LitElement {
  private unsubscribe: (() => void) | null = null;
  private watched: readonly unknown[] = [];

  protected get state(): DashboardState {
    return store.state;
  }

  /** The parts of the state this component draws: it renders again only when one of them changes. */
  protected watches(s: DashboardState): readonly unknown[] {
    return [s];
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.watched = this.watches(store.state);
    this.unsubscribe = store.subscribe(() => {
      const now = this.watches(store.state);
      if (now.length === this.watched.length && now.every((v, i) => v === this.watched[i])) return;
      this.watched = now;
      this.requestUpdate();
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  protected override updated(changed: PropertyValues): void {
    super.updated(changed);
    settleSelects(this);
  }
}

/**
 * A vscode-elements single select with these options, `value` chosen (the first option when `value` is not one).
 * `on` gets the select's new value when a person changes it.
 */
export function select(id: string, label: string, options: readonly (readonly [string, string])[], value: string, on: (value: string) => void, disabled = false): TemplateResult {
  const chosen = options.some(([v]) => v === value) ? value : (options[0]?.[0] ?? '');
  return html`<vscode-single-select
    id=${id}
    aria-label=${label}
    data-chosen=${chosen}
    ?disabled=${disabled}
    .value=${chosen}
    @change=${(e: Event) => on((e.target as HTMLElement & { value: string }).value)}
    >${options.map(([v, text]) => html`<vscode-option value=${v} ?selected=${v === chosen}>${text}</vscode-option>`)}</vscode-single-select
  >`;
}

/** The select reads its options on slotchange, after the render: choose again once it has them. */
function settleSelects(root: HTMLElement): void {
  const selects = [...root.querySelectorAll<HTMLElement & { value: string }>('vscode-single-select[data-chosen]')];
  if (selects.length === 0) return;
  setTimeout(() => {
    for (const s of selects) {
      const chosen = s.dataset['chosen'] ?? '';
      if (s.value !== chosen) s.value = chosen;
    }
  }, 0);
}

/** The value of a control (a vscode-elements field or select) among `root`'s children, by id. */
export function valueOf(root: HTMLElement, id: string): string {
  return root.querySelector<HTMLElement & { value: string }>(`#${id}`)?.value ?? '';
}

const ticking = new Set<ElapsedTime>();
let ticker: ReturnType<typeof setInterval> | undefined;

/** The elapsed time of a running task, ticking in the page each second: nothing is asked of the host for it. */
export class ElapsedTime extends LitElement {
  private startedAt = '';

  set started(value: string) {
    if (value === this.startedAt) return;
    this.startedAt = value;
    this.requestUpdate();
  }
  get started(): string {
    return this.startedAt;
  }

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    ticking.add(this);
    ticker ??= setInterval(() => {
      for (const t of ticking) t.requestUpdate();
    }, 1000);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    ticking.delete(this);
    if (ticking.size === 0) {
      clearInterval(ticker);
      ticker = undefined;
    }
  }

  override render(): string {
    const started = Date.parse(this.startedAt);
    return Number.isFinite(started) ? formatDuration(Date.now() - started) : '';
  }
}
customElements.define('sparkq-elapsed', ElapsedTime);
