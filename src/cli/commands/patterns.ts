import * as path from 'node:path';
import type { Task } from '../../core/model';
import { listPatterns, type Pattern, type PatternLoader, patternLoader, unknownPattern } from '../../core/patterns';
import { PATTERN_STATS_HEADER, patternStats, patternStatsCells, patternStatsMarkdown } from '../../core/patternStats';
import { loadWorkspaceConfig } from '../../owner/configWatcher';
import { action, type CommandContext } from '../context';
import { EXIT_USAGE } from '../errors';
import { clip } from '../output';
import type { CommandGroup } from '../registry';
import { eachTaskPage } from './tasks';

interface StatsOptions {
  markdown?: boolean;
}

function loaderOf(ctx: CommandContext): PatternLoader {
  const workspace = ctx.workspace();
  return patternLoader(path.resolve(workspace, loadWorkspaceConfig(workspace).patternsDir));
}

function patternJson(p: Pattern) {
  return {
    name: p.name,
    file: p.file,
    hash: p.hash,
    description: p.description,
    tool: p.tool,
    variables: Object.fromEntries(Object.entries(p.variables).map(([k, v]) => [k, { ...v }])),
    validate: p.validate,
    body: p.body,
  };
}

/** `name, verb=GET`: the variables, with their defaults. */
function variablesText(p: Pattern): string {
  return Object.entries(p.variables)
    .map(([k, v]) => (v.default === null ? k : `${k}=${v.default}`))
    .join(', ');
}

/** `sparkq patterns [list] | show NAME | stats`: the prompt patterns and how they have done. */
export const patternsCommands: CommandGroup = {
  register(program, io) {
    const patterns = program.command('patterns').description('prompt patterns: Markdown prompt templates in the patterns folder, and how they have done');

    patterns
      .command('list', { isDefault: true })
      .description('the patterns: name, tool, variables (with defaults) and description (the default subcommand)')
      .action(
        action(io, (ctx) => {
          const loader = loaderOf(ctx);
          const { patterns: found, errors } = listPatterns(loader);
          if (ctx.json) {
            ctx.out.printJson({ dir: loader.dir, patterns: found.map(patternJson), errors: errors.map((e) => ({ file: e.file, issues: e.issues })) });
            return;
          }
          for (const e of errors) ctx.io.stderr.write(`warning: ${e.message.split('\n').join('; ')}\n`);
          if (found.length === 0) {
            ctx.out.line(errors.length ? `No valid patterns in ${loader.dir}.` : `No patterns in ${loader.dir}: add NAME.md files with front matter (name, description, tool, variables) and the prompt.`);
            return;
          }
          ctx.out.table(
            ['PATTERN', 'TOOL', 'VARIABLES', 'DESCRIPTION'],
            found.map((p) => [p.name, p.tool ?? '-', variablesText(p), clip(p.description, 70)]),
          );
        }),
      );

    patterns
      .command('show')
      .description('one pattern: its front matter and its prompt template')
      .argument('<name>', 'the pattern (its file name without .md)')
      .action(
        action(io, (ctx, [name]) => {
          const loader = loaderOf(ctx);
          const p = loader.load(name!);
          if (p === null) throw unknownPattern(name!, loader);
          if (ctx.json) {
            ctx.out.printJson(patternJson(p));
            return;
          }
          ctx.out.fields([
            ['pattern', p.name],
            ['file', p.file],
            ['hash', p.hash],
            ['tool', p.tool ?? '- (say it when enqueueing)'],
            ['description', p.description],
            ['validate', p.validate === null ? undefined : JSON.stringify(p.validate)],
          ]);
          const vars = Object.entries(p.variables);
          if (vars.length > 0) {
            ctx.out.line('');
            ctx.out.table(
              ['VARIABLE', 'DEFAULT', 'DESCRIPTION'],
              vars.map(([k, v]) => [k, v.default === null ? '(required)' : JSON.stringify(v.default), v.description]),
            );
          }
          ctx.out.line('');
          ctx.out.block('prompt', p.body);
        }),
      );

    patterns
      .command('stats')
      .description('per pattern, from the queue\'s history (archived tasks included): uses, first-try success, median rounds and attempts, tokens and run time, cost, first-round validation pass rate')
      .option('--markdown', 'the table as Markdown (the proven-patterns table of a playbook)')
      .action(
        action<StatsOptions>(io, (ctx, _args, opts) => {
          if (opts.markdown === true && ctx.json) {
            ctx.command.error('give --json or --markdown, not both', { exitCode: EXIT_USAGE, code: 'sparkq.usage' });
          }
          return ctx.withQueue(async (q) => {
            // Every task, a page at a time, keeping those made from a pattern (a requeued copy keeps its original's).
            const tasks: Task[] = [];
            const keep = (page: Task[]) => {
              for (const t of page) if (t.pattern !== null) tasks.push(t);
            };
            await eachTaskPage(q, {}, Infinity, keep, () => Promise.resolve(true));
            const rows = patternStats(tasks);
            if (ctx.json) {
              ctx.out.printJson(rows);
              return;
            }
            if (opts.markdown === true) {
              ctx.out.line(patternStatsMarkdown(rows));
              return;
            }
            if (rows.length === 0) {
              ctx.out.line('No task was made from a pattern yet (sparkq enqueue --pattern NAME, or pattern: in a plan).');
              return;
            }
            ctx.out.table([...PATTERN_STATS_HEADER], rows.map(patternStatsCells));
            ctx.out.line(ctx.out.style('First-try: succeeded on its first attempt, never requeued, of the uses that finished. Medians are per use (a task and its requeued copies). Validation: passed in its first round, of the uses a validator judged.', 'dim'));
          });
        }),
      );
  },
};
