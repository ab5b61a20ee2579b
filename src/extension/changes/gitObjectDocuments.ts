import * as vscode from 'vscode';
import { runGit } from '../../git/git';
import { Disposable } from '../lifecycle';

/**
 * Read-only documents of a file as a commit holds it (`sparkq-git:/path/of/file?repo=…&commit=…`), read with
 * `git show COMMIT:PATH`: both sides of a task's diff come from git objects, never from a working tree that may have
 * moved on. code-server has no git extension, so `git:` URIs are not there to use. A file the commit does not have
 * reads as empty (the added or deleted side of a diff).
 */
export const GIT_OBJECT_SCHEME = 'sparkq-git';

export function gitObjectUri(repoTop: string, commit: string, filePath: string): vscode.Uri {
  const query = new URLSearchParams({ repo: repoTop, commit }).toString();
  // The path keeps the file's name and extension, so the editor picks its language and shows a readable title.
  return vscode.Uri.from({ scheme: GIT_OBJECT_SCHEME, path: `/${filePath}`, query });
}

/** The repository, commit and path a sparkq-git URI names, or null when it is not one of ours. */
export function parseGitObjectUri(uri: vscode.Uri): { repo: string; commit: string; path: string } | null {
  if (uri.scheme !== GIT_OBJECT_SCHEME) return null;
  const q = new URLSearchParams(uri.query);
  const repo = q.get('repo');
  const commit = q.get('commit');
  if (!repo || !commit || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) return null;
  return { repo, commit, path: uri.path.replace(/^\//, '') };
}

export class GitObjectDocuments extends Disposable implements vscode.TextDocumentContentProvider {
  constructor(private readonly isTrusted: () => boolean) {
    super();
    this._register(vscode.workspace.registerTextDocumentContentProvider(GIT_OBJECT_SCHEME, this));
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    // An editor restored in Restricted Mode would otherwise run git.
    if (!this.isTrusted()) return '(SparkQ runs no git in Restricted Mode: trust this workspace to see this file.)';
    const target = parseGitObjectUri(uri);
    if (!target) return '';
    // argv only; `COMMIT:PATH` is one argument, so a path cannot become an option.
    const r = await runGit(['show', '--no-textconv', `${target.commit}:${target.path}`], { cwd: target.repo });
    return r.code === 0 ? r.stdout : '';
  }
}
