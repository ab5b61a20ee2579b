import * as vscode from 'vscode';
import type { TaskDetail } from '../core/model';
import { Disposable } from './lifecycle';
import type { QueueConnection } from './queueConnection';
import { formatDuration, lookOf } from './views/taskPresentation';

export const TASK_SCHEME = 'sparkq-task';

/**
 * `SparkQ: Show Task`: a read-only Markdown document per task (prompt, result, error, output, timings, attempts),
 * served from the queue and refreshed when the task changes.
 */
export class TaskDocuments extends Disposable implements vscode.TextDocumentContentProvider {
  private readonly emitter = this._register(new vscode.EventEmitter<vscode.Uri>());
  readonly onDidChange = this.emitter.event;

  constructor(private readonly connection: QueueConnection) {
    super();
    this._register(vscode.workspace.registerTextDocumentContentProvider(TASK_SCHEME, this));
    this._register(
      connection.onDidChange((events) => {
        for (const doc of vscode.workspace.textDocuments) {
          if (doc.uri.scheme !== TASK_SCHEME) continue;
          const id = idOf(doc.uri);
          if (events.length === 0 || events.some((e) => e.kind === 'task' && e.id === id)) this.emitter.fire(doc.uri);
        }
      }),
    );
  }

  uriOf(taskId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: TASK_SCHEME, path: `/${taskId}.md` });
  }

  async show(taskId: string, options: { preview: boolean }): Promise<{ uri: string; task: TaskDetail }> {
    const reader = await this.connection.reader();
    const task = await reader.getTask(taskId); // fails early, with the queue's message, for an unknown id
    const uri = this.uriOf(task.id);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
    await vscode.window.showTextDocument(doc, { preview: options.preview });
    return { uri: uri.toString(), task };
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    try {
      const reader = await this.connection.reader();
      return renderTask(await reader.getTask(idOf(uri)));
    } catch (e) {
      return `# ${idOf(uri)}\n\nThis task cannot be read: ${e instanceof Error ? e.message : String(e)}\n`;
    }
  }
}

function idOf(uri: vscode.Uri): string {
  return uri.path.replace(/^\//, '').replace(/\.md$/, '');
}

function fence(text: string, lang = ''): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const f = '`'.repeat(longest + 1);
  return `${f}${lang}\n${text.replace(/\s+$/, '')}\n${f}`;
}

const WORDS = { queued: 'queued', running: 'running', stale: 'running — stale', succeeded: 'succeeded', failed: 'failed' } as const;

/** The task as a document a person reads from top to bottom. */
export function renderTask(t: TaskDetail): string {
  const out: string[] = [];
  out.push(`# ${t.id} — ${WORDS[lookOf(t)]}`, '');
  out.push(`| | |`, `|---|---|`);
  const row = (k: string, v: string | null | undefined) => v !== null && v !== undefined && v !== '' && out.push(`| ${k} | ${v.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
  row('Session / queue', `${t.session} / ${t.queue}`);
  row('Tool', `${t.tool} (${t.taskClass}, timeout ${t.timeoutSeconds} s)`);
  row('Attempt', String(t.attempt));
  row('Worker', t.worker);
  row('Created', t.createdAt);
  row('Started', t.startedAt);
  row('Finished', t.finishedAt);
  row('Waited', t.timings.waitMs === null ? null : formatDuration(t.timings.waitMs));
  row('Ran', t.timings.runMs === null ? null : formatDuration(t.timings.runMs));
  if (t.stale) row('Stale since', t.staleAt);
  if (t.retryOf) row('Retry of', t.retryOf);
  if (t.usage) {
    const u = t.usage;
    row('Usage', [u.model, u.inputTokens !== undefined ? `${u.inputTokens} in` : '', u.outputTokens !== undefined ? `${u.outputTokens} out` : '', u.costUsd !== undefined ? `$${u.costUsd.toFixed(4)}` : ''].filter(Boolean).join(' · '));
  }
  if (t.archived) row('Archived', 'yes');
  out.push('');
  if (t.prompt) out.push('## Prompt', '', fence(t.prompt), '');
  if (t.payload !== null) out.push('## Payload', '', fence(JSON.stringify(t.payload, null, 2), 'json'), '');
  if (t.result) {
    out.push(t.result.summary !== null ? '## Result' : '## Partial results', '');
    if (t.result.summary !== null) out.push(fence(t.result.summary), '');
    if (t.result.data !== null) out.push('### Data', '', fence(JSON.stringify(t.result.data, null, 2), 'json'), '');
  }
  if (t.error) out.push('## Error', '', fence(t.error), '');
  if (t.stdout) out.push('## Output', '', fence(t.stdout), '');
  if (t.stderr) out.push('## Errors output', '', fence(t.stderr), '');
  if (t.instructions) out.push('## Queue instructions', '', fence(t.instructions), '');
  if (t.attempts.length > 0) {
    out.push('## Attempts', '', '| # | worker | started | ended | outcome | error |', '|---|---|---|---|---|---|');
    for (const a of t.attempts) {
      out.push(`| ${a.n} | ${a.worker ?? ''} | ${a.startedAt} | ${a.endedAt ?? ''} | ${a.outcome} | ${(a.error ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
