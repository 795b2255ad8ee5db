import { readFileSync } from 'node:fs';

let version: string | undefined;

/** The tool's version from package.json (works from src/ under tsx and from dist/src). */
export function toolVersion(): string {
  if (version) return version;
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nsmatrix' && pkg.version) return (version = pkg.version);
    } catch {
      // try the next candidate
    }
  }
  return (version = '0.0.0');
}
