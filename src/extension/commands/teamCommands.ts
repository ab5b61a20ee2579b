import * as vscode from 'vscode';
import { Cancelled, UserFacingError } from '../errors';
import { restrictedError } from '../queueConnection';
import { DATABASE_URL_ENV, checkDatabaseUrl, describeDatabase, hasPassword, teamConfigOf, userOf, withPassword } from '../teamDatabase';
import { ArgSchemas, readArgs } from './args';
import { CommandId } from './commandIds';
import { type CommandContext, type CommandFactory, withProgress } from './commandContext';

/**
 * Team mode's connection, kept per workspace folder in VS Code's SecretStorage: never in settings, sparkq.yml or
 * .sparkq/. Results and messages name the database as `host/database`, never the URL (it may carry a password).
 */

/** The folder whose sparkq.yml says store.kind postgres, or a message saying why there is none. */
function teamFolder(ctx: CommandContext): { folder: string; fileUrl: string | undefined } {
  const folder = ctx.connection.workspaceDir;
  if (folder === undefined) throw new UserFacingError('Open a folder first: the team database is named per workspace folder.', [{ title: 'Open Folder', command: 'vscode.openFolder' }]);
  const team = teamConfigOf(folder);
  if (!team) {
    throw new UserFacingError(
      "This folder's queue is not a team database: its sparkq.yml does not say store: { kind: postgres }. Add that to sparkq.yml (or run `sparkq init --postgres URL` in a terminal), then connect.",
      [{ title: 'Open sparkq.yml', command: CommandId.OpenConfig }],
    );
  }
  return { folder, fileUrl: team.url };
}

/** Asks for the URL, then — when it has a user and no password — for the password in a hidden box. */
async function askForUrl(fileUrl: string | undefined): Promise<string> {
  const typed = await vscode.window.showInputBox({
    title: 'SparkQ: Connect to Team Database (1/2)',
    prompt: "The team database's PostgreSQL URL. Leave the password out: it is asked next, hidden. Kept in VS Code's secret storage for this folder only.",
    placeHolder: 'postgres://USER@HOST:5432/DATABASE',
    value: fileUrl ?? '',
    ignoreFocusOut: true,
    validateInput: (v) => checkDatabaseUrl(v),
  });
  if (typed === undefined) throw new Cancelled();
  const url = typed.trim();
  const user = userOf(url);
  if (hasPassword(url) || user === '') return url;
  const password = await vscode.window.showInputBox({
    title: 'SparkQ: Connect to Team Database (2/2)',
    prompt: `Password of ${user} on ${describeDatabase(url)}. Leave it empty to use ~/.pgpass or a login without password.`,
    password: true,
    ignoreFocusOut: true,
  });
  if (password === undefined) throw new Cancelled();
  return password === '' ? url : withPassword(url, password);
}

export const connectTeamDatabase: CommandFactory = (ctx) => async (raw) => {
  const { args } = readArgs(CommandId.ConnectTeamDatabase, ArgSchemas.connectTeamDatabase, raw);
  // Saving a URL is harmless, but it is saved to connect, and in Restricted Mode nothing connects.
  if (!ctx.isTrusted()) throw restrictedError('connect to a team database');
  const { folder, fileUrl } = teamFolder(ctx);
  const url = args.url ?? (await askForUrl(fileUrl));
  const problem = checkDatabaseUrl(url);
  if (problem) throw new UserFacingError(`That is not a team database URL: ${problem}.`);
  const database = describeDatabase(url);
  await withProgress(`Connecting to the team database ${database}…`, () => ctx.connection.saveTeamDatabase(folder, url));
  const state = ctx.connection.state;
  const overridden = process.env[DATABASE_URL_ENV]?.trim() ? `${DATABASE_URL_ENV} is set in VS Code's environment and wins over the saved URL: ` : '';
  if (state.kind === 'failed') {
    throw new UserFacingError(
      `${overridden}SparkQ saved the URL for this folder but could not connect: ${state.problem ?? 'unknown reason'}. Check it and connect again, or disconnect to forget it.`,
      [
        { title: 'Connect to Team Database', command: CommandId.ConnectTeamDatabase },
        { title: 'Show Log', command: CommandId.ShowLog },
      ],
    );
  }
  const using = state.team?.database ?? database;
  if (overridden) void vscode.window.showWarningMessage(`${overridden}this window uses ${using}. Unset it to use the saved URL.`);
  else void vscode.window.showInformationMessage(`SparkQ: connected to the team database ${using}. The URL is kept in VS Code's secret storage for this folder.`);
  return { connected: state.kind === 'client', database: using, source: state.team?.source ?? 'saved' };
};

export const disconnectTeamDatabase: CommandFactory = (ctx) => async () => {
  const folder = ctx.connection.workspaceDir;
  if (folder === undefined) throw new UserFacingError('Open a folder first: the team database is named per workspace folder.');
  const forgotten = await withProgress('Forgetting the team database URL…', () => ctx.connection.forgetTeamDatabase(folder));
  const state = ctx.connection.state;
  const still = state.kind === 'client' && state.team?.database ? ` This window still reaches ${state.team.database} through ${state.team.source === 'environment' ? DATABASE_URL_ENV : 'store.url in sparkq.yml'}.` : '';
  void vscode.window.showInformationMessage(forgotten ? `SparkQ forgot the team database URL of this folder.${still}` : `No team database URL was saved for this folder.${still}`);
  return { forgotten, state: state.kind };
};
