/** Suite aliases (stable, testing, unstable, oldstable) resolved to code names from the mirror's Release file. */
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
    const response = await fetch(`${mirror}/dists/${suite}/Release`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return undefined;
    return codenameFromRelease(await response.text());
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
