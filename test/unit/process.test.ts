/** lib/process.ts with real short processes: exit codes, signals, timeouts, cancellation, output bounds, cgroups. */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupWrapped, formatArgv, GATE_WORD, ProcessError, run, runChecked, runSync, start } from '../../src/lib/process.js';
import { resources } from '../../src/lib/resources.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('run', () => {
  it('reports exit codes and output, and fails only on a non-zero exit', async () => {
    const ok = await run(['sh', '-c', 'printf out; printf err >&2']);
    expect(ok).toMatchObject({ exitCode: 0, signal: null, failed: false, timedOut: false, isCanceled: false, stdout: 'out', stderr: 'err' });
    expect(ok.durationMs).toBeGreaterThanOrEqual(0);
    const bad = await run(['sh', '-c', 'exit 3']);
    expect(bad).toMatchObject({ exitCode: 3, signal: null, failed: true });
  });

  it('passes env and input, and keeps the final newline', async () => {
    const result = await run(['sh', '-c', 'cat; echo "$NSM_TEST_VALUE"'], { env: { NSM_TEST_VALUE: 'v' }, input: 'in\n' });
    expect(result.stdout).toBe('in\nv\n');
  });

  it('reports a signal that killed the process', async () => {
    const result = await run(['sh', '-c', 'kill -KILL $$']);
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGKILL', failed: true, timedOut: false });
  });

  it('says why a process could not start', async () => {
    const result = await run(['/nonexistent/nsm-command']);
    expect(result.exitCode).toBeNull();
    expect(result.failed).toBe(true);
    expect((result.error as NodeJS.ErrnoException).code).toBe('ENOENT');
    await expect(runChecked(['/nonexistent/nsm-command'])).rejects.toThrow(ProcessError);
  });

  it('times out by SIGTERM, then SIGKILL after the grace period', async () => {
    const polite = await run(['sleep', '10'], { timeoutMs: 100 });
    expect(polite).toMatchObject({ timedOut: true, signal: 'SIGTERM', exitCode: null, failed: true });
    expect(polite.durationMs).toBeLessThan(5_000);
    const stubborn = await run(['sh', '-c', "trap '' TERM; while :; do sleep 0.05; done"], { timeoutMs: 100, graceMs: 200 });
    expect(stubborn).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
    expect(stubborn.durationMs).toBeGreaterThanOrEqual(250);
    expect(stubborn.durationMs).toBeLessThan(5_000);
  });

  it('is cancelled by an AbortSignal, and never started by one that has fired', async () => {
    const controller = new AbortController();
    const running = run(['sleep', '10'], { signal: controller.signal, killSignal: 'SIGKILL' });
    setTimeout(() => controller.abort(), 50);
    expect(await running).toMatchObject({ isCanceled: true, signal: 'SIGKILL', timedOut: false, failed: true });
    const marker = join(dir, 'never');
    const never = await run(['touch', marker], { signal: controller.signal });
    expect(never).toMatchObject({ isCanceled: true, exitCode: null, failed: true });
    expect(() => readFileSync(marker)).toThrow();
  });

  it('keeps at most maxBuffer characters of output', async () => {
    const result = await run(['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x'], { maxBuffer: 1000 });
    expect(result.isMaxBuffer).toBe(true);
    expect(result.stdout.length).toBeLessThanOrEqual(1000);
    expect(result.failed).toBe(true);
  });

  it('decodes UTF-8 split across reads, and counts maxBuffer in characters', async () => {
    // One € (3 bytes) written in two pieces: a decoder per read would make two replacement characters of it.
    const result = await run(['sh', '-c', "printf 'a\\342\\202'; sleep 0.1; printf '\\254b'"]);
    expect(result.stdout).toBe('a€b');
    const small = await run(['sh', '-c', 'printf "€€€€€€€€€€"'], { maxBuffer: 10 });
    expect(small).toMatchObject({ stdout: '€€€€€€€€€€', isMaxBuffer: false, failed: false });
  });

  it('writes to a file descriptor it is given, and ignores a process that never reads its input', async () => {
    const file = join(dir, 'fd-out');
    const fd = openSync(file, 'w');
    const result = await run(['sh', '-c', 'echo to-file'], { stdout: fd });
    closeSync(fd);
    expect(result).toMatchObject({ exitCode: 0, stdout: '' });
    expect(readFileSync(file, 'utf8')).toBe('to-file\n');
    const deaf = await run(['true'], { input: 'x'.repeat(1 << 20) });
    expect(deaf).toMatchObject({ exitCode: 0, failed: false });
  });

  it('throws a ProcessError with the command and its stderr from runChecked', async () => {
    const error = await runChecked(['sh', '-c', 'echo broken >&2; exit 4']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProcessError);
    expect((error as ProcessError).message).toMatch(/exit 4.*sh -c.*\nbroken$/s);
    expect((error as ProcessError).result.exitCode).toBe(4);
  });
});

describe('streaming', () => {
  it('delivers every chunk in order and buffers nothing', async () => {
    const chunks: Record<string, Buffer[]> = { stdout: [], stderr: [] };
    const result = await run(['sh', '-c', 'seq 1 20000; echo done >&2'], { onOutput: (stream, chunk) => void chunks[stream]!.push(chunk) });
    expect(result.stdout).toBe('');
    const text = Buffer.concat(chunks.stdout!).toString();
    expect(text.split('\n').filter(Boolean)).toHaveLength(20000);
    expect(text.endsWith('20000\n')).toBe(true);
    expect(Buffer.concat(chunks.stderr!).toString()).toBe('done\n');
  });

  it('pauses the pipe while a returned promise is pending (backpressure)', async () => {
    let pending = 0;
    let maxPending = 0;
    let bytes = 0;
    let chunks = 0;
    const result = await run(['sh', '-c', 'head -c 4000000 /dev/zero'], {
      onOutput: (_stream, chunk) => {
        bytes += chunk.length;
        chunks++;
        pending++;
        maxPending = Math.max(maxPending, pending);
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            pending--;
            resolve();
          }, 1),
        );
      },
    });
    expect(result.exitCode).toBe(0);
    expect(bytes).toBe(4_000_000);
    // One chunk at a time while the process runs. (At its exit Node resumes the child's pipes once, flushStdio in
    // child_process, so one more chunk can arrive before the consumer is done.)
    expect(maxPending).toBeLessThanOrEqual(2);
    expect(chunks).toBeGreaterThan(10);
  });

  it('stops reading pipes held open by a leftover process after drainMs', async () => {
    const begun = performance.now();
    // The shell exits at once; its background sleep keeps stdout open for 10 s.
    const result = await run(['sh', '-c', 'sleep 10 & echo started'], { onOutput: () => undefined, drainMs: 200 });
    expect(result.exitCode).toBe(0);
    expect(performance.now() - begun).toBeLessThan(5_000);
  });

  it('runs afterExit once the process has exited, before the result', async () => {
    const order: string[] = [];
    const result = await run(['true'], { afterExit: () => void order.push('afterExit') });
    order.push('result');
    expect(result.exitCode).toBe(0);
    expect(order).toEqual(['afterExit', 'result']);
    // also when it never ran: a cgroup made for it is still destroyed
    let calls = 0;
    await run(['/nonexistent/nsm-command'], { afterExit: () => void calls++ });
    await run(['true'], { signal: AbortSignal.abort(), afterExit: () => void calls++ });
    expect(calls).toBe(2);
  });
});

describe('registration and stop', () => {
  it('is registered in resources while it runs, and stopped by releasing it', async () => {
    const child = start(['sleep', '10'], { label: 'nsm-process-test sleeper' });
    const label = resources.labels().find((l) => l.startsWith('nsm-process-test sleeper'));
    expect(label).toBe(`nsm-process-test sleeper (pid ${child.pid})`);
    await resources.releaseAll();
    const result = await child.result;
    expect(result.signal).toBe('SIGTERM');
    expect(alive(child.pid!)).toBe(false);
    expect(resources.labels().filter((l) => l.startsWith('nsm-process-test'))).toEqual([]);
  });

  it('stop() takes a grace period of its own and is idempotent', async () => {
    const child = start(['sh', '-c', "trap '' TERM; while :; do sleep 0.05; done"], { graceMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    const begun = performance.now();
    await Promise.all([child.stop(150), child.stop(150)]);
    expect(performance.now() - begun).toBeLessThan(5_000);
    expect((await child.result).signal).toBe('SIGKILL');
    await child.stop();
  });
});

describe('cgroup placement', () => {
  it('writes the process into every procs file before exec, keeping its pid', async () => {
    const procs = [join(dir, 'a.procs'), join(dir, 'b.procs')];
    for (const p of procs) writeFileSync(p, '');
    const result = await run(['sh', '-c', 'echo $$'], { cgroupProcs: procs });
    const pid = result.stdout.trim();
    expect(pid).toMatch(/^\d+$/);
    for (const p of procs) expect(readFileSync(p, 'utf8').trim()).toBe(pid);
  });

  it('never runs the command when a procs file cannot be written (exit 125)', async () => {
    const marker = join(dir, 'ran');
    const result = await run(['touch', marker], { cgroupProcs: [join(dir, 'missing-dir', 'cgroup.procs')] });
    expect(result.exitCode).toBe(125);
    expect(() => readFileSync(marker)).toThrow();
  });

  it('is a pure argv wrapper', () => {
    expect(cgroupWrapped(['a', 'b'], undefined)).toEqual({ argv: ['a', 'b'], env: {} });
    const wrapped = cgroupWrapped(['a', 'b c'], ['/x/cgroup.procs', '/y/cgroup.procs']);
    expect(wrapped.argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(wrapped.argv.slice(-3)).toEqual(['nsmatrix-cgroup', 'a', 'b c']);
    expect(wrapped.env).toEqual({ NSMATRIX_CGROUP_PROCS: '/x/cgroup.procs /y/cgroup.procs' });
  });
});

describe('gated start', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  // What a gated command does itself (the step wrapper does it inside a container): wait for the word, then run.
  const waitsForGate = (then: string) => `IFS= read -r word || exit 125; [ "$word" = ${GATE_WORD.trimEnd()} ] || exit 125; ${then}`;

  it('starts the command at once, in its cgroups, and gives it the gate word on open()', async () => {
    const procs = join(dir, 'gated.procs');
    writeFileSync(procs, '');
    const before = join(dir, 'gated-before');
    const after = join(dir, 'gated-after');
    const child = start(['sh', '-c', `touch ${before}; ${waitsForGate(`touch ${after}; echo $$; cat`)}`], { gated: true, cgroupProcs: [procs] });
    await sleep(300);
    // Started (what it does before the gate is done) and waiting: the rest only after open().
    expect(readFileSync(procs, 'utf8').trim()).toBe(String(child.pid));
    expect(readFileSync(before)).toBeDefined();
    expect(() => readFileSync(after)).toThrow();
    child.open();
    child.open();
    const result = await child.result;
    expect(result).toMatchObject({ exitCode: 0, failed: false });
    // The cgroup's shell exec'd the command in place; `cat` found the pipe closed after the word.
    expect(result.stdout).toBe(`${child.pid}\n`);
    expect(readFileSync(after)).toBeDefined();
  });

  it('starts its clock at open: the wait before it counts neither towards the timeout nor the duration', async () => {
    const child = start(['sh', '-c', waitsForGate('sleep 0.3')], { gated: true, timeoutMs: 1_000 });
    await sleep(1_200);
    child.open();
    const result = await child.result;
    expect(result.timedOut).toBe(false);
    expect(result.exitCode).toBe(0);
    expect(result.durationMs).toBeGreaterThanOrEqual(250);
    expect(result.durationMs).toBeLessThan(1_000);
  });

  it('closes the gate without the word when stopped, cancelled or gone before open()', async () => {
    const marker = join(dir, 'gated-stopped');
    // Only the pipe's end reaches the command: it ignores SIGTERM, as a container's set-up does not stop at once.
    const stopped = start(['sh', '-c', `trap '' TERM; ${waitsForGate(`touch ${marker}`)}`], { gated: true, graceMs: 5_000 });
    await sleep(200);
    await stopped.stop();
    stopped.open();
    expect((await stopped.result).exitCode).toBe(125);

    const controller = new AbortController();
    const cancelled = start(['sh', '-c', waitsForGate(`touch ${marker}`)], { gated: true, signal: controller.signal });
    await sleep(100);
    controller.abort();
    expect(await cancelled.result).toMatchObject({ isCanceled: true, failed: true });
    expect(() => readFileSync(marker)).toThrow();
  });

  it('refuses input or a stdin of its own', () => {
    expect(() => start(['true'], { gated: true, input: 'x' })).toThrow(/gate word/);
    expect(() => start(['true'], { gated: true, stdin: 'inherit' })).toThrow(/gate word/);
  });
});

describe('runSync and formatArgv', () => {
  it('runs synchronously with the same result shape', () => {
    expect(runSync(['sh', '-c', 'echo hi; exit 2'])).toMatchObject({ exitCode: 2, stdout: 'hi\n', failed: true, signal: null });
    expect(runSync(['/nonexistent/nsm-command']).error).toBeDefined();
    expect(runSync(['/nonexistent/nsm-command'])).toMatchObject({ exitCode: null, signal: null, failed: true });
    expect(runSync(['sleep', '10'], { timeoutMs: 100 })).toMatchObject({ timedOut: true, signal: 'SIGKILL', failed: true });
    const big = runSync(['sh', '-c', 'head -c 100000 /dev/zero'], { maxBuffer: 1000 });
    expect(big).toMatchObject({ isMaxBuffer: true, failed: true });
    expect(big.stdout.length).toBeLessThanOrEqual(1000);
  });

  it('quotes words a shell would split', () => {
    expect(formatArgv(['echo', 'a b', "it's", '--x=1'])).toBe(`echo 'a b' 'it'\\''s' --x=1`);
  });
});
