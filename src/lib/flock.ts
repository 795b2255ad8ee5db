/**
 * Exclusive or shared locks on a file, held by a `flock(1)` child whose stdin is our pipe: when this process exits
 * or is killed (even by SIGKILL) the pipe closes, the child exits and the kernel drops the lock. No stale lock
 * files to reason about. While held (or waited for), the flock process is registered in the process-wide
 * resource registry. The one lock implementation: image keys (images/lock.ts) and output directories use it.
 *
 * Releasing, and giving up a wait (abort, cleanup), kill flock(1) with SIGKILL at once and wait for it to exit:
 * the lock is flock's own descriptor (`-o` keeps it from the command it runs), so the kernel drops it the moment
 * flock dies, and nothing of flock needs a graceful end. A waiting flock never reads stdin, so only a signal
 * ends its wait; a holding one would follow our closed stdin too, but only after its `cat` noticed. When
 * release() resolves, the lock is free.
 */
import { closeSync, openSync } from 'node:fs';
import { start } from './process.js';

export interface FileLock {
  release(): Promise<void>;
}

export interface FlockOptions {
  shared?: boolean;
  /** Resolve null instead of waiting when someone else holds the lock (after `busyGraceMs`, if given). */
  nonBlocking?: boolean;
  /**
   * With nonBlocking: how long a held lock may take to come free before giving up. The holder of a SIGKILLed
   * nsmatrix is a flock(1) child that lets go only once its `cat` has seen the pipe close: a run or gc started
   * right after the kill would otherwise find the lock held by nobody alive.
   */
  busyGraceMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is not granted within `waitNoticeMs` (another process holds it). */
  onWait?: () => void;
  waitNoticeMs?: number;
  /** Names the lock in errors and in the resource registry. */
  label: string;
  /** Creates a missing lock file with this mode first (flock(1) would make it 0644). */
  mode?: number;
}

/** How long a lock whose holder was just killed may take to come free (see busyGraceMs). */
export const DYING_HOLDER_GRACE_MS = 2_000;

export class LockError extends Error {
  override name = 'LockError';
  constructor(
    message: string,
    /** Why: the wait was aborted, or flock(1) could not run or failed. */
    readonly reason: 'aborted' | 'failed',
  ) {
    super(message);
  }
}

/** The lock, or null when `nonBlocking` and someone else holds it; rejects with a LockError. */
export function acquireFlock(file: string, options: FlockOptions): Promise<FileLock | null> {
  if (options.mode !== undefined) {
    try {
      closeSync(openSync(file, 'a', options.mode));
    } catch {
      // flock(1) below says what is wrong with the path
    }
  }
  if (options.signal?.aborted) return Promise.reject(new LockError(`waiting for ${options.label} was aborted`, 'aborted'));
  const grace = options.busyGraceMs ?? 0;
  const wait = grace > 0 ? ['-w', (grace / 1000).toFixed(3)] : ['-n'];
  const mode = [options.shared ? '-s' : '-x', ...(options.nonBlocking ? [...wait, '-E', '75'] : [])];
  return new Promise<FileLock | null>((resolve, reject) => {
    let settled = false;
    let stderr = '';
    const notice = setTimeout(() => options.onWait?.(), options.waitNoticeMs ?? 300);
    const settle = (outcome: { lock: FileLock | null } | { error: LockError }) => {
      if (settled) return;
      settled = true;
      clearTimeout(notice);
      options.signal?.removeEventListener('abort', onAbort);
      if ('error' in outcome) void flock.stop().finally(() => reject(outcome.error));
      else resolve(outcome.lock);
    };
    const onAbort = () => settle({ error: new LockError(`waiting for ${options.label} was aborted`, 'aborted') });
    // -o: the lock descriptor is not passed to the command, so killing flock alone releases it.
    const flock = start(['flock', ...mode, '-o', file, 'sh', '-c', 'echo locked; exec cat'], {
      label: options.label,
      stdin: 'pipe',
      killSignal: 'SIGKILL',
      onOutput: (stream, chunk) => {
        if (stream === 'stderr') stderr = (stderr + chunk.toString()).slice(-4096);
        else if (chunk.includes('locked')) settle({ lock: { release: () => flock.stop() } });
      },
    });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    void flock.result.then((result) => {
      if (result.exitCode === 75 && options.nonBlocking) settle({ lock: null });
      else if (result.error) settle({ error: new LockError(`cannot run flock(1) for ${options.label}: ${result.error.message}`, 'failed') });
      else settle({ error: new LockError(`flock(1) on ${file} exited ${result.exitCode ?? result.signal}: ${stderr.trim()}`, 'failed') });
    });
  });
}
