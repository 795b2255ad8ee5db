/**
 * Container cost: nsmatrix's per-cell exec path (open the cell, run one trivial step, close) against a raw
 * systemd-nspawn loop over the same image and command in the same run; start time on a ~200 MB image against the
 * same image padded to ~1 GB; and `podman run --rm --rootfs` on the same root filesystem where podman works.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { provisionImage } from '../src/images/index.js';
import { detectHost } from '../src/lib/host.js';
import { hostNspawnArgs, hostNspawnEnv } from '../src/lib/nspawn.js';
import { resources } from '../src/lib/resources.js';
import { createRunScratch, openContainer } from '../src/runtime/index.js';
import type { ContainerOptions } from '../src/runtime/types.js';
import { report, timeIt } from './stats.js';

const MiB = 1024 * 1024;

function duBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

/** Copies the image and adds a tree of incompressible files until it weighs about `targetBytes`. */
function paddedCopy(root: string, target: string, targetBytes: number): void {
  execFileSync('cp', ['-a', '--reflink=auto', root, target]);
  const padDir = join(target, 'opt', 'padding');
  mkdirSync(padDir, { recursive: true });
  const missing = targetBytes - duBytes(target);
  const chunk = Buffer.alloc(4 * MiB);
  for (let i = 0; i * chunk.length < missing; i++) {
    const sub = join(padDir, String(Math.floor(i / 50)));
    mkdirSync(sub, { recursive: true });
    for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((Math.random() * 0xffffffff) >>> 0, j);
    writeFileSync(join(sub, `f${i}.bin`), chunk);
  }
}

/** podman with runc and explicit ulimits (crun refuses this host's hybrid cgroups): the notes' working setup. */
function preparePodman(work: string): { ok: true; env: NodeJS.ProcessEnv } | { ok: false; reason: string } {
  const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!have('podman') || !have('runc')) {
    process.stdout.write('installing podman and runc with apt-get (benchmark setup only)\n');
    const install = spawnSync('apt-get', ['install', '-y', '-q', 'podman', 'runc'], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (install.status !== 0) return { ok: false, reason: `apt-get install podman runc failed: ${install.stderr.trim().split('\n').pop()}` };
  }
  const conf = join(work, 'containers.conf');
  writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n\n[engine]\nruntime = "runc"\n');
  return { ok: true, env: { ...process.env, CONTAINERS_CONF: conf } };
}

export async function benchRuntime(options: { runs?: number; stateDir?: string } = {}): Promise<Record<string, number>> {
  const runs = options.runs ?? 20;
  const host = detectHost();
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-runtime-');
  const stateDir = options.stateDir ?? join(work, 'state');
  const results: Record<string, number> = {};
  try {
    const image = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: [] }, { stateDir });
    const scratch = await createRunScratch(stateDir);
    const source = join(work, 'src');
    mkdirSync(source);
    const outputDir = join(work, 'out');
    let cell = 0;
    const cellOptions = (root: string): ContainerOptions => {
      const cellId = `bench-${++cell}`;
      return {
        cellId, root, cellOutputDir: join(outputDir, cellId), scratchDir: scratch.dir, sourceDir: source, sourceMode: 'overlay',
        network: 'host', privateUsers: false, boot: false, binds: [], nspawnExtra: [], env: {},
      };
    };
    const nsmatrixCell = async (root: string) => {
      const container = await openContainer(cellOptions(root));
      try {
        const r = await container.exec({ index: 0, name: 'true', script: 'true', env: {}, timeoutMs: 60_000, logPath: join(outputDir, `bench-${cell}`, '01-true.log') });
        if (r.exitCode !== 0) throw new Error(`bench step failed: ${JSON.stringify(r)}`);
      } finally {
        await container.close();
      }
    };
    const nspawnEnv = { ...process.env, ...hostNspawnEnv(host) };
    const rawOverlay = (root: string) => {
      const upper = join(work, 'raw-upper');
      mkdirSync(upper, { recursive: true });
      execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', root, '--read-only', `--overlay=+/:${upper}:/`, '--as-pid2', '--pipe', '--', 'true'], { stdio: 'ignore', env: nspawnEnv });
      rmSync(upper, { recursive: true, force: true });
    };
    const rawVolatile = (root: string) =>
      execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', root, '--volatile=overlay', '--as-pid2', '--pipe', '--', 'true'], { stdio: 'ignore', env: nspawnEnv });

    await nsmatrixCell(image.root); // warm caches
    rawOverlay(image.root);
    const ours = await timeIt(runs, () => nsmatrixCell(image.root));
    const raw = await timeIt(runs, () => rawOverlay(image.root));
    const volatile = await timeIt(runs, () => rawVolatile(image.root));
    const smallBytes = duBytes(image.root);

    const big = join(work, 'big-root');
    paddedCopy(image.root, big, 1024 * MiB);
    const bigBytes = duBytes(big);
    const oursBig = await timeIt(Math.ceil(runs / 2), () => nsmatrixCell(big));
    const rawBig = await timeIt(Math.ceil(runs / 2), () => rawOverlay(big));
    const ephemeralSmall = await timeIt(1, () =>
      execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', image.root, '--ephemeral', '--as-pid2', '--pipe', '--', 'true'], { stdio: 'ignore', env: nspawnEnv }),
    );
    rmSync(big, { recursive: true, force: true });

    Object.assign(results, {
      nsmatrixCellMs: ours.median,
      rawNspawnOverlayMs: raw.median,
      rawNspawnVolatileMs: volatile.median,
      overheadRatio: ours.median / raw.median,
      nsmatrixCellBigImageMs: oursBig.median,
      rawNspawnOverlayBigImageMs: rawBig.median,
      rawNspawnEphemeralSmallImageMs: ephemeralSmall.median,
      smallImageMiB: smallBytes / MiB,
      bigImageMiB: bigBytes / MiB,
    });
    const rows: [string, number, string?][] = [
      [`nsmatrix cell (open + step "true" + close), ${runs} runs`, ours.median, `min ${ours.min.toFixed(1)} max ${ours.max.toFixed(1)}`],
      [`raw systemd-nspawn overlay loop, same image and command, ${runs} runs`, raw.median, `ratio ${(ours.median / raw.median).toFixed(2)}`],
      [`raw systemd-nspawn --volatile=overlay, ${runs} runs`, volatile.median],
      [`nsmatrix cell on the ${(smallBytes / MiB).toFixed(0)} MiB image`, ours.median],
      [`nsmatrix cell on the ${(bigBytes / MiB).toFixed(0)} MiB image, ${Math.ceil(runs / 2)} runs`, oursBig.median],
      [`raw overlay on the ${(bigBytes / MiB).toFixed(0)} MiB image, ${Math.ceil(runs / 2)} runs`, rawBig.median],
      [`raw systemd-nspawn --ephemeral (copies the tree) on ${(smallBytes / MiB).toFixed(0)} MiB, 1 run`, ephemeralSmall.median],
    ];

    const podman = preparePodman(work);
    if (podman.ok) {
      const podmanRun = (network: string) => () =>
        execFileSync('podman', ['run', '--rm', `--network=${network}`, '--rootfs', image.root, 'true'], { stdio: 'pipe', env: podman.env });
      try {
        podmanRun('none')();
        const none = await timeIt(Math.ceil(runs / 2), podmanRun('none'));
        results.podmanRunNoNetworkMs = none.median;
        rows.push([`podman run --rm --network=none --rootfs (runc), ${Math.ceil(runs / 2)} runs`, none.median]);
      } catch (error) {
        const reason = ((error as { stderr?: Buffer }).stderr?.toString() ?? (error as Error).message).trim().split('\n').pop();
        process.stdout.write(`podman skipped: it cannot run here: ${reason}\n`);
      }
    } else {
      process.stdout.write(`podman skipped: ${podman.reason}\n`);
    }
    report('runtime (debian:bookworm minbase, exec mode, overlay strategy)', rows);
    await scratch.remove();
    return results;
  } finally {
    for (const failure of await resources.releaseAll()) process.stderr.write(`cleanup: ${failure.message}\n`);
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchRuntime();
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
