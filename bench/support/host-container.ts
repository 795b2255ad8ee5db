/**
 * A Container that runs each step as a plain `sh -c` process on the host, without systemd-nspawn. It is a real
 * executor (real processes, real exit statuses, real logs), used to exercise the scheduler's logic quickly and by
 * the 1,000-cell benchmark, which says so in its output. Container behaviour itself is tested with real containers.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { constants } from 'node:os';
import type { Cell, StepSpec } from '../../src/matrix/types.js';
import { detectHost } from '../../src/lib/host.js';
import type { RunEvents } from '../../src/run/events.js';
import type { RunResult } from '../../src/run/result.js';
import { runMatrix } from '../../src/run/scheduler.js';
import type { Container, ContainerOptions, ExecRequest, ExecResult } from '../../src/runtime/types.js';
import { makeModel } from './model.js';

const signalName = (n: number) => Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `SIG${n}`;

export function openHostContainer(options: ContainerOptions): Promise<Container> {
  return Promise.resolve({
    machine: `host-${options.cellId}`,
    strategy: 'copy',
    async exec(request: ExecRequest): Promise<ExecResult> {
      await mkdir(dirname(request.logPath), { recursive: true });
      const log = createWriteStream(request.logPath);
      const started = Date.now();
      const tail: string[] = [];
      const child = spawn('sh', ['-ec', request.script], { env: { ...process.env, ...options.env, ...request.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let timedOut = false;
      const kill = () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, request.timeoutMs);
      request.signal?.addEventListener('abort', kill, { once: true });
      for (const [stream, source] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
        source.on('data', (chunk: Buffer) => {
          log.write(chunk);
          request.onOutput?.(stream, chunk);
          tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
          if (tail.length > 100) tail.splice(0, tail.length - 100);
        });
      }
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', kill);
      await new Promise<void>((resolve) => log.end(resolve));
      return { exitCode: signal ? null : code, signal: signal ? signalName(constants.signals[signal]) : null, timedOut, durationMs: Date.now() - started, tail };
    },
    close: () => Promise.resolve({}),
  });
}

/** Runs `cells` through the real scheduler with host processes for containers (2 jobs, no fail-fast). */
export function runOnHost(options: { cells: Cell[]; steps: StepSpec[]; outputDir: string; events: RunEvents }): Promise<RunResult> {
  const { cells, steps, outputDir, events } = options;
  return runMatrix({
    model: makeModel({ steps }),
    cells,
    positions: new Map(cells.map((c, i) => [c.id, i])),
    outputDir,
    scratchDir: outputDir,
    fileArg: 'bench.yaml',
    jobs: 2,
    failFast: false,
    host: detectHost(),
    toolVersion: 'bench',
    events,
    signal: new AbortController().signal,
    stages: {
      provision: async (image) => ({ name: image, key: 'bench', baseKey: 'bench', root: '/', cached: true, madeFrom: 'bench' }),
      openContainer: openHostContainer,
      cellEnvironment: () => ({}),
    },
  });
}
