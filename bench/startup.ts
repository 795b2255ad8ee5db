/** Start-up cost of the CLI against plain node: heavy modules must be imported lazily. */
import { fileURLToPath } from 'node:url';
import { report, timeCommand } from './stats.js';

export async function benchStartup(): Promise<Record<string, number>> {
  const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
  const runs = 21;
  const node = await timeCommand(runs, process.execPath, ['-e', '0']);
  // The executable as users start it (its #! line: see src/cli/bin.ts on NODE_EXTRA_CA_CERTS).
  const version = await timeCommand(runs, cli, ['--version']);
  const help = await timeCommand(runs, cli, ['--help']);
  report(`CLI start-up (median of ${runs})`, [
    ['node -e 0', node.median],
    ['nsmatrix --version', version.median, `ratio ${(version.median / node.median).toFixed(2)}x node`],
    ['nsmatrix --help (loads yargs)', help.median, `ratio ${(help.median / node.median).toFixed(2)}x node`],
  ]);
  return { nodeMs: node.median, versionMs: version.median, helpMs: help.median };
}
