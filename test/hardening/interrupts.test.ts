/**
 * Interrupt trials: `nsmatrix run` on real multi-cell matrices (exec and boot mode, and while an image layer is being
 * built) gets SIGINT, SIGTERM or SIGKILL at a random moment of a chosen phase. After SIGINT/SIGTERM nothing may be
 * left; after SIGKILL reports and images must still be whole, and the next `run` or `gc` must repair everything and
 * then run normally. NSMATRIX_TRIALS raises the number of trials (default 30); NSMATRIX_SEED replays a sequence.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireContainerHost } from '../helpers/host.js';
import { runCli } from '../helpers/cli.js';
import { damage, pick, project, reportProblems, imageProblems, seedFromEnv, seededRandom, settle, sleep, start } from './harness.js';

const stateDir = inject('stateDir');
const TRIALS = Number(process.env.NSMATRIX_TRIALS ?? 30) || 30;
const SEED = seedFromEnv();
const PAYLOAD = 'nsm-hard-payload';
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-hard-int-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Mode = 'exec' | 'boot' | 'build';
type Phase = 'image build' | 'container start' | 'step output' | 'report writing';
type Signal = 'SIGINT' | 'SIGTERM' | 'SIGKILL';

// The step's loop carries PAYLOAD in its command line ($0), so a surviving payload is easy to find on the host.
const WORK_STEP = `sh -c 'for i in $(seq 1 30); do echo tick $i; printf "partial-%s" $i; sleep 0.05; done' ${PAYLOAD}`;

function matrixFor(mode: Mode, unique: string): string {
  return [
    'matrix:',
    '  image: [debian:bookworm]',
    '  n: [1, 2, 3]',
    'fail-fast: false',
    ...(mode === 'boot' ? ['boot: true'] : []),
    // A new image key per build trial: a tiny package and a setup line nobody built before.
    ...(mode === 'build' ? ['packages: [hello]', `setup: echo ${unique}`] : []),
    'steps:',
    '  - name: first',
    '    run: echo started',
    '  - name: work',
    `    run: ${JSON.stringify(WORK_STEP)}`,
  ].join('\n');
}

/** Where to wait in the CLI's plain output before the random delay, and how long that delay may be (ms). */
const PHASES: Record<Phase, { marker: RegExp; maxDelayMs: number }> = {
  'image build': { marker: /image debian:bookworm.*: provisioning/, maxDelayMs: 2500 },
  'container start': { marker: /: started/, maxDelayMs: 300 },
  'step output': { marker: /step "work"$/m, maxDelayMs: 1200 },
  'report writing': { marker: /\d+ cells: /, maxDelayMs: 40 },
};

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL'] as const;

/**
 * The trial plan: modes in fixed shares (boot trials cost about twice an exec trial, build trials need a fresh
 * layer), signals dealt in turn within each mode from a random start so every mode meets every signal, and the
 * phase and the delay into it at random.
 */
function planner(random: () => number): (trial: number) => { mode: Mode; phase: Phase; signal: Signal; delayMs: number } {
  const dealt: Record<Mode, number> = { exec: 0, boot: 0, build: 0 };
  const offset = Math.floor(random() * SIGNALS.length);
  return (trial) => {
    const mode: Mode = trial % 6 === 5 ? 'build' : trial % 3 === 1 ? 'boot' : 'exec';
    const signal = SIGNALS[(dealt[mode]++ + offset) % SIGNALS.length]!;
    const phase: Phase = mode === 'build' ? 'image build' : pick(random, ['container start', 'step output', 'report writing'] as const);
    return { mode, phase, signal, delayMs: Math.floor(random() * PHASES[phase].maxDelayMs) };
  };
}

describe(`interrupt trials (seed ${SEED}, ${TRIALS} trials; replay with NSMATRIX_SEED=${SEED})`, () => {
  it('no interrupt at any moment leaves anything behind, and a killed run is repaired by the next run or gc', async () => {
    const random = seededRandom(SEED);
    const plan = planner(random);
    const counts = new Map<string, number>();
    const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
    let repairedItems = 0;
    const failures: string[] = [];
    console.log(`interrupt trials: seed ${SEED} (NSMATRIX_SEED=${SEED} replays), ${TRIALS} trials`);

    for (let trial = 0; trial < TRIALS; trial++) {
      const { mode, phase, signal, delayMs } = plan(trial);
      const label = `trial ${trial} (${mode}, ${signal} ${delayMs}ms into ${phase})`;
      const file = project(join(work, `p${trial}`), matrixFor(mode, `hardening-${SEED}-${trial}`));
      const out = join(work, `out${trial}`);
      const runArgs = ['run', file, '--state-dir', stateDir, '-o', out, '--jobs', '2', '-r', 'junit', '-r', 'json', '-r', 'markdown', '-r', 'html'];
      const trialStarted = Date.now() - 1000; // ctime has coarse granularity on some filesystems
      const run = start(runArgs);
      const reached = await run.seen(PHASES[phase].marker);
      await sleep(delayMs);
      run.child.kill(signal);
      const result = await run.done;
      count(`${signal} during ${phase}${reached ? '' : ' (ended before the phase)'}`);
      count(`${mode} mode`);

      if (signal !== 'SIGKILL') {
        // Stopped in order: exit 130, or the run had already finished (0) when the signal came. A signal landing
        // while node itself tears down (after the reports were written and everything released: node has restored
        // the default disposition by then) kills the process; that is acceptable only once the run had finished.
        const finished = /^report: .*junit\.xml$/m.test(result.stdout);
        const stopped = result.code === 130 || result.code === 0 || (finished && result.signal === signal);
        if (result.signal === signal) count(`${signal} landed in node's exit, after the run had finished`);
        if (!stopped) failures.push(`${label}: exit ${result.code} ${result.signal ?? ''}\n${result.stderr.slice(-1500)}`);
        const left = await settle(() => damage(stateDir, out, PAYLOAD, trialStarted));
        if (left.length > 0) failures.push(`${label}: left behind:\n  ${left.join('\n  ')}`);
        continue;
      }

      if (result.signal !== 'SIGKILL') {
        // The run had finished by itself a moment before the signal: then it must simply have succeeded cleanly.
        count('SIGKILL came after the run had ended');
        if (result.code !== 0) failures.push(`${label}: exit ${result.code} without the SIGKILL\n${result.stderr.slice(-1500)}`);
        const left = await settle(() => damage(stateDir, out, PAYLOAD, trialStarted));
        if (left.length > 0) failures.push(`${label}: left behind:\n  ${left.join('\n  ')}`);
        continue;
      }
      // Killed: no time to clean up, but what exists must still be whole.
      const broken = [...reportProblems(out), ...imageProblems(stateDir)];
      if (broken.length > 0) failures.push(`${label}: after SIGKILL:\n  ${broken.join('\n  ')}`);
      const viaGc = random() < 0.5;
      count(viaGc ? 'repaired by gc' : 'repaired by the next run');
      if (viaGc) {
        const gc = runCli(['gc', '--state-dir', stateDir]);
        if (gc.code !== 0) failures.push(`${label}: gc exit ${gc.code}: ${gc.stderr}`);
        repairedItems += gc.stdout.split('\n').filter((l) => l.startsWith('removed ')).length;
        const afterGc = await settle(() => damage(stateDir, out, PAYLOAD, trialStarted));
        if (afterGc.length > 0) failures.push(`${label}: gc left behind:\n  ${afterGc.join('\n  ')}`);
      }
      const next = runCli(runArgs);
      if (next.code !== 0) failures.push(`${label}: the next run exit ${next.code}\n${next.stdout.slice(-1500)}${next.stderr.slice(-1500)}`);
      const left = await settle(() => damage(stateDir, out, PAYLOAD, trialStarted));
      if (left.length > 0) failures.push(`${label}: after repair and a normal run, left behind:\n  ${left.join('\n  ')}`);
    }

    console.log(
      `interrupt trials (seed ${SEED}):\n${[...counts.entries()]
        .sort()
        .map(([k, v]) => `  ${String(v).padStart(3)}  ${k}`)
        .join('\n')}\n  items removed by gc after SIGKILL: ${repairedItems}`,
    );
    expect(failures, failures.join('\n\n')).toEqual([]);
  }, 1_200_000);
});
