#!/usr/bin/env node
/**
 * The nsmatrix command line: parses flags with yargs and hands each verb to its module in ./commands, loaded
 * lazily so that `nsmatrix --version` and `--help` stay close to the cost of starting node.
 * Exit codes: 0 all cells passed, 1 a cell failed, 2 bad input or usage, 3 infrastructure error, 130 interrupted.
 */
import { ExitCode, InfraError, UsageError } from '../errors.js';
import { isVersionRequest, toolVersion } from '../lib/version.js';
import { STRATEGIES } from '../runtime/strategy.js';
import { DEFAULT_REPORTERS, REPORTER_CATALOG, reporterSummary } from '../../reporters/types.js';

/** FILE:LINE:COL: diagnostics keep the compiler style editors jump to; every other line says it is nsmatrix's. */
const DIAGNOSTIC = /^[^\s:][^:]*:\d+:\d+: /;

/** One error style: `nsmatrix: <message>`, whatever prefix (or none) the thrower used. */
export function errorLine(line: string): string {
  if (DIAGNOSTIC.test(line)) return line;
  return `nsmatrix: ${line.replace(/^nsmatrix(?: [a-z]+)?: (?:error: )?/, '')}`;
}

function printError(error: unknown): number {
  if (error instanceof UsageError) {
    for (const line of error.lines) process.stderr.write(`${errorLine(line)}\n`);
    return error.exitCode;
  }
  if (error instanceof InfraError) {
    process.stderr.write(`${errorLine(error.message)}\n`);
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

/** yargs' messages, made specific where a user's likely intent is known. */
export function usageHint(message: string, argv: readonly string[]): string {
  if (argv[0] === 'shell' && /^Unknown arguments?:/.test(message)) {
    return `${message}: put the command after --, e.g. nsmatrix shell ${argv[1] ?? 'IMAGE'} -- ${argv.slice(2).join(' ') || 'sh -c ...'}`;
  }
  const recommended = /^Did you mean (.+)\?$/.exec(message);
  if (recommended) return `unknown command "${argv.find((a) => !a.startsWith('-')) ?? ''}" (did you mean "${recommended[1]}"?)`;
  return message;
}

type Handler = (argv: Record<string, unknown>) => Promise<number>;

/** Runs a lazily imported command and turns its outcome (or error) into the process exit code. */
function lazy(load: () => Promise<Handler>): (argv: Record<string, unknown>) => Promise<void> {
  return async (argv) => {
    let code: number;
    try {
      // The matrix stage's limits, loaded with the command (not for --help: it pulls in the schema).
      const { DEFAULT_MAX_CELLS, HARD_COMBINATION_LIMIT } = await import('../matrix/expand.js');
      argv['max-cells'] ??= String(DEFAULT_MAX_CELLS);
      checkFlags(argv, HARD_COMBINATION_LIMIT);
      const handler = await load();
      code = await handler(argv);
    } catch (error) {
      code = printError(error);
    }
    process.exitCode = code;
  };
}

/** The options that may be repeated (yargs gives them as arrays); any other option given twice is a usage error. */
const REPEATABLE = new Set(['_', '$0', '--', 'filter', 'reporter', 'r', 'packages', 'p', 'bind', 'refs', 'dirs', 'ids']);

/**
 * Flags given once, path flags not empty, numbers whole: yargs turns a repeated flag into an array and "abc" for
 * a number into NaN, which would otherwise reach the commands and end as an internal error or "got NaN".
 * (Checked here rather than in a yargs `coerce`, whose errors yargs rewraps so that they lose their kind.)
 */
export function checkFlags(argv: Record<string, unknown>, maxCellsLimit: number): void {
  for (const [flag, value] of Object.entries(argv)) {
    if (REPEATABLE.has(flag) || !Array.isArray(value) || flag.length === 1 || /[A-Z]/.test(flag)) continue;
    throw new UsageError(`nsmatrix: --${flag} given ${value.length} times (${value.map(String).join(', ')}): give it once`);
  }
  for (const flag of ['output', 'state-dir']) {
    const value = argv[flag];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`nsmatrix: --${flag} needs a directory, got "${String(value)}"`);
  }
  for (const [flag, max] of [['jobs', 1024], ['max-cells', maxCellsLimit]] as const) {
    const value = argv[flag];
    if (value === undefined) continue;
    const text = String(value).trim();
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1) throw new UsageError(`nsmatrix: --${flag} must be a whole number >= 1, got "${String(value)}"`);
    if (n > max) throw new UsageError(`nsmatrix: --${flag} ${text}: at most ${max}${flag === 'max-cells' ? ' (more cells than nsmatrix expands)' : ''}`);
    argv[flag] = n;
    if (flag === 'jobs') argv.j = n;
  }
}

const stateDirOption = {
  type: 'string',
  describe: 'Where images and scratch space live (env NSMATRIX_STATE_DIR; default /var/lib/nsmatrix)',
} as const;

const archOption = {
  type: 'string',
  describe: "CPU architecture by Debian's name (amd64, i386, arm64, armhf, riscv64, ...); default: the host's",
} as const;

/** `--reporter`, described from the reporter registry: names, files and defaults are never written here. */
const reporterOption = {
  alias: 'r',
  type: 'string',
  array: true,
  describe: `NAME or NAME=PATH, repeatable: ${reporterSummary()}`,
  defaultDescription: DEFAULT_REPORTERS.join(', '),
} as const;

/** Completion: the reporter names after --reporter/-r, shells after `completion`, else yargs' own. */
function complete(current: string, argv: { _: (string | number)[] }, fallback: (done?: (error: Error | null, list?: string[]) => void) => void, done: (list: string[]) => void): void {
  const words = process.argv;
  const previous = words.at(-2);
  if (previous === '--reporter' || previous === '-r') {
    done(REPORTER_CATALOG.map((r) => r.name).filter((n) => n.startsWith(current)));
    return;
  }
  if (argv._.length >= 2 && argv._[argv._.length - 2] === 'completion') {
    done(['bash', 'zsh'].filter((n) => n.startsWith(current)));
    return;
  }
  fallback();
}

const selectionOptions = {
  filter: { type: 'string', array: true, default: [] as string[], describe: 'Only cells with KEY=VALUE (repeatable; AND across keys)' },
  shard: { type: 'string', describe: 'Only shard I of N (I/N, 1-based): deterministic, every cell in exactly one shard' },
  'max-cells': { type: 'string', defaultDescription: '256', describe: 'Refuse matrices that expand to more cells than this (at most 100000)' },
} as const;

/**
 * yargs renders the whole help of a command before running its handler, to have it ready should the handler fail
 * (about 45 ms for `shell`, more than a container's start). nsmatrix never shows it then: its .fail prints its own
 * lines and the handlers catch their errors. --help still renders it, when asked. Without this internal hook
 * (another yargs), the help is rendered as before: only slower.
 */
function skipHelpCache(cli: unknown): void {
  type Usage = { cacheHelpMessage?: () => void };
  const usage = (cli as { getInternalMethods?: () => { getUsageInstance?: () => Usage } }).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

async function main(argv: string[]): Promise<void> {
  if (isVersionRequest(argv)) {
    process.stdout.write(`${toolVersion()}\n`);
    return;
  }
  // yargs picks the completion script's shell from $SHELL when it starts: `completion zsh` must say so first.
  if (argv[0] === 'completion' && (argv[1] === 'zsh' || argv[1] === 'bash')) process.env.SHELL = `/bin/${argv[1]}`;
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
      process.stderr.write(`${errorLine(usageHint(message, argv))}\n`);
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
          .option('jobs', { alias: 'j', type: 'string', describe: "Cells whose steps run at once (default: number of CPUs, capped by max-parallel); the next cells' containers are set up meanwhile" })
          .option('output', { alias: 'o', type: 'string', default: 'nsmatrix-results', describe: 'Directory for logs, journals, artifacts and reports' })
          .option('reporter', reporterOption)
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
      'shell [image]',
      "A container with the project at /src, as you (like nix-shell): the matrix file's shell:, a cell, or an image",
      (y) =>
        y
          .positional('image', { type: 'string', describe: "Image, e.g. debian:trixie (default: the matrix file's shell: image, else its first cell's)" })
          .option('cell', { type: 'string', describe: "Enter exactly this cell's environment (its id, as nsmatrix list shows it)" })
          .option('matrix', { type: 'string', describe: 'Matrix file or its directory (default: nsmatrix.yaml or nsmatrix.yml here)' })
          .option('packages', { alias: 'p', type: 'string', describe: 'Packages (comma-separated or repeated), cached in an image layer' })
          .option('source', { choices: ['overlay', 'ro', 'rw'] as const, describe: "/src: overlay (writes vanish), ro, or rw (writes stay, owned by you); default: shell: source, else overlay (--cell: the matrix's source)" })
          .option('keep', { type: 'string', describe: 'Keep this sandbox under NAME (everything outside /src and your home) and enter it again next time' })
          .option('list', { type: 'boolean', describe: 'List kept sandboxes and project homes' })
          .option('rm', { type: 'string', describe: 'Remove the kept sandbox NAME' })
          .option('rm-home', { type: 'string', describe: "Remove your home of this project, or the home ID (--list) or of project DIR" })
          .option('root', { type: 'boolean', describe: 'Run as root inside, as cells do (default: as the user behind sudo)' })
          .option('bind', { type: 'string', array: true, default: [] as string[], describe: 'Extra bind HOST:CONTAINER[:ro]' })
          .option('network', { choices: ['host', 'private'] as const, describe: "host or private (default: the matrix's network, else host)" })
          .option('boot', { type: 'boolean', describe: '--no-boot: enter a boot: true cell without booting systemd (for an interactive shell)' })
          .option('arch', archOption)
          .option('max-cells', selectionOptions['max-cells'])
          .option('state-dir', stateDirOption)
          .example('$0 shell', "The project's shell: nsmatrix.yaml's shell: section (image, packages, env, setup)")
          .example('$0 shell -p hello -- hello', 'Run one command with one more package, exit with its status (like nix-shell -p hello --run hello)')
          .example('$0 shell --cell debian-trixie_cc-clang', "Exactly one cell's environment (ids: nsmatrix list)")
          .example('$0 shell --source rw --keep work', 'Edit the project at /src as yourself, in a sandbox kept as "work"')
          .example('$0 shell debian:trixie -p gcc,make', 'An image of your choice with gcc and make')
          .example('$0 shell debian:bookworm --arch arm64 -- uname -m', 'An arm64 container (emulated by qemu-user-static)')
          .example('$0 shell --list', 'Kept sandboxes and project homes (nsmatrix shell --rm NAME removes a sandbox)'),
      lazy(async () => {
        const { default: shell } = await import('./commands/shell.js');
        return (a) => {
          const list = (value: unknown): string[] => (value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)]);
          const optional = <T>(key: string, value: T | undefined) => (value === undefined ? {} : { [key]: value });
          return shell({
            ...optional('image', a.image as string | undefined),
            ...optional('cell', a.cell as string | undefined),
            ...optional('matrix', a.matrix as string | undefined),
            packages: list(a.packages).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean),
            bind: a.bind as string[],
            command: ((a['--'] as string[] | undefined) ?? []).map(String),
            ...optional('stateDir', a['state-dir'] as string | undefined),
            ...optional('network', a.network as 'host' | 'private' | undefined),
            ...optional('arch', a.arch as string | undefined),
            ...optional('source', a.source as 'overlay' | 'ro' | 'rw' | undefined),
            ...optional('keep', a.keep as string | undefined),
            ...optional('rm', a.rm as string | undefined),
            list: a.list === true,
            ...optional('rmHome', a['rm-home'] as string | undefined),
            root: a.root === true,
            noBoot: a.boot === false,
            maxCells: a['max-cells'] as number,
          });
        };
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
              .option('arch', archOption)
              .option('state-dir', stateDirOption)
              .example('$0 images build debian:trixie', 'Build the trixie base image')
              .example('$0 images build debian:bookworm --arch arm64', 'Build the arm64 bookworm image'),
          lazy(async () => {
            const { build } = await import('./commands/images.js');
            return (a) =>
              build({
                refs: a.refs as string[],
                stateDir: a['state-dir'] as string | undefined,
                packages: (a.packages as string[]).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean),
                ...(a.arch !== undefined ? { arch: a.arch as string } : {}),
              });
          }),
        )
        .command(
          'list',
          'List cached images: name, key, size, age, last used',
          (yy) =>
            yy
              .option('state-dir', stateDirOption)
              .option('format', { choices: ['table', 'json'] as const, default: 'table' as const })
              .example('$0 images list', 'Name, key, size, age and last use of every cached image')
              .example('$0 images list --format json', 'The manifests as JSON'),
          lazy(async () => {
            const { list } = await import('./commands/images.js');
            return (a) => list({ stateDir: a['state-dir'] as string | undefined, format: a.format as 'table' | 'json' });
          }),
        )
        .command(
          'rm <refs..>',
          'Remove cached images by name or key',
          (yy) =>
            yy
              .positional('refs', { type: 'string', array: true, describe: 'Image names (debian:trixie) or key prefixes (4+ hex digits)', default: undefined })
              .option('state-dir', stateDirOption)
              .example('$0 images rm debian:trixie', 'Remove every cached layer of that name')
              .example('$0 images rm 8561ce1b', 'Remove the image whose key starts so'),
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
        .example('$0 images build debian:trixie -p build-essential', 'Build (or find) an image with a package layer')
        .example('$0 images list', 'What the cache holds')
        .example('$0 images prune --older-than 7d', 'Drop images unused for a week')
        .demandCommand(1, 'images: a subcommand is required (build, list, rm, prune)'),
    )
    .command('cache', 'List and remove the caches kept across runs (cache: directories, package pools)', (y) =>
      y
        .command(
          'list',
          'Every cache: id, size, last use, container path, key; and the package pools',
          (yy) =>
            yy
              .option('state-dir', stateDirOption)
              .option('format', { choices: ['table', 'json'] as const, default: 'table' as const })
              .example('$0 cache list', 'Every cache and package pool with its size')
              .example('$0 cache list --format json', 'The same as JSON'),
          lazy(async () => {
            const { list } = await import('./commands/cache.js');
            return (a) => list({ stateDir: a['state-dir'] as string | undefined, format: a.format as 'table' | 'json' });
          }),
        )
        .command(
          'rm [ids..]',
          'Remove caches by id prefix, a package pool as packages/POOL, or --all',
          (yy) =>
            yy
              .positional('ids', { type: 'string', array: true, default: [] as string[] })
              .option('all', { type: 'boolean', default: false })
              .option('state-dir', stateDirOption)
              .example('$0 cache rm 28d7a141', 'Remove one cache')
              .example('$0 cache rm packages/apt-debian-bookworm-amd64', 'Empty a package pool'),
          lazy(async () => {
            const { rm } = await import('./commands/cache.js');
            return (a) => rm({ stateDir: a['state-dir'] as string | undefined, ids: a.ids as string[], all: a.all as boolean });
          }),
        )
        .command(
          'prune',
          'Remove caches unused for a while, then the least recently used above a total size',
          (yy) =>
            yy
              .option('older-than', { type: 'string', describe: 'Age since last use, e.g. 14d' })
              .option('max-size', { type: 'string', describe: 'Keep the total at most this, e.g. 10G' })
              .option('state-dir', stateDirOption)
              .example('$0 cache prune --older-than 14d --max-size 20G', 'Drop stale caches, then keep 20 GiB at most'),
          lazy(async () => {
            const { prune } = await import('./commands/cache.js');
            return (a) =>
              prune({ stateDir: a['state-dir'] as string | undefined, ...(a['older-than'] !== undefined ? { olderThan: a['older-than'] as string } : {}), ...(a['max-size'] !== undefined ? { maxSize: a['max-size'] as string } : {}) });
          }),
        )
        .example('$0 cache list', 'What the caches hold')
        .example('$0 cache prune --older-than 14d', 'Drop caches unused for two weeks')
        .demandCommand(1, 'cache: a subcommand is required (list, rm, prune)'),
    )
    .command(
      'doctor',
      'Check what this host can do, with a fix for each problem',
      (y) =>
        y
          .option('state-dir', stateDirOption)
          .example('$0 doctor', 'Every check, with the fix for each problem (exit 3 when one fails)')
          .example('$0 doctor --state-dir /srv/nsmatrix', 'Also check another state directory'),
      lazy(async () => {
        const { default: doctor } = await import('./commands/doctor.js');
        return (a) => doctor({ stateDir: a['state-dir'] as string | undefined });
      }),
    )
    .command(
      'gc',
      'Remove what crashed or killed runs left behind (scratch dirs, cgroups, half-built images)',
      (y) =>
        y
          .option('state-dir', stateDirOption)
          .example('$0 gc', 'Clean up after a killed run (safe while other runs go on)')
          .example('$0 gc --state-dir /srv/nsmatrix', 'Another state directory'),
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
          .positional('dirs', { type: 'string', array: true, describe: 'Output directories of shard runs (each with its results.json)', default: undefined })
          .option('output', { alias: 'o', type: 'string', default: 'nsmatrix-results', describe: 'Where the merged reports and cell directories go (the same rules as run --output)' })
          .option('reporter', reporterOption)
          .example('$0 merge shard-1 shard-2 -o merged', 'One report for two shards (junit and json, like run)')
          .example('$0 merge shard-* -o merged -r junit -r json -r markdown -r html', 'Every report')
          .epilogue('Exit status: as run (0, 1, 3 or 130) for the merged cells; 2 when a shard of the run is missing (a warning names it) or on bad input.'),
      lazy(async () => {
        const { default: merge } = await import('./commands/merge.js');
        return (a) => merge({ dirs: a.dirs as string[], output: a.output as string, reporter: a.reporter as string[] | undefined });
      }),
    )
    .command(
      'completion [shell]',
      'Print a bash or zsh completion script',
      (y) =>
        y
          .positional('shell', { choices: ['bash', 'zsh'] as const, describe: 'The shell (default: the one in $SHELL)' })
          .example('$0 completion >> ~/.bashrc', 'Bash completion for every new shell')
          .example('$0 completion zsh >> ~/.zshrc', 'Zsh completion'),
      () => {
        (cli as unknown as { showCompletionScript($0: string, command: string): void }).showCompletionScript('nsmatrix', 'completion');
      },
    )
    // yargs answers the completion scripts' queries (--get-yargs-completions) through a hidden command.
    .completion('__complete', false, complete as never);
  skipHelpCache(cli);
  await cli.parseAsync();
}

/** How node reports output that nobody reads any more: the reader closed its end, or the terminal went away. */
const GONE_READER = new Set(['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED']);

/**
 * Output whose reader went away (`nsmatrix run | head`, a CI log collector that died) must not end a run half-way:
 * node reports the closed pipe as an 'error' event, which unhandled killed the process with a stack trace, no
 * cleanup and its containers left running. What cannot be shown is dropped; the run goes on, stops its containers,
 * writes its reports and exits with its own status.
 */
export function tolerateGoneReader(stream: NodeJS.WritableStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (!GONE_READER.has(error.code ?? '')) throw error;
  });
}

for (const stream of [process.stdout, process.stderr]) tolerateGoneReader(stream);

main(process.argv.slice(2)).catch((error: unknown) => {
  process.exitCode = printError(error);
});
