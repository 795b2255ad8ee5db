/** Content keys: a short hash of canonical JSON of everything that decides an image's contents. */
import { createHash } from 'node:crypto';

export type KeyInputs = Record<string, unknown>;

/** JSON with object keys sorted at every level, so equal inputs always hash equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function deriveKey(inputs: KeyInputs): string {
  return createHash('sha256').update(canonicalJson(inputs)).digest('hex').slice(0, 24);
}

/** Inputs of the customised top layer: base key, the sorted package set, the setup script, the tool version. */
export function topLayerInputs(baseKey: string, packages: string[], setup: string | undefined, toolVersion: string): KeyInputs {
  return {
    layer: 'top',
    baseKey,
    packages: [...new Set(packages)].sort(),
    setup: setup ?? '',
    toolVersion,
  };
}
