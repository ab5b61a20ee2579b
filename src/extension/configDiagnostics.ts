import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ConfigError, type ConfigIssue, parseConfig } from '../core/config';
import { errorMessage } from '../core/errors';
import { CONFIG_FILE } from '../owner/workspace';
import { Disposable } from './lifecycle';
import type { Log } from './log';
import type { QueueConnection } from './queueConnection';

/**
 * sparkq.yml's problems in the Problems panel, at the line and column the parser names, re-checked as the file is
 * edited; on save the queue owner in this window reloads it (a broken file keeps the last good configuration).
 */
export class ConfigDiagnostics extends Disposable {
  private readonly collection = this._register(vscode.languages.createDiagnosticCollection('sparkq'));
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: QueueConnection,
    private readonly isTrusted: () => boolean,
    private readonly log: Log,
  ) {
    super();
    this._register(vscode.workspace.onDidOpenTextDocument((d) => this.onDocument(d)));
    this._register(
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (!isConfigDocument(e.document)) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.checkText(e.document.uri, e.document.getText()), 300);
      }),
    );
    this._register(vscode.workspace.onDidSaveTextDocument((d) => this.onSaved(d)));
    this._register(vscode.workspace.onDidCloseTextDocument((d) => isConfigDocument(d) && this.checkFile(d.uri.fsPath)));
    this._register({ dispose: () => clearTimeout(this.timer) });
    for (const d of vscode.workspace.textDocuments) this.onDocument(d);
    this._register(connection.onDidChangeState((s) => s.folder && this.check(s.folder)));
  }

  /** Checks the folder's sparkq.yml (the open editor's text when it is open) and returns its issues. */
  check(folder: string): ConfigIssue[] {
    const file = path.join(folder, CONFIG_FILE);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && d.uri.fsPath === file);
    return open ? this.checkText(open.uri, open.getText()) : this.checkFile(file);
  }

  /** The diagnostics shown for a file now (for tests). */
  diagnosticsFor(uri: vscode.Uri): readonly vscode.Diagnostic[] {
    return this.collection.get(uri) ?? [];
  }

  private onDocument(doc: vscode.TextDocument): void {
    if (isConfigDocument(doc)) this.checkText(doc.uri, doc.getText());
  }

  private onSaved(doc: vscode.TextDocument): void {
    if (!isConfigDocument(doc)) return;
    const issues = this.checkText(doc.uri, doc.getText());
    const owner = this.connection.queueHandle?.owner;
    if (issues.length > 0 || !owner || !this.isTrusted() || path.dirname(doc.uri.fsPath) !== this.connection.workspaceDir) return;
    const problem = owner.reloadConfig();
    if (problem) this.log.warn(`sparkq.yml not reloaded: ${problem}`);
    else this.log.info('sparkq.yml reloaded after save');
  }

  private checkFile(file: string): ConfigIssue[] {
    const uri = vscode.Uri.file(file);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      this.collection.delete(uri);
      return [];
    }
    return this.checkText(uri, text);
  }

  private checkText(uri: vscode.Uri, text: string): ConfigIssue[] {
    const file = uri.fsPath;
    let issues: ConfigIssue[] = [];
    let warnings: string[] = [];
    try {
      warnings = parseConfig(text, file).warnings;
    } catch (e) {
      if (e instanceof ConfigError) issues = e.issues;
      else issues = [{ path: '', line: null, column: null, message: errorMessage(e) }];
    }
    const lines = text.split(/\r?\n/);
    const diagnostics = issues.map((i) => toDiagnostic(i, lines, vscode.DiagnosticSeverity.Error));
    for (const w of warnings) {
      const m = /:(\d+):(\d+): (.*)$/s.exec(w);
      const issue: ConfigIssue = m ? { path: '', line: Number(m[1]), column: Number(m[2]), message: m[3] ?? w } : { path: '', line: null, column: null, message: w };
      diagnostics.push(toDiagnostic(issue, lines, vscode.DiagnosticSeverity.Warning));
    }
    this.collection.set(uri, diagnostics);
    if (issues.length > 0) this.log.warn(`sparkq.yml has ${issues.length} problem(s); the first: ${issues[0]?.message ?? ''}`);
    return issues;
  }
}

function isConfigDocument(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme === 'file' && path.basename(doc.uri.fsPath) === CONFIG_FILE;
}

function toDiagnostic(issue: ConfigIssue, lines: string[], severity: vscode.DiagnosticSeverity): vscode.Diagnostic {
  const line = Math.max(0, Math.min((issue.line ?? 1) - 1, lines.length - 1));
  const text = lines[line] ?? '';
  const start = Math.max(0, Math.min((issue.column ?? 1) - 1, text.length));
  // Underline from the named column to the end of the key or value there (or the whole line when none).
  const rest = text.slice(start);
  const token = /^[^\s:#]+/.exec(rest)?.[0].length ?? rest.trimEnd().length;
  const end = token > 0 ? start + token : Math.max(text.length, start + 1);
  const d = new vscode.Diagnostic(new vscode.Range(line, start, line, end), issue.path ? `${issue.path}: ${issue.message}` : issue.message, severity);
  d.source = 'sparkq';
  return d;
}
