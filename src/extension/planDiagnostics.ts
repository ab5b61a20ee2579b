import * as vscode from 'vscode';
import type { PlanIssue } from '../core/plan';
import { Disposable } from './lifecycle';

/** Problems of plan files (`SparkQ: Apply Plan`), at their line and column; cleared when the file applies cleanly. */
export class PlanDiagnostics extends Disposable {
  private readonly collection = this._register(vscode.languages.createDiagnosticCollection('sparkq-plan'));

  /** Shows the issues of `file`, whose text (for the ranges) is `text` when known. */
  set(file: string, issues: readonly PlanIssue[], text: string | undefined): void {
    const lines = text?.split(/\r?\n/) ?? [];
    const diagnostics = issues.map((i) => {
      const line = Math.max(0, (i.line ?? 1) - 1);
      const start = Math.max(0, (i.column ?? 1) - 1);
      const end = Math.max(start + 1, lines[line]?.length ?? start + 1);
      const d = new vscode.Diagnostic(new vscode.Range(line, start, line, end), i.path ? `${i.path}: ${i.message}` : i.message, vscode.DiagnosticSeverity.Error);
      d.source = 'sparkq';
      return d;
    });
    this.collection.set(vscode.Uri.file(file), diagnostics);
  }

  clear(file: string): void {
    this.collection.delete(vscode.Uri.file(file));
  }

  get(file: string): readonly vscode.Diagnostic[] {
    return this.collection.get(vscode.Uri.file(file)) ?? [];
  }
}
