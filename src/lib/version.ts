import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileIdentity } from './root-cache.js';

let version: string | undefined;

/**
 * The tool's version from package.json: the nearest one named nsmatrix above this module, wherever the module
 * sits (src/lib under tsx, a chunk of the bundle in dist/src/cli).
 */
export function toolVersion(): string {
  if (version) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nsmatrix' && pkg.version) return (version = pkg.version);
    } catch {
      // none here: look further up
    }
    const up = dirname(dir);
    if (up === dir) return (version = '0.0.0');
    dir = up;
  }
}

/** `nsmatrix --version` (or -v) and nothing else: answered before anything else is loaded. */
export function isVersionRequest(argv: readonly string[]): boolean {
  return argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v');
}

let identity: string | null | undefined;

/**
 * The running build, told apart from every other: the bundle's fileIdentity() when nsmatrix runs
 * from its bundle (dist/src/cli/nsmatrix.cjs, where this module's URL is the bundle's). Null when it runs from
 * separate modules (tsx, tests): no one identity then covers the code, so what is keyed by it is not kept.
 */
export function bundleIdentity(): string | null {
  if (identity !== undefined) return identity;
  const path = fileURLToPath(import.meta.url);
  return (identity = path.endsWith('.cjs') ? fileIdentity(path) : null);
}
