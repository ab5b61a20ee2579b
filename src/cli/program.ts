import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { COMMAND_GROUPS } from './commands';
import { describeError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ExitWith } from './errors';
import type { CliIo } from './io';

/**
 * The `sparkq` program. Commander parses; every usage problem (unknown command or option, missing argument or
 * required option, conflicting options, no command at all) becomes exit 2 with the usage of the command concerned.
 * Everything else that goes wrong is one `error: …` line and exit 1.
 */
export function buildProgram(io: CliIo, writeErr: (s: string) => void = (s) => io.stderr.write(s)): Command {
  const program = new Command('sparkq');
  // Settings made before .command() are inherited by every subcommand.
  program
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr,
      outputError: (s, write) => write(s.startsWith('error: ') ? s : `error: ${s}`),
    })
    .showHelpAfterError()
    .showSuggestionAfterError()
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .description('A durable task queue in your workspace for AI coding agents and scripts.')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .option('--json', 'print the result as JSON on stdout')
    .option('--workspace <dir>', 'the workspace folder (default: $SPARKQ_WORKSPACE, else the nearest folder upward with sparkq.yml or .sparkq/)');
  for (const group of COMMAND_GROUPS) group.register(program, io);
  return program;
}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  // Commander's own messages are held until parsing ends, so that a missing command can get its `error:` line first.
  let usage = '';
  const program = buildProgram(io, (s) => {
    usage += s;
  });
  const flushUsage = () => {
    if (usage !== '') io.stderr.write(usage);
    usage = '';
  };
  try {
    await program.parseAsync(argv, { from: 'user' });
    flushUsage();
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // `sparkq` or `sparkq session` alone: commander shows the usage with no message of its own.
      if (e.code === 'commander.help' && e.exitCode !== 0) io.stderr.write('error: missing command; pick one of the commands below\n\n');
      flushUsage();
      // --help and --version end with exit code 0; everything else commander raises is a usage error.
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    flushUsage();
    if (e instanceof ExitWith) return e.code;
    io.stderr.write(`error: ${describeError(e)}\n`);
    if (io.env['SPARKQ_DEBUG'] && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    return EXIT_FAILURE;
  }
}
