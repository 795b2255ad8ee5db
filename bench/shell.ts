/**
 * Entering a shell whose layers are cached: `nsmatrix shell IMAGE -- true` (a whole CLI invocation, node's start-up
 * included) and the project's shell (`nsmatrix shell -- true` in a directory whose nsmatrix.yaml has a `shell:`
 * section), against a raw systemd-nspawn over an overlay of the same image running `true` (and --volatile=overlay),
 * with the options this host needs (`--register=no --keep-unit` without systemd as PID 1). The runs alternate, so
 * that a busy machine slows every side alike. The target (issue 16): at most 150 ms more than the raw overlay.
 * nsmatrix runs as users start it: the executable itself (its #! line, as npm's bin link and the wrapper
 * setup-host.sh installs start it), which leaves the certificates NODE_EXTRA_CA_CERTS names for nsmatrix's own
 * downloads (src/cli/bin.ts); one row runs `node main.js` instead, which has node parse them at start-up.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { provisionImage } from '../src/images/index.js';
import { detectHost } from '../src/lib/host.js';
import { hostNspawnArgs, hostNspawnEnv } from '../src/lib/nspawn.js';
import { median, report } from './stats.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
export const SHELL_TARGET_MS = 150;

function sample(fn: () => void): number {
  const started = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

export async function benchShell(options: { stateDir?: string; runs?: number } = {}): Promise<Record<string, number>> {
  const runs = options.runs ?? 15;
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-shell-');
  const stateDir = options.stateDir ?? join(work, 'state');
  try {
    const image = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: [] }, { stateDir });
    const project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'nsmatrix.yaml'), 'matrix:\n  image: [debian:bookworm]\nshell:\n  env: { CC: gcc }\nsteps:\n  - name: s\n    run: "true"\n');
    const host = detectHost();
    const env = { ...process.env, ...hostNspawnEnv(host) };
    const quiet = { stdio: 'ignore' as const, cwd: project };
    const shellImage = () => execFileSync(CLI, ['shell', 'debian:bookworm', '--state-dir', stateDir, '--', 'true'], quiet);
    const shellImageNode = () => execFileSync(process.execPath, [CLI, 'shell', 'debian:bookworm', '--state-dir', stateDir, '--', 'true'], quiet);
    const shellProject = () => execFileSync(CLI, ['shell', '--state-dir', stateDir, '--', 'true'], quiet);
    const version = () => execFileSync(CLI, ['--version'], quiet);
    const upper = join(work, 'raw-upper');
    const rawOverlay = () => {
      mkdirSync(upper);
      execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', image.root, '--read-only', `--overlay=+/:${upper}:/`, '--as-pid2', '--pipe', '--', 'true'], { stdio: 'ignore', env });
      rmSync(upper, { recursive: true, force: true });
    };
    const rawVolatile = () =>
      execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', image.root, '--volatile=overlay', '--as-pid2', '--pipe', '--', 'true'], { stdio: 'ignore', env });

    // Warm: the page cache, and the shell's own state (home directory, state layout).
    for (const fn of [shellImage, shellProject, shellImageNode, rawOverlay, rawVolatile, version]) fn();
    const samples: Record<'image' | 'imageNode' | 'project' | 'overlay' | 'volatile' | 'version', number[]> = { image: [], imageNode: [], project: [], overlay: [], volatile: [], version: [] };
    for (let i = 0; i < runs; i++) {
      samples.overlay.push(sample(rawOverlay));
      samples.image.push(sample(shellImage));
      samples.volatile.push(sample(rawVolatile));
      samples.project.push(sample(shellProject));
      samples.version.push(sample(version));
      samples.imageNode.push(sample(shellImageNode));
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>;
    const overhead = m.image - m.overlay;
    // The runs alternate: each shell run minus the raw run just before it, so that load that changes from minute to
    // minute cancels out of each difference.
    const pairedOverhead = median(samples.image.map((ms, i) => ms - samples.overlay[i]!));
    const projectOverhead = m.project - m.overlay;
    const verdict = (ms: number) => (ms <= SHELL_TARGET_MS ? `within the ${SHELL_TARGET_MS} ms target` : `OVER the ${SHELL_TARGET_MS} ms target`);
    report(`shell (debian:bookworm, cached layers, ${runs} alternating runs, medians)`, [
      ['raw systemd-nspawn --overlay ... true', m.overlay],
      ['raw systemd-nspawn --volatile=overlay ... true', m.volatile],
      ['nsmatrix shell debian:bookworm -- true', m.image, `+${overhead.toFixed(1)} ms (ratio ${(m.image / m.overlay).toFixed(2)}x) over raw overlay: ${verdict(overhead)}`],
      ["nsmatrix shell -- true, the project's shell: section", m.project, `+${projectOverhead.toFixed(1)} ms (ratio ${(m.project / m.overlay).toFixed(2)}x) over raw overlay: ${verdict(projectOverhead)}`],
      ['nsmatrix --version: node and the CLI starting, nothing else', m.version],
      ['node main.js shell debian:bookworm -- true', m.imageNode, `+${(m.imageNode - m.overlay).toFixed(1)} ms over raw overlay (NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set here: node parses it at start-up' : 'unset here'})`],
      [`per-pair differences shell - raw overlay, median of ${runs} (ms)`, pairedOverhead, 'each shell run against the raw run just before it'],
    ]);
    return {
      rawNspawnOverlayMs: m.overlay,
      rawNspawnVolatileMs: m.volatile,
      nsmatrixShellImageMs: m.image,
      nsmatrixShellProjectMs: m.project,
      nsmatrixVersionMs: m.version,
      nodeMainShellImageMs: m.imageNode,
      extraCaCertsSet: process.env.NODE_EXTRA_CA_CERTS ? 1 : 0,
      shellOverheadMs: overhead,
      pairedShellOverheadMs: pairedOverhead,
      shellRatio: m.image / m.overlay,
      projectShellOverheadMs: projectOverhead,
      targetMs: SHELL_TARGET_MS,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchShell({ ...(process.env.NSMATRIX_STATE_DIR ? { stateDir: process.env.NSMATRIX_STATE_DIR } : {}) });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
