import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { COMMAND_GROUPS, type LazyCommandGroup } from './commands';
import { describeError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ExitWith } from './errors';
import type { CliIo } from './io';

/**
 * The `sparkq` program. Commander parses; every usage problem (unknown command or option, missing argument or
 * required option, conflicting options, no command at all) becomes exit 2 with the usage of the command concerned.
 * Everything else that goes wrong is one `error: …` line and exit 1.
 */
export function buildProgram(io: CliIo, writeErr: (s: string) => void = (s) => io.stderr.write(s), argv?: readonly string[]): Command {
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
  for (const group of groupsFor(argv)) {
    group.load().register(program, io);
    loadedGroups.add(group.names[0]!);
  }
  return program;
}

const loadedGroups = new Set<string>();

/** The command groups this process has loaded (by their first command's name): the CLI's code cache asks. */
export function groupsLoaded(): string[] {
  return [...loadedGroups];
}

/**
 * The command groups a command line needs: the one that adds the command it names (`sparkq --json peek …`,
 * `sparkq help peek`), or all of them — for `sparkq --help`, an unknown command (its error suggests the nearest
 * names) and anything this quick look does not recognise. Commander gives the same answer either way; loading one
 * group spares a command the modules of all the others (see commands/index.ts).
 */
export function groupsFor(argv: readonly string[] | undefined): readonly LazyCommandGroup[] {
  const name = argv && commandWord(argv);
  const group = name === undefined ? undefined : COMMAND_GROUPS.find((g) => g.names.includes(name));
  return group ? [group] : COMMAND_GROUPS;
}

/** The first word of `argv` after the program's own options, and after `help`; undefined when there is none. */
function commandWord(argv: readonly string[]): string | undefined {
  let afterHelp = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json' || a.startsWith('--workspace=')) continue;
    if (a === '--workspace') {
      i++;
      continue;
    }
    // Any other option before the command (-h, -v, a typo): leave it all to commander.
    if (a.startsWith('-')) return undefined;
    if (a === 'help' && !afterHelp) {
      afterHelp = true;
      continue;
    }
    return a;
  }
  return undefined;
}

/**
 * Runs one command line; resolves to the exit code. Never throws. `loadAll`: with every command group loaded, as
 * before groups were loaded on demand (tests hold the two to the same answers).
 */
export async function runCli(argv: string[], io: CliIo, { loadAll = false }: { loadAll?: boolean } = {}): Promise<number> {
  // Commander's own messages are held until parsing ends, so that a missing command can get its `error:` line first.
  let usage = '';
  const program = buildProgram(
    io,
    (s) => {
      usage += s;
    },
    loadAll ? undefined : argv,
  );
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
