/**
 * One exclusive lock per image key: a file lock of lib/flock.ts (held by a `flock(1)` child whose stdin is our
 * pipe: when we exit or are killed, the pipe closes, the child exits and the kernel drops the lock). No stale
 * lock files to reason about.
 */
import { join } from 'node:path';
import { InfraError } from '../errors.js';
import { acquireFlock, DYING_HOLDER_GRACE_MS, LockError } from '../lib/flock.js';
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
  /** Give up when the lock is held: resolves to undefined then. */
  nonBlocking?: boolean;
  busyGraceMs?: number;
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
  return lockKey(stateDir, key, { nonBlocking: true, busyGraceMs: DYING_HOLDER_GRACE_MS });
}

async function lockKey(stateDir: string, key: string, options: LockOptions): Promise<KeyLock | undefined> {
  try {
    // Made 0600 here rather than by flock(1), which would create it 0644 (like everything in the state directory).
    const lock = await acquireFlock(lockPath(stateDir, key), { ...options, label: `image lock ${key}`, mode: 0o600 });
    return lock ?? undefined;
  } catch (error) {
    if (!(error instanceof LockError)) throw error;
    if (error.reason === 'aborted') throw new InfraError(`waiting for the lock of image ${key} was aborted`);
    throw new InfraError(error.message.replace(`image lock ${key}`, `image ${key}`));
  }
}
