import * as vscode from 'vscode';
import { REPORT_GROUPS, type Report, type ReportGroup } from '../core/model';
import { Disposable } from './lifecycle';
import type { QueueConnection } from './queueConnection';
import { renderReport } from './reportText';

export const REPORT_SCHEME = 'sparkq-report';

/** Which usage report: of a session or all, of one plan (with what running it in parallel bought), one grouping or all. */
export interface ReportOptions {
  session?: string;
  plan?: string;
  by?: ReportGroup;
}

/** The usage report as a read-only Markdown document, re-read from the queue when tasks change while it is open. */
export class ReportDocuments extends Disposable implements vscode.TextDocumentContentProvider {
  private readonly emitter = this._register(new vscode.EventEmitter<vscode.Uri>());
  readonly onDidChange = this.emitter.event;

  constructor(private readonly connection: QueueConnection) {
    super();
    this._register(vscode.workspace.registerTextDocumentContentProvider(REPORT_SCHEME, this));
    this._register(
      connection.onDidChange((events) => {
        if (events.length > 0 && !events.some((e) => e.kind === 'task')) return;
        for (const doc of vscode.workspace.textDocuments) if (doc.uri.scheme === REPORT_SCHEME) this.emitter.fire(doc.uri);
      }),
    );
  }

  uriOf(options: ReportOptions): vscode.Uri {
    const query = new URLSearchParams({
      ...(options.session !== undefined ? { session: options.session } : {}),
      ...(options.plan !== undefined ? { plan: options.plan } : {}),
      ...(options.by !== undefined ? { by: options.by } : {}),
    });
    return vscode.Uri.from({ scheme: REPORT_SCHEME, path: '/SparkQ Usage Report.md', query: query.toString() });
  }

  /** The reports behind a document: every grouping, or the one asked for. */
  async reports(options: ReportOptions): Promise<Report[]> {
    const reader = await this.connection.reader();
    const groups = options.by !== undefined ? [options.by] : [...REPORT_GROUPS];
    return Promise.all(
      groups.map((by) => reader.report({ by, ...(options.session !== undefined ? { session: options.session } : {}), ...(options.plan !== undefined ? { plan: options.plan } : {}) })),
    );
  }

  async show(options: ReportOptions): Promise<{ uri: string; reports: Report[] }> {
    const reports = await this.reports(options); // fails early, with the queue's message (e.g. an unknown session)
    const uri = this.uriOf(options);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
    await vscode.window.showTextDocument(doc, { preview: true });
    return { uri: uri.toString(), reports };
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const query = new URLSearchParams(uri.query);
    const by = query.get('by');
    const session = query.get('session');
    const plan = query.get('plan');
    try {
      const reports = await this.reports({
        ...(session !== null ? { session } : {}),
        ...(plan !== null ? { plan } : {}),
        ...(by !== null && (REPORT_GROUPS as readonly string[]).includes(by) ? { by: by as ReportGroup } : {}),
      });
      return renderReport(reports, new Date().toISOString());
    } catch (e) {
      return `# SparkQ usage report\n\nThe report cannot be read: ${e instanceof Error ? e.message : String(e)}\n`;
    }
  }
}
