/**
 * The `sparkq` command line. Its commands arrive with the IPC issue; until then it says so plainly rather than
 * pretending to work.
 */
import { version } from '../../package.json';

function main(argv: string[]): number {
  if (argv.includes('--version') || argv.includes('-v')) {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  process.stderr.write('error: the sparkq command line is not built yet; only `sparkq --version` works in this version\n');
  return 1;
}

process.exitCode = main(process.argv.slice(2));
