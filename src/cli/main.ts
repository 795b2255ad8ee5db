#!/usr/bin/env node
/**
 * The nsmatrix command line: parses flags with yargs and hands each verb to its module in ./commands, loaded
 * lazily so that `nsmatrix --version` and `--help` stay close to the cost of starting node.
 * Exit codes: 0 all cells passed, 1 a cell failed, 2 bad input or usage, 3 infrastructure error, 130 interrupted.
 */
import { ExitCode, InfraError, UsageError } from '../errors.js';
import { toolVersion } from '../lib/version.js';
import { STRATEGIES } from '../runtime/strategy.js';

function printError(error: unknown): number {
  if (error instanceof UsageError) {
    for (const line of error.lines) process.stderr.write(`${line}\n`);
    return error.exitCode;
  }
  if (error instanceof InfraError) {
    process.stderr.write(`nsmatrix: error: ${error.message}\n`);
    if (error.tail.length > 0) process.stderr.write(error.tail.map((l) => `  | ${l}`).join('\n') + '\n');
    if (error.logPath) process.stderr.write(`nsmatrix: full log: ${error.logPath}\n`);
    return error.exitCode;
  }
  const e = error as { message?: string } | undefined;
  process.stderr.write(`nsmatrix: internal error: ${e?.message ?? String(error)}\n`);
  if (process.env.NSMATRIX_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
  else process.stderr.write('nsmatrix: set NSMATRIX_DEBUG=1 for a stack trace, and please report it\n');
  return ExitCode.infrastructure;
}

type Handler = (argv: Record<string, unknown>) => Promise<number>;

/** Runs a lazily imported command and turns its outcome (or error) into the process exit code. */
function lazy(load: () => Promise<Handler>): (argv: Record<string, unknown>) => Promise<void> {
  return async (argv) => {
    let code: number;
    try {
      checkPathFlags(argv);
      const handler = await load();
      code = await handler(argv);
    } catch (error) {
      code = printError(error);
    }
    process.exitCode = code;
  };
}

/**
 * Path flags given once, not empty: yargs turns a repeated string flag into an array, which would otherwise
 * reach path functions and end as an internal error. (Checked here rather than in a yargs `coerce`, whose
 * errors yargs rewraps so that they lose their kind.)
 */
function checkPathFlags(argv: Record<string, unknown>): void {
  for (const flag of ['output', 'state-dir']) {
    const value = argv[flag];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      throw new UsageError(`nsmatrix: --${flag} given ${value.length} times (${value.map(String).join(', ')}): give it once`);
    }
    if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`nsmatrix: --${flag} needs a directory, got "${String(value)}"`);
  }
}

const stateDirOption = {
  type: 'string',
  describe: 'Where images and scratch space live (env NSMATRIX_STATE_DIR; default /var/lib/nsmatrix)',
} as const;

const selectionOptions = {
  filter: { type: 'string', array: true, default: [] as string[], describe: 'Only cells with KEY=VALUE (repeatable; AND across keys)' },
  shard: { type: 'string', describe: 'Only shard I of N (I/N, 1-based): deterministic, every cell in exactly one shard' },
  'max-cells': { type: 'number', default: 256, describe: 'Refuse matrices that expand to more cells than this' },
} as const;

async function main(argv: string[]): Promise<void> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    process.stdout.write(`${toolVersion()}\n`);
    return;
  }
  const [{ default: yargs }, { hideBin }] = await Promise.all([import('yargs'), import('yargs/helpers')]);
  void hideBin;
  const cli = yargs(argv)
    .scriptName('nsmatrix')
    .usage('$0 <command> [options]\n\nRun test matrices across Linux distributions in ephemeral systemd-nspawn containers.')
    .version(toolVersion())
    .alias('v', 'version')
    .help()
    .alias('h', 'help')
    .strict()
    .parserConfiguration({ 'populate--': true })
    .demandCommand(1, 'a command is required')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 all cells passed, 1 a cell failed, 2 bad input or usage, 3 infrastructure error, 130 interrupted.')
    .fail((message, error) => {
      if (error) throw error;
      process.stderr.write(`nsmatrix: ${message}\n`);
      process.stderr.write('nsmatrix: see nsmatrix --help, or nsmatrix <command> --help\n');
      process.exit(ExitCode.usage);
    })
    .command(
      'validate [file]',
      'Check a matrix file and report every problem with FILE:LINE:COL',
      (y) =>
        y
          .positional('file', { type: 'string', describe: 'Matrix file (default: nsmatrix.yaml or nsmatrix.yml here)' })
          .option('max-cells', selectionOptions['max-cells'])
          .example('$0 validate', 'Check ./nsmatrix.yaml')
          .example('$0 validate matrices/smoke.yaml', 'Check an example matrix'),
      lazy(async () => {
        const { default: validate } = await import('./commands/validate.js');
        return (a) => validate({ file: a.file as string | undefined, maxCells: a['max-cells'] as number });
      }),
    )
    .command(
      'list [file]',
      'Print the expanded cells of a matrix',
      (y) =>
        y
          .positional('file', { type: 'string', describe: 'Matrix file (default: nsmatrix.yaml or nsmatrix.yml here)' })
          .option('format', { choices: ['table', 'json', 'github'] as const, default: 'table' as const, describe: 'Output format; github prints a strategy.matrix' })
          .options(selectionOptions)
          .example('$0 list matrices/smoke.yaml --format json', 'The cells as JSON (id, name, image, values)')
          .example('$0 list --format github', 'A GitHub Actions strategy.matrix with one entry per cell')
          .example('$0 list --filter image=debian:sid --shard 1/2', 'Select cells'),
      lazy(async () => {
        const { default: list } = await import('./commands/list.js');
        return (a) =>
          list({
            file: a.file as string | undefined,
            format: a.format as 'table' | 'json' | 'github',
            filter: a.filter as string[],
            shard: a.shard as string | undefined,
            maxCells: a['max-cells'] as number,
          });
      }),
    )
    .command(
      'run [file]',
      'Run every cell of a matrix in its own ephemeral container',
      (y) =>
        y
          .positional('file', { type: 'string', describe: 'Matrix file (default: nsmatrix.yaml or nsmatrix.yml here)' })
          .options(selectionOptions)
          .option('jobs', { alias: 'j', type: 'number', describe: 'Cells run at once (default: number of CPUs, capped by max-parallel)' })
          .option('output', { alias: 'o', type: 'string', default: 'nsmatrix-results', describe: 'Directory for logs, journals, artifacts and reports' })
          .option('reporter', { alias: 'r', type: 'string', array: true, describe: 'NAME or NAME=PATH: junit, json, markdown, html (repeatable; default junit and json)' })
          .option('state-dir', stateDirOption)
          .option('plain', { type: 'boolean', default: false, describe: 'Plain timestamped lines even on a terminal' })
          .option('stream', { type: 'boolean', default: false, describe: 'Plain view: print every line of step output as it comes, prefixed by its cell' })
          .option('fail-fast', { type: 'boolean', describe: "Override the matrix's fail-fast" })
          .option('ephemeral-strategy', { choices: ['auto', ...STRATEGIES] as const, default: 'auto' as const, describe: 'How each cell gets its throwaway root' })
          .option('seccomp', { type: 'boolean', default: true, describe: 'Keep the syscall filter; --no-seccomp sets SYSTEMD_SECCOMP=0 for faster starts (trusted matrices only)' })
          .option('shell-on-failure', { type: 'boolean', default: false, describe: "Open a shell in the first failing cell's container (needs a terminal)" })
          .example('$0 run matrices/smoke.yaml', 'Run the smoke matrix over four Debian releases')
          .example('$0 run --filter image=debian:trixie -r html', 'One image, with an HTML report')
          .example('$0 run --shard 2/4 -o shard-2', 'One shard of four (merge them with nsmatrix merge)'),
      lazy(async () => {
        const { default: run } = await import('./commands/run.js');
        return (a) => run(a);
      }),
    )
    .command(
      'shell <image>',
      'A throwaway container with the current directory at /src (like nix-shell)',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true, describe: 'Image, e.g. debian:trixie' })
          .option('packages', { alias: 'p', type: 'string', array: true, default: [] as string[], describe: 'Packages (comma-separated or repeated), cached in an image layer' })
          .option('bind', { type: 'string', array: true, default: [] as string[], describe: 'Extra bind HOST:CONTAINER[:ro]' })
          .option('network', { choices: ['host', 'private'] as const, default: 'host' as const })
          .option('state-dir', stateDirOption)
          .example('$0 shell debian:trixie -p gcc,make', 'An interactive shell with gcc and make')
          .example('$0 shell debian:bookworm -- make check', 'Run one command, exit with its status'),
      lazy(async () => {
        const { default: shell } = await import('./commands/shell.js');
        return (a) =>
          shell({
            image: a.image as string,
            packages: (a.packages as string[]).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean),
            bind: a.bind as string[],
            command: ((a['--'] as string[] | undefined) ?? []).map(String),
            stateDir: a['state-dir'] as string | undefined,
            network: a.network as 'host' | 'private',
          });
      }),
    )
    .command('images', 'Build, list and remove cached images', (y) =>
      y
        .command(
          'build <refs..>',
          'Build (or find cached) images',
          (yy) =>
            yy
              .positional('refs', { type: 'string', array: true, demandOption: true })
              .option('packages', { alias: 'p', type: 'string', array: true, default: [] as string[], describe: 'Packages to layer on top' })
              .option('state-dir', stateDirOption)
              .example('$0 images build debian:trixie', 'Build the trixie base image'),
          lazy(async () => {
            const { build } = await import('./commands/images.js');
            return (a) =>
              build({
                refs: a.refs as string[],
                stateDir: a['state-dir'] as string | undefined,
                packages: (a.packages as string[]).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean),
              });
          }),
        )
        .command(
          'list',
          'List cached images: name, key, size, age, last used',
          (yy) => yy.option('state-dir', stateDirOption).option('format', { choices: ['table', 'json'] as const, default: 'table' as const }),
          lazy(async () => {
            const { list } = await import('./commands/images.js');
            return (a) => list({ stateDir: a['state-dir'] as string | undefined, format: a.format as 'table' | 'json' });
          }),
        )
        .command(
          'rm <refs..>',
          'Remove cached images by name or key',
          (yy) => yy.positional('refs', { type: 'string', array: true, demandOption: true }).option('state-dir', stateDirOption),
          lazy(async () => {
            const { rm } = await import('./commands/images.js');
            return (a) => rm({ stateDir: a['state-dir'] as string | undefined, refs: a.refs as string[] });
          }),
        )
        .command(
          'prune',
          'Remove images not used for a while',
          (yy) =>
            yy
              .option('older-than', { type: 'string', default: '14d', describe: 'Age since last use, e.g. 14d, 12h' })
              .option('state-dir', stateDirOption)
              .example('$0 images prune --older-than 7d', 'Drop images unused for a week'),
          lazy(async () => {
            const { prune } = await import('./commands/images.js');
            return (a) => prune({ stateDir: a['state-dir'] as string | undefined, olderThan: a['older-than'] as string });
          }),
        )
        .demandCommand(1, 'images: a subcommand is required (build, list, rm, prune)'),
    )
    .command(
      'doctor',
      'Check what this host can do, with a fix for each problem',
      (y) => y.option('state-dir', stateDirOption),
      lazy(async () => {
        const { default: doctor } = await import('./commands/doctor.js');
        return (a) => doctor({ stateDir: a['state-dir'] as string | undefined });
      }),
    )
    .command(
      'gc',
      'Remove what crashed or killed runs left behind (scratch dirs, cgroups, half-built images)',
      (y) => y.option('state-dir', stateDirOption),
      lazy(async () => {
        const { default: gc } = await import('./commands/gc.js');
        return (a) => gc({ stateDir: a['state-dir'] as string | undefined });
      }),
    )
    .command(
      'merge <dirs..>',
      'Merge the results of shards into one set of reports',
      (y) =>
        y
          .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'Output directories of shard runs' })
          .option('output', { alias: 'o', type: 'string', default: 'nsmatrix-results', describe: 'Where the merged reports go' })
          .option('reporter', { alias: 'r', type: 'string', array: true, describe: 'NAME or NAME=PATH (default junit, json, markdown, html)' })
          .example('$0 merge shard-1 shard-2 -o merged', 'One report for two shards'),
      lazy(async () => {
        const { default: merge } = await import('./commands/merge.js');
        return (a) => merge({ dirs: a.dirs as string[], output: a.output as string, reporter: a.reporter as string[] | undefined });
      }),
    )
    .completion('completion', 'Print a bash/zsh completion script');
  await cli.parseAsync();
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.exitCode = printError(error);
});
