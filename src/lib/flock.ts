/**
 * Exclusive or shared locks on a file, held by a `flock(1)` child whose stdin is our pipe: when this process exits
 * or is killed (even by SIGKILL) the pipe closes, the child exits and the kernel drops the lock. No stale lock
 * files to reason about. While held, the lock is registered in the process-wide resource registry.
 */
import { spawn } from 'node:child_process';
import { resources } from './resources.js';

export interface FileLock {
  release(): Promise<void>;
}

export interface FlockOptions {
  shared?: boolean;
  /** Fail at once (resolve null) instead of waiting when someone else holds the lock. */
  nonBlocking?: boolean;
  signal?: AbortSignal;
  /** Called once when the lock is not granted within `waitNoticeMs` (another process holds it). */
  onWait?: () => void;
  waitNoticeMs?: number;
  /** Names the lock in errors and in the resource registry. */
  label: string;
}

export class LockError extends Error {
  override name = 'LockError';
}

export function acquireFlock(file: string, options: FlockOptions): Promise<FileLock | null> {
  const mode = [options.shared ? '-s' : '-x', ...(options.nonBlocking ? ['-n', '-E', '75'] : [])];
  // -o: the lock descriptor is not passed to the command, so killing flock alone releases it.
  const child = spawn('flock', [...mode, '-o', file, 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
  };
  const holder = resources.add(`${options.label} (flock pid ${child.pid})`, stop);
  return new Promise<FileLock | null>((resolve, reject) => {
    let settled = false;
    let stderr = '';
    const notice = setTimeout(() => options.onWait?.(), options.waitNoticeMs ?? 300);
    const finish = (outcome: { lock: FileLock | null } | { error: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(notice);
      options.signal?.removeEventListener('abort', onAbort);
      if ('error' in outcome) void holder.release().finally(() => reject(outcome.error));
      else if (outcome.lock === null) void holder.release().finally(() => resolve(null));
      else resolve(outcome.lock);
    };
    const onAbort = () => finish({ error: new LockError(`waiting for ${options.label} was aborted`) });
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) finish({ lock: { release: () => holder.release() } });
    });
    child.on('error', (error) => finish({ error: new LockError(`cannot run flock(1) for ${options.label}: ${error.message}`) }));
    child.on('close', (code) => {
      if (code === 75 && options.nonBlocking) finish({ lock: null });
      else finish({ error: new LockError(`flock(1) on ${file} exited ${code}: ${stderr.trim()}`) });
    });
  });
}
