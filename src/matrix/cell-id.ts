/**
 * Cell ids: stable across runs (derived only from the cell's values, never from its position) and safe as one
 * path component on any filesystem: `[a-z0-9._-]`, no leading dot, at most ID_MAX characters. Pure.
 */
import { createHash } from 'node:crypto';
import type { MatrixValue } from './types.js';

export const ID_MAX = 100;
const HASH_LENGTH = 8;

/** Lower-case ASCII slug: accents dropped, every other run of unsafe characters becomes one "-". */
export function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[-.]+|[-.]+$/g, '');
}

/** Hash of the exact values (types included), so `1` and `"1"` differ even when their slugs do not. */
export function valuesHash(values: Readonly<Record<string, MatrixValue>>): string {
  const canonical = JSON.stringify(Object.entries(values).map(([key, value]) => [key, typeof value, value]));
  return createHash('sha256').update(canonical).digest('hex').slice(0, HASH_LENGTH);
}

/** `debian-bookworm_cc-gcc`: the image, then `key-value` for every other value in order. */
export function baseSlug(values: Readonly<Record<string, MatrixValue>>): string {
  const parts: string[] = [];
  if (values.image !== undefined) parts.push(slugify(String(values.image)) || 'image');
  for (const [key, value] of Object.entries(values)) {
    if (key === 'image') continue;
    parts.push(`${slugify(key)}-${slugify(String(value))}`.replace(/-+$/, ''));
  }
  // A leading "-" or "_" would read as an option or hide the id; a leading "." would hide the directory.
  return parts.join('_').replace(/^[-._]+/, '') || 'cell';
}

function withHash(slug: string, hash: string): string {
  const room = ID_MAX - HASH_LENGTH - 1;
  return `${slug.slice(0, room).replace(/[-._]+$/, '')}-${hash}`;
}

/** Ids for a run's cells, in order: truncated or colliding slugs get a hash of the values; exact duplicates a counter. */
export function cellIds(valueSets: readonly Readonly<Record<string, MatrixValue>>[]): string[] {
  const slugs = valueSets.map(baseSlug);
  const counts = new Map<string, number>();
  for (const slug of slugs) counts.set(slug, (counts.get(slug) ?? 0) + 1);
  const ids = slugs.map((slug, index) =>
    slug.length > ID_MAX || counts.get(slug)! > 1 ? withHash(slug, valuesHash(valueSets[index]!)) : slug,
  );
  const taken = new Set<string>();
  return ids.map((id) => {
    let candidate = id;
    for (let n = 2; taken.has(candidate); n++) candidate = `${id.slice(0, ID_MAX - 6)}-${n}`;
    taken.add(candidate);
    return candidate;
  });
}
