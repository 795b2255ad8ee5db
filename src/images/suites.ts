/**
 * From the mirror's Release file: suite aliases (stable, testing, unstable, oldstable) resolved to code names, and
 * the architectures a suite is published for.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { httpGetText } from '../lib/download.js';

const FALLBACK_CODENAMES: Record<string, Record<string, string>> = {
  debian: { oldstable: 'bookworm', stable: 'trixie', testing: 'forky', unstable: 'sid' },
};

const cache = new Map<string, Promise<string | undefined>>();

export function codenameFromRelease(text: string): string | undefined {
  const match = /^Codename:\s*(\S+)\s*$/m.exec(text);
  return match?.[1];
}

async function fetchCodename(mirror: string, suite: string): Promise<string | undefined> {
  try {
    return codenameFromRelease(await httpGetText(`${mirror}/dists/${suite}/Release`, { signal: AbortSignal.timeout(5000) }));
  } catch {
    return undefined;
  }
}

/** Code names pass through; aliases ask the mirror once per process, then the built-in table. */
export async function resolveSuite(distro: string, suite: string, mirror: string | undefined): Promise<string> {
  const fallback = FALLBACK_CODENAMES[distro]?.[suite];
  if (!fallback) return suite;
  if (!mirror) return fallback;
  const cacheKey = `${mirror} ${suite}`;
  let pending = cache.get(cacheKey);
  if (!pending) {
    pending = fetchCodename(mirror, suite);
    cache.set(cacheKey, pending);
  }
  return (await pending) ?? fallback;
}

/** The `Architectures:` field of a Release file (Debian names); undefined when the file has none. Pure. */
export function architecturesFromRelease(text: string): string[] | undefined {
  const match = /^Architectures:[ \t]*(.*)$/m.exec(text);
  return match ? match[1]!.trim().split(/\s+/).filter(Boolean) : undefined;
}

const RELEASE_CACHE_TTL_MS = 24 * 3600_000;
const architectureCache = new Map<string, Promise<string[] | undefined>>();

function releaseCachePath(stateDir: string, mirror: string, suite: string): string {
  const name = createHash('sha256').update(`${mirror} ${suite}`).digest('hex').slice(0, 24);
  return join(stateDir, 'mirror-releases', `${name}.json`);
}

/** What a day-old answer said, kept in the state directory (validate runs often; the mirror changes rarely). */
function readCachedArchitectures(path: string | undefined, now: number): string[] | undefined {
  if (!path) return undefined;
  try {
    if (now - statSync(path).mtimeMs > RELEASE_CACHE_TTL_MS) return undefined;
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(parsed) && parsed.every((a) => typeof a === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function writeCachedArchitectures(path: string | undefined, architectures: string[]): void {
  // Only into a state directory already in use (it holds images/): a new one must stay recognisably nsmatrix's
  // (lib/private-dir.ts refuses a directory holding other things), and validate never creates one.
  if (!path || !existsSync(join(dirname(dirname(path)), 'images'))) return;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(architectures));
    renameSync(temporary, path);
  } catch {
    // A cache that cannot be written (a read-only or foreign state directory) only costs a fetch next time.
  }
}

/**
 * The architectures a mirror publishes for a suite, from its Release file: once per process, and for a day from the
 * state directory's cache when one is given. Undefined when the mirror cannot be asked (no network: not our call).
 */
export async function publishedArchitectures(mirror: string, suite: string, stateDir?: string): Promise<string[] | undefined> {
  const key = `${mirror} ${suite}`;
  let pending = architectureCache.get(key);
  if (!pending) {
    pending = (async () => {
      const path = stateDir ? releaseCachePath(stateDir, mirror, suite) : undefined;
      const cached = readCachedArchitectures(path, Date.now());
      if (cached) return cached;
      try {
        const found = architecturesFromRelease(await httpGetText(`${mirror}/dists/${suite}/Release`, { signal: AbortSignal.timeout(10_000) }));
        if (found) writeCachedArchitectures(path, found);
        return found;
      } catch {
        return undefined;
      }
    })();
    architectureCache.set(key, pending);
  }
  return pending;
}
