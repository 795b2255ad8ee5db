/**
 * Interrupt trials: `nsmatrix run` on real multi-cell matrices (exec and boot mode, and while an image layer is being
 * built) gets SIGINT, SIGTERM or SIGKILL at a random moment of a chosen phase. After SIGINT/SIGTERM nothing may be
 * left; after SIGKILL reports and images must still be whole, and the next `run` or `gc` must repair everything and
 * then run normally. NSMATRIX_TRIALS raises the number of trials (default 30); NSMATRIX_SEED replays a sequence.
 * Every trial must reach the phase it means to interrupt, and the plan guarantees, for any seed, that at least a third
 * of the trials are SIGINT/SIGTERM mid-run (each must end with exit 130) and a sixth SIGKILL mid-run (each must die by
 * it and be repaired, half by `gc` and half by the next run): those counts are asserted at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireContainerHost } from '../helpers/host.js';
import { runCli } from '../helpers/cli.js';
import { damage, project, reportProblems, imageProblems, seedFromEnv, seededRandom, settle, sleep, start } from './harness.js';

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

/**
 * Where to wait in the CLI's plain output before the random delay, and how long that delay may be (ms). `past` shows
 * the run had moved beyond the phase. `midRun`: the run certainly has work left after the phase plus the longest
 * delay (a further cell or step, or the build then every cell), so SIGINT/SIGTERM must give exit 130 and SIGKILL must
 * kill it; a signal aimed at report writing may come after the run ended by itself.
 */
const PHASES: Record<Phase, { marker: RegExp; past: RegExp; maxDelayMs: number; midRun: boolean }> = {
  'image build': { marker: /image debian:bookworm.*: provisioning/, past: /image debian:bookworm.*: (built in|cached|FAILED)/, maxDelayMs: 2500, midRun: true },
  'container start': { marker: /: started/, past: /step "work"$/m, maxDelayMs: 300, midRun: true },
  'step output': { marker: /step "work"$/m, past: /\d+ cells: /, maxDelayMs: 1200, midRun: true },
  'report writing': { marker: /\d+ cells: /, past: /^report: /m, maxDelayMs: 40, midRun: false },
};

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL'] as const;
/** Phases of exec and boot trials, dealt in this order; report writing last (see the planner). */
const RUN_PHASES = ['container start', 'step output', 'report writing'] as const;

/** Per run of this file, whatever the seed: trials that ended with exit 130 after SIGINT/SIGTERM mid-run... */
const MIN_STOPPED = Math.floor(TRIALS / 3);
/** ...trials SIGKILLed mid-run and then repaired, and how many of those at least by each way of repairing. */
const MIN_KILLED = Math.floor(TRIALS / 6);
const MIN_REPAIRED_EACH_WAY = Math.floor(MIN_KILLED / 2);

interface Trial {
  mode: Mode;
  phase: Phase;
  signal: Signal;
  delayMs: number;
}

/**
 * The trial plan: modes in fixed shares (boot trials cost about twice an exec trial, build trials need a fresh
 * layer), signals dealt in turn within each mode from a random start so every mode meets every signal, and the
 * phases dealt in turn within each (mode, signal) from a start of 0 or 1, so report writing (the one phase where the
 * run may already be over) gets at most every third trial of each pair and never its first. That stratification is
 * what guarantees MIN_STOPPED and MIN_KILLED mid-run trials for any seed and any number of trials (checked for every
 * start and 1-120 trials). The delay into the phase is random.
 */
function planTrials(random: () => number, trials: number): Trial[] {
  const dealt: Record<Mode, number> = { exec: 0, boot: 0, build: 0 };
  const offset = Math.floor(random() * SIGNALS.length);
  const phaseDealt = new Map<string, { next: number; start: number }>();
  return Array.from({ length: trials }, (_, trial) => {
    const mode: Mode = trial % 6 === 5 ? 'build' : trial % 3 === 1 ? 'boot' : 'exec';
    const signal = SIGNALS[(dealt[mode]++ + offset) % SIGNALS.length]!;
    let phase: Phase = 'image build';
    if (mode !== 'build') {
      const key = `${mode} ${signal}`;
      const turn = phaseDealt.get(key) ?? { next: 0, start: Math.floor(random() * 2) };
      phaseDealt.set(key, turn);
      phase = RUN_PHASES[(turn.next++ + turn.start) % RUN_PHASES.length]!;
    }
    return { mode, phase, signal, delayMs: Math.floor(random() * PHASES[phase].maxDelayMs) };
  });
}

describe(`interrupt trials (seed ${SEED}, ${TRIALS} trials; replay with NSMATRIX_SEED=${SEED})`, () => {
  it('no interrupt at any moment leaves anything behind, and a killed run is repaired by the next run or gc', async () => {
    const random = seededRandom(SEED);
    const trials = planTrials(random, TRIALS);
    const repairStart = Math.floor(random() * 2);
    const counts = new Map<string, number>();
    const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
    let repairedItems = 0;
    let stopped130 = 0;
    let killed = 0;
    const repaired = { gc: 0, 'next run': 0 };
    const failures: string[] = [];
    const planned = {
      stops: trials.filter((t) => t.signal !== 'SIGKILL' && PHASES[t.phase].midRun).length,
      kills: trials.filter((t) => t.signal === 'SIGKILL' && PHASES[t.phase].midRun).length,
    };
    console.log(
      `interrupt trials: seed ${SEED} (NSMATRIX_SEED=${SEED} replays), ${TRIALS} trials; ` +
        `${planned.stops} SIGINT/SIGTERM and ${planned.kills} SIGKILL planned mid-run (at least ${MIN_STOPPED} and ${MIN_KILLED} required)`,
    );
    // The plan alone must guarantee the minimums (stratification, not luck).
    expect(planned.stops, `seed ${SEED}`).toBeGreaterThanOrEqual(MIN_STOPPED);
    expect(planned.kills, `seed ${SEED}`).toBeGreaterThanOrEqual(MIN_KILLED);

    for (const [trial, { mode, phase, signal, delayMs }] of trials.entries()) {
      const label = `trial ${trial} (${mode}, ${signal} ${delayMs}ms into ${phase}; NSMATRIX_SEED=${SEED})`;
      const file = project(join(work, `p${trial}`), matrixFor(mode, `hardening-${SEED}-${trial}`));
      const out = join(work, `out${trial}`);
      const runArgs = ['run', file, '--state-dir', stateDir, '-o', out, '--jobs', '2', '-r', 'junit', '-r', 'json', '-r', 'markdown', '-r', 'html'];
      const trialStarted = Date.now() - 1000; // ctime has coarse granularity on some filesystems
      const run = start(runArgs);
      const reached = await run.seen(PHASES[phase].marker);
      await sleep(delayMs);
      const aliveAtSignal = run.child.exitCode === null && run.child.signalCode === null;
      const pastAtSignal = PHASES[phase].past.test(run.output());
      run.child.kill(signal);
      const result = await run.done;
      count(`${mode} mode`);
      count(`${signal} during ${phase}${pastAtSignal ? ' (landed after the phase)' : ''}`);
      // A trial that never got to its phase (or, mid-run, ended before the signal) interrupted something else or
      // nothing: it tests nothing of what it claims.
      if (!reached || (!aliveAtSignal && PHASES[phase].midRun)) {
        failures.push(`${label}: the run ${reached ? 'had ended before the signal' : 'never reached the phase'}: exit ${result.code} ${result.signal ?? ''}\n${result.stdout.slice(-1500)}${result.stderr.slice(-1500)}`);
        continue;
      }
      if (!aliveAtSignal) count('the run had ended before the signal');

      if (signal !== 'SIGKILL') {
        // Stopped in order: exit 130, or (report writing only) the run had already finished (0) when the signal came.
        // A signal landing while node itself tears down (after the reports were written and everything released: node
        // has restored the default disposition by then) kills the process; acceptable only once the run had finished.
        const finished = /^report: .*junit\.xml$/m.test(result.stdout);
        if (result.code === 130) stopped130++;
        const stopped = result.code === 130 || (!PHASES[phase].midRun && (result.code === 0 || (finished && result.signal === signal)));
        if (result.signal === signal) count(`${signal} landed in node's exit, after the run had finished`);
        if (!stopped) failures.push(`${label}: exit ${result.code} ${result.signal ?? ''} (expected 130)\n${result.stderr.slice(-1500)}`);
        const left = await settle(() => damage(stateDir, out, PAYLOAD, trialStarted));
        if (left.length > 0) failures.push(`${label}: left behind:\n  ${left.join('\n  ')}`);
        continue;
      }

      if (result.signal !== 'SIGKILL') {
        // The run had finished by itself a moment before the signal (report writing only): then it must simply have
        // succeeded cleanly.
        count('SIGKILL came after the run had ended');
        if (PHASES[phase].midRun) failures.push(`${label}: not killed mid-run: exit ${result.code} ${result.signal ?? ''}`);
        else if (result.code !== 0) failures.push(`${label}: exit ${result.code} without the SIGKILL\n${result.stderr.slice(-1500)}`);
        const left = await settle(() => damage(stateDir, out, PAYLOAD, trialStarted));
        if (left.length > 0) failures.push(`${label}: left behind:\n  ${left.join('\n  ')}`);
        continue;
      }
      // Killed: no time to clean up, but what exists must still be whole.
      const failuresBefore = failures.length;
      const broken = [...reportProblems(out), ...imageProblems(stateDir)];
      if (broken.length > 0) failures.push(`${label}: after SIGKILL:\n  ${broken.join('\n  ')}`);
      // Repairs alternate between gc and the next run, so both are exercised whatever the seed.
      const way = (killed++ + repairStart) % 2 === 0 ? 'gc' : 'next run';
      count(`repaired by ${way}`);
      if (way === 'gc') {
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
      if (failures.length === failuresBefore) repaired[way]++;
    }

    console.log(
      `interrupt trials (seed ${SEED}):\n${[...counts.entries()]
        .sort()
        .map(([k, v]) => `  ${String(v).padStart(3)}  ${k}`)
        .join('\n')}\n  items removed by gc after SIGKILL: ${repairedItems}\n` +
        `  exit 130 after SIGINT/SIGTERM: ${stopped130} (at least ${MIN_STOPPED}); SIGKILLed mid-run: ${killed} (at least ${MIN_KILLED}), ` +
        `repaired by gc ${repaired.gc}, by the next run ${repaired['next run']} (at least ${MIN_REPAIRED_EACH_WAY} each)`,
    );
    expect(failures, failures.join('\n\n')).toEqual([]);
    expect(stopped130, `exit 130 trials, seed ${SEED}`).toBeGreaterThanOrEqual(MIN_STOPPED);
    expect(killed, `SIGKILLed trials, seed ${SEED}`).toBeGreaterThanOrEqual(MIN_KILLED);
    expect(repaired.gc, `repaired by gc, seed ${SEED}`).toBeGreaterThanOrEqual(MIN_REPAIRED_EACH_WAY);
    expect(repaired['next run'], `repaired by the next run, seed ${SEED}`).toBeGreaterThanOrEqual(MIN_REPAIRED_EACH_WAY);
  }, 1_200_000);
});
