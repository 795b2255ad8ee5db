/**
 * One exclusive lock per image key, held by a `flock(1)` child whose stdin is our pipe: when we exit or are
 * killed, the pipe closes, the child exits and the kernel drops the lock. No stale lock files to reason about.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError } from '../errors.js';
import { resources } from '../lib/resources.js';
import { storePaths } from './store.js';

export interface KeyLock {
  release(): Promise<void>;
}

export interface LockOptions {
  shared?: boolean;
  signal?: AbortSignal;
  /** Called once when the lock is not granted at once (another process holds it). */
  onWait?: () => void;
  /** How long to wait before calling onWait. */
  waitNoticeMs?: number;
  /** Give up at once when the lock is held: resolves to undefined then. */
  nonBlocking?: boolean;
}

export function lockPath(stateDir: string, key: string): string {
  return join(storePaths(stateDir).locks, `${key}.lock`);
}

export function acquireKeyLock(stateDir: string, key: string, options: LockOptions = {}): Promise<KeyLock> {
  return lockKey(stateDir, key, options).then((lock) => {
    if (!lock) throw new InfraError(`image ${key} is locked by another process`);
    return lock;
  });
}

/** The lock when it is free right now, else undefined (for garbage collection, which never waits). */
export function tryKeyLock(stateDir: string, key: string): Promise<KeyLock | undefined> {
  return lockKey(stateDir, key, { nonBlocking: true });
}

function lockKey(stateDir: string, key: string, options: LockOptions): Promise<KeyLock | undefined> {
  const file = lockPath(stateDir, key);
  // Made 0600 here rather than by flock(1), which would create it 0644 (like everything in the state directory).
  try {
    closeSync(openSync(file, 'a', 0o600));
  } catch {
    // flock(1) below says what is wrong with the path
  }
  const mode = [options.shared ? '-s' : '-x', ...(options.nonBlocking ? ['-n', '-E', '75'] : [])];
  // -o: the lock descriptor is not passed to the command, so killing flock alone releases it.
  const child = spawn('flock', [...mode, '-o', file, 'sh', '-c', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let granted = false;
  const stop = async () => {
    child.stdin.end();
    // Still waiting inside flock(2): it never reads stdin, so only a signal ends the wait.
    if (!granted) child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
  };
  const holder = resources.add(`image lock ${key} (flock pid ${child.pid})`, stop);
  return new Promise<KeyLock | undefined>((resolve, reject) => {
    let stderr = '';
    const notice = setTimeout(() => options.onWait?.(), options.waitNoticeMs ?? 300);
    const fail = (error: Error) => {
      clearTimeout(notice);
      options.signal?.removeEventListener('abort', onAbort);
      void holder.release().finally(() => reject(error));
    };
    const onAbort = () => fail(new InfraError(`waiting for the lock of image ${key} was aborted`));
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      if (granted || !chunk.toString().includes('locked')) return;
      granted = true;
      clearTimeout(notice);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ release: () => holder.release() });
    });
    child.on('error', (error) => fail(new InfraError(`cannot run flock(1) for image ${key}: ${error.message}`)));
    child.on('close', (code) => {
      if (!granted && options.nonBlocking && code === 75) {
        clearTimeout(notice);
        void holder.release().finally(() => resolve(undefined));
        return;
      }
      if (!granted) fail(new InfraError(`flock(1) on ${file} exited ${code}: ${stderr.trim()}`));
    });
  });
}
