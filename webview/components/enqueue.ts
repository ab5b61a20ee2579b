import { type EnqueueField, type PatternInfo, VALIDATE_ROUNDS, variableField } from '../../src/shared/dashboardProtocol';
import { type TemplateResult, html, nothing } from '../lit';
import { type DashboardState, store } from '../store';
import { StoreElement, select, valueOf } from './base';

type Control = HTMLElement & { value: string };

/** The Enqueue tab: a form for one task, checked field by field by the host (and the After field as it is typed). */
export class EnqueueView extends StoreElement {
  protected override watches(s: DashboardState): readonly unknown[] {
    return [s.init, s.enqueueErrors, s.enqueueNote, s.suggestions, s.patterns];
  }

  /** The prompt pattern chosen in the form ('' for none): its variables get fields, and its tool is chosen. */
  private patternName = '';

  private scriptTimer: ReturnType<typeof setTimeout> | undefined;
  private afterTimer: ReturnType<typeof setTimeout> | undefined;
  /** The tool chosen in the form (the form's fields depend on whether it runs a script). */
  private toolName = '';
  /** The tool chosen to check the result ('' for none given here: the pattern's, if it names one). */
  private checkName = '';

  override render(): TemplateResult {
    const { init, enqueueErrors: errors, enqueueNote, suggestions } = this.state;
    const ro = init.readOnly;
    const active = init.queues.filter((q) => q.active);
    const tools = init.tools.map((t): [string, string] => [t.name, `${t.name} (${t.kind})`]);
    const patterns = this.state.patterns?.patterns ?? [];
    const pattern = patterns.find((p) => p.name === this.patternName);
    const toolName = tools.some(([v]) => v === this.toolName) ? this.toolName : (tools[0]?.[0] ?? '');
    const tool = init.tools.find((t) => t.name === toolName);
    const note = enqueueNote ?? (ro ? { text: 'Restricted Mode: the dashboard is read-only. Trust this workspace to enqueue tasks.', kind: 'error' } : null);
    const field = (label: string, control: TemplateResult, name: EnqueueField, hint: TemplateResult | typeof nothing = nothing) =>
      html`<div class="field"><label>${label}</label>${control}${hint}<div class="field-error" data-for=${name} role="alert">${errors[name] ?? ''}</div></div>`;
    const text = (id: string, name: EnqueueField, label: string, placeholder: string, extra: Partial<Record<'input' | 'focus' | 'blur' | 'change', () => void>> = {}) =>
      html`<vscode-textfield
        id=${id}
        aria-label=${label}
        placeholder=${placeholder}
        ?disabled=${ro}
        ?invalid=${errors[name] !== undefined}
        @input=${extra.input ?? nothing}
        @focus=${extra.focus ?? nothing}
        @blur=${extra.blur ?? nothing}
        @change=${extra.change ?? nothing}
      ></vscode-textfield>`;
    return html`<form id="enqueue" class="enqueue" @submit=${(e: Event) => (e.preventDefault(), void this.submit())}>
      ${field('Queue', select('enq-queue', 'Queue', active.map((q): [string, string] => [q.id, `${q.session} / ${q.name}`]), valueOf(this, 'enq-queue'), () => undefined, ro), 'queue')}
      ${patterns.length > 0
        ? field(
            'Pattern',
            select('enq-pattern', 'Pattern', [['', 'No pattern'], ...patterns.map((p): [string, string] => [p.name, `${p.name} — ${p.description}`])], this.patternName, (v) => this.choosePattern(v), ro),
            'pattern',
            pattern ? html`<div class="muted hint" id="enq-pattern-hint">${patternHint(pattern)}</div>` : nothing,
          )
        : errors.pattern !== undefined
          ? html`<div class="field-error" data-for="pattern" role="alert">${errors.pattern}</div>`
          : nothing}
      ${pattern && pattern.variables.length > 0
        ? html`<fieldset id="enq-vars" class="pattern-vars">
            <legend>${`Variables of ${pattern.name}`}</legend>
            ${pattern.variables.map((v) =>
              field(
                v.default === null ? `${v.name} (required)` : v.name,
                html`<vscode-textfield
                  data-var=${v.name}
                  aria-label=${v.name}
                  placeholder=${v.description}
                  title=${v.description}
                  .value=${v.default ?? ''}
                  ?disabled=${ro}
                  ?invalid=${errors[variableField(v.name)] !== undefined}
                ></vscode-textfield>`,
                variableField(v.name),
                html`<div class="muted hint">${v.default === null ? v.description : `${v.description} (default ${v.default})`}</div>`,
              ),
            )}
          </fieldset>`
        : nothing}
      ${field('Tool', select('enq-tool', 'Tool', tools, toolName, (v) => ((this.toolName = v), this.requestUpdate()), ro), 'tool')}
      ${this.checkFields(pattern, active)}
      <div id="script-fields" ?hidden=${!tool?.script}>
        ${field(
          'Script',
          html`<div class="autocomplete">
            ${text('enq-script', 'script', 'Script', 'start typing a script name', {
              input: () => {
                clearTimeout(this.scriptTimer);
                this.scriptTimer = setTimeout(() => void store.suggestScripts(valueOf(this, 'enq-script')), 150);
              },
              focus: () => void store.suggestScripts(valueOf(this, 'enq-script')),
              blur: () => setTimeout(() => store.hideSuggestions(), 150),
            })}
            <ul id="enq-suggestions" class="suggestions" role="listbox" ?hidden=${suggestions.length === 0}>
              ${suggestions.map(
                (s) =>
                  html`<li role="option" data-script=${s.name} @mousedown=${(e: Event) => (e.preventDefault(), this.chooseScript(s.name, s.inputs))}>
                    <span>${s.name}</span><span class="muted">${` ${s.description}`}</span>
                  </li>`,
              )}
            </ul>
          </div>`,
          'script',
        )}
        ${field('Arguments', text('enq-args', 'args', 'Arguments', 'arguments (shell words)'), 'args')}
      </div>
      <div ?hidden=${!!tool?.script}>
        ${field(
          'Prompt',
          html`<vscode-textarea
            id="enq-prompt"
            aria-label="Prompt"
            rows="6"
            placeholder=${pattern ? 'Optional: added after the pattern\'s prompt' : 'What should the task do?'}
            ?disabled=${ro}
            ?invalid=${errors.prompt !== undefined}
          ></vscode-textarea>`,
          'prompt',
        )}
      </div>
      <div class="row">
        ${field('Timeout override (s)', html`<vscode-textfield id="enq-timeout" aria-label="Timeout (seconds)" placeholder=${tool ? `default ${tool.timeoutSeconds}` : ''} ?disabled=${ro} ?invalid=${errors.timeoutSeconds !== undefined}></vscode-textfield>`, 'timeoutSeconds')}
        ${field('Priority', text('enq-priority', 'priority', 'Priority', '0'), 'priority')}
      </div>
      ${field(
        'After',
        text('enq-after', 'after', 'After (task ids)', 'tsk_… tsk_… (optional)', {
          input: () => {
            clearTimeout(this.afterTimer);
            this.afterTimer = setTimeout(() => store.checkAfter(valueOf(this, 'enq-after')), 150);
          },
          change: () => store.checkAfter(valueOf(this, 'enq-after')),
        }),
        'after',
        html`<div class="muted hint">Runs only once these tasks have succeeded: task ids, comma or space separated.</div>`,
      )}
      <div class="row"><vscode-button id="enq-submit" ?disabled=${ro} @click=${() => void this.submit()}>Enqueue</vscode-button></div>
      <div id="enq-message" role="status" class=${note?.kind ?? ''}>${note?.text ?? ''}</div>
    </form>`;
  }

  /**
   * "Check with": the tool that checks the result (`--validate-with`), and under it, only once one is chosen, what it
   * checks, its queue and its rounds. With a pattern that names a validator, the empty choice is the pattern's, and a
   * tool chosen here replaces it, as `sparkq enqueue --pattern … --validate-with` does.
   */
  private checkFields(pattern: PatternInfo | undefined, active: DashboardState['init']['queues']): TemplateResult {
    const { init, enqueueErrors: errors } = this.state;
    const ro = init.readOnly;
    const byPattern = pattern?.validator ?? null;
    const none: [string, string] = ['', byPattern ? `As pattern ${pattern!.name} says: ${byPattern}` : 'No check'];
    const options = [none, ...init.tools.map((t): [string, string] => [t.name, `${t.name} (${t.kind})`])];
    const checker = init.tools.find((t) => t.name === this.checkName);
    const err = (name: EnqueueField) => html`<div class="field-error" data-for=${name} role="alert">${errors[name] ?? ''}</div>`;
    const hint = !checker
      ? byPattern
        ? `The pattern's validator checks the result. Choose a tool to check with another instead.`
        : 'Choose a tool to check the result before tasks after it start: a failed check requeues the task with the feedback. (A tool with its own validate: in sparkq.yml is checked by that.)'
      : `When the task succeeds, ${checker.name} checks its result; a fail requeues the task with the feedback, up to Max rounds in all, and tasks after it wait until it passes.${
          byPattern ? ` Replaces pattern ${pattern!.name}'s validator (${byPattern}).` : ''
        }`;
    return html`<div class="field">
        <label>Check with</label>
        ${select('enq-check', 'Check with', options, checker?.name ?? '', (v) => ((this.checkName = v), this.requestUpdate()), ro)}
        <div class="muted hint" id="enq-check-hint">${hint}</div>
        ${err('validateWith')}
      </div>
      <fieldset id="enq-check-fields" class="check-fields" ?hidden=${!checker}>
        <legend>${`Check by ${checker?.name ?? ''}`}</legend>
        <div class="field">
          <label>${checker?.script ? 'Validator script (required)' : 'Validator prompt'}</label>
          <vscode-textarea
            id="enq-check-prompt"
            aria-label="Validator prompt"
            rows="3"
            placeholder=${checker?.script ? 'check.sh --strict (the script and its arguments; exit status 0 passes)' : 'What should the check look for? (optional)'}
            ?disabled=${ro}
            ?invalid=${errors.validatePrompt !== undefined}
          ></vscode-textarea>
          ${err('validatePrompt')}
        </div>
        <div class="row">
          <div class="field">
            <label>Validator queue</label>
            ${select('enq-check-queue', 'Validator queue', [['', "The task's own queue"], ...active.map((q): [string, string] => [q.id, `${q.session} / ${q.name}`])], valueOf(this, 'enq-check-queue'), () => undefined, ro)}
            ${err('validateQueue')}
          </div>
          <div class="field rounds">
            <label>Max rounds</label>
            <vscode-textfield id="enq-max-rounds" aria-label="Max rounds" placeholder=${`default ${VALIDATE_ROUNDS.default} (1 to ${VALIDATE_ROUNDS.max})`} ?disabled=${ro} ?invalid=${errors.maxRounds !== undefined}></vscode-textfield>
            ${err('maxRounds')}
          </div>
        </div>
      </fieldset>`;
  }

  /** A pattern was chosen: its tool becomes the form's tool, and its variables get fields (defaults pre-filled). */
  private choosePattern(name: string): void {
    this.patternName = name;
    const tool = this.state.patterns?.patterns.find((p) => p.name === name)?.tool;
    if (tool && this.state.init.tools.some((t) => t.name === tool)) this.toolName = tool;
    this.requestUpdate();
  }

  /** The values typed for the chosen pattern's variables. */
  private variableValues(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const el of this.querySelectorAll<HTMLElement & { value: string }>('#enq-vars [data-var]')) out[el.dataset['var'] ?? ''] = el.value;
    return out;
  }

  private chooseScript(name: string, inputs: string): void {
    const script = this.querySelector<Control>('#enq-script');
    if (script) script.value = name;
    if (inputs) this.querySelector('#enq-args')?.setAttribute('placeholder', inputs);
    store.hideSuggestions();
  }

  private async submit(): Promise<void> {
    if (this.state.init.readOnly) return;
    const v = (id: string) => valueOf(this, id);
    const tool = this.state.init.tools.find((t) => t.name === v('enq-tool'));
    const pattern = this.state.patterns?.patterns.some((p) => p.name === this.patternName) ? this.patternName : '';
    const check = v('enq-check').trim();
    const enqueued = await store.enqueue({
      queue: v('enq-queue'),
      tool: v('enq-tool'),
      ...(tool?.script ? { script: v('enq-script'), args: v('enq-args') } : { prompt: v('enq-prompt') }),
      ...(pattern !== '' ? { pattern, vars: this.variableValues() } : {}),
      timeoutSeconds: v('enq-timeout'),
      priority: v('enq-priority'),
      after: v('enq-after'),
      ...(check !== '' ? { validateWith: check, validatePrompt: v('enq-check-prompt'), validateQueue: v('enq-check-queue'), maxRounds: v('enq-max-rounds') } : {}),
    });
    if (!enqueued) return;
    for (const id of ['enq-prompt', 'enq-after']) {
      const el = this.querySelector<Control>(`#${id}`);
      if (el) el.value = '';
    }
  }
}
customElements.define('sparkq-enqueue', EnqueueView);

/** "llm-codex · validated by llm-haiku · Add a REST endpoint…": what choosing a pattern brings. */
function patternHint(p: PatternInfo): string {
  return [p.tool ? `runs with ${p.tool}` : 'names no tool: choose one', ...(p.validator ? [`validated by ${p.validator}`] : [])].join(' · ') + '. Its prompt comes first; the Prompt field, if filled, is added after it.';
}
