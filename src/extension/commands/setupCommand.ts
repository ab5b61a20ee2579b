import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseDocument } from 'yaml';
import { defaultConfig, defaultConfigYaml, parseConfig } from '../../core/config';
import { isSparkqError } from '../../core/errors';
import { configFileOf } from '../../owner/workspace';
import { UserFacingError } from '../errors';
import { restrictedError } from '../queueConnection';
import { pickQueueFolder } from '../workspaceFolder';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandFactory, withProgress } from './commandContext';
import { askText, confirm } from './pickers';

/** sparkq.yml's text for a project and its script folders: the commented defaults, with the folders set. */
export function setupConfigYaml(project: string, scriptDirs: string[] | undefined, file: string): string {
  let text = defaultConfigYaml(project);
  if (scriptDirs && scriptDirs.length > 0) {
    const doc = parseDocument(text);
    doc.set('scriptDirs', doc.createNode(scriptDirs));
    text = doc.toString();
  }
  parseConfig(text, file); // never write a file SparkQ itself would refuse
  return text;
}

/**
 * `SparkQ: Set up SparkQ` — a short wizard (project name, script folders, first session and queue) that writes
 * sparkq.yml, opens the queue and creates the first session and queue.
 * Arguments: `{ project?, scriptDirs?, session?, queue?, instructions?, overwrite? }`.
 */
export const setup: CommandFactory = (ctx) => async (raw) => {
  const { interactive, args } = readArgs(CommandId.Setup, ArgSchemas.setup, raw);
  if (!ctx.isTrusted()) throw restrictedError('set up SparkQ (it writes sparkq.yml and starts the queue)');
  const folder = pickQueueFolder();
  if (!folder) throw new UserFacingError('Open a folder first: SparkQ keeps its queue in a workspace folder.', [{ title: 'Open Folder', command: 'vscode.openFolder' }]);
  const file = configFileOf(folder.dir);
  if (fs.existsSync(file) && args.overwrite !== true) {
    if (!interactive) throw new UserFacingError(`${file} already exists; pass { overwrite: true } to replace it.`);
    await confirm(`${path.basename(file)} already exists in ${folder.dir}. Replace it with a new one?`, 'Replace');
  }
  const defaults = defaultConfig(path.basename(folder.dir));
  const project = args.project ?? (interactive ? (await askText({ title: 'SparkQ setup (1/4)', prompt: 'Project name', value: defaults.project })).trim() : defaults.project);
  const dirsText =
    args.scriptDirs?.join(', ') ??
    (interactive
      ? await askText({ title: 'SparkQ setup (2/4)', prompt: 'Script folders, relative to the workspace, comma-separated', value: defaults.scriptDirs.join(', '), required: false })
      : undefined);
  const scriptDirs = dirsText?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  const session =
    args.session ?? (interactive ? (await askText({ title: 'SparkQ setup (3/4)', prompt: 'First session (empty to skip)', placeHolder: 'e.g. api-v2', required: false })).trim() || undefined : undefined);
  const queue =
    session === undefined
      ? undefined
      : (args.queue ?? (interactive ? (await askText({ title: 'SparkQ setup (4/4)', prompt: `First queue in ${session} (empty to skip)`, placeHolder: 'e.g. Back End', required: false })).trim() || undefined : undefined));

  const result = await withProgress(
    'Setting up SparkQ…',
    async () => {
      fs.writeFileSync(file, setupConfigYaml(project, scriptDirs, file));
      for (const d of scriptDirs ?? defaults.scriptDirs) fs.mkdirSync(path.resolve(folder.dir, d), { recursive: true });
      ctx.log.info(`wrote ${file}`);
      await ctx.connection.restart();
      const api = await ctx.connection.api('set up SparkQ');
      let createdSession;
      let createdQueue;
      if (session !== undefined) {
        createdSession = await api.createSession({ name: session }).catch(async (e: unknown) => {
          if (isSparkqError(e, 'conflict')) return api.getSession(session);
          throw e;
        });
        if (queue !== undefined) {
          createdQueue = await api.createQueue({ name: queue, session: createdSession.id, ...(args.instructions ? { instructions: args.instructions } : {}) });
        }
      }
      return { configFile: file, session: createdSession ?? null, queue: createdQueue ?? null };
    },
    true,
  );
  await ctx.views.refreshNow();
  if (interactive) {
    await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: false });
    void vscode.window.showInformationMessage(`SparkQ is set up in ${folder.dir}.${result.queue ? ` Queue "${result.queue.name}" is ready for tasks.` : ''}`);
  }
  return result;
};
