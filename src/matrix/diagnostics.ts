/** Turning problems into `FILE:LINE:COL: message` lines: zod issues, hints, ordering. Pure. */
import type { core } from 'zod';
import type { Diagnostic, PathSegment, SourceMap } from './source-map.js';
import { knownKeysAt } from './schema.js';

import { didYouMean } from '../lib/did-you-mean.js';

/** `steps[1].env.FOO`, `images["debian:sid"].packages` */
export function renderPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function describeValue(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return `a string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return `${value}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let node = data;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

function prefix(path: readonly PathSegment[]): string {
  return path.length === 0 ? '' : `${renderPath(path)}: `;
}

/** One zod issue as positioned diagnostics (unknown keys give one line per key). */
export function diagnoseIssue(issue: core.$ZodIssue, data: unknown, map: SourceMap): Diagnostic[] {
  const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(path) ?? [];
      return issue.keys.map((key) => ({
        pos: map.keyAt([...path, key]),
        message: `${prefix(path)}unknown key "${key}"${didYouMean(key, known)}`,
      }));
    }
    case 'invalid_type': {
      const value = valueAt(data, path);
      if (value === undefined) {
        const parent = path.slice(0, -1);
        const key = String(path[path.length - 1] ?? '');
        if (map.places.has(JSON.stringify(path))) {
          return [{ pos: map.keyAt(path), message: `${renderPath(path)}: no value given` }];
        }
        return [{ pos: map.valueAt(parent), message: `${prefix(parent)}missing required key "${key}"` }];
      }
      const custom = !issue.message.startsWith('Invalid input');
      const expected = custom ? issue.message : `expected ${EXPECTED[issue.expected] ?? issue.expected}`;
      return [{ pos: map.valueAt(path), message: `${prefix(path)}${expected}, got ${describeValue(value)}` }];
    }
    case 'invalid_key': {
      const nested = issue.issues[0]?.message ?? issue.message;
      return [{ pos: map.keyAt(path), message: `${prefix(path.slice(0, -1))}${nested}` }];
    }
    case 'too_small':
      return [{ pos: map.valueAt(path), message: `${prefix(path)}${tooSmall(issue)}` }];
    case 'too_big':
      return [{ pos: map.valueAt(path), message: `${prefix(path)}${tooBig(issue)}` }];
    case 'invalid_value':
      return [
        {
          pos: map.valueAt(path),
          message: `${prefix(path)}expected one of ${issue.values.map(String).join(', ')}, got ${describeValue(valueAt(data, path))}`,
        },
      ];
    default:
      return [{ pos: map.valueAt(path), message: `${prefix(path)}${issue.message}` }];
  }
}

function tooSmall(issue: core.$ZodIssueTooSmall): string {
  if (issue.message && !issue.message.startsWith('Too small')) return issue.message;
  const minimum = Number(issue.minimum);
  if (issue.origin === 'array') return minimum <= 1 ? 'must not be empty' : `needs at least ${minimum} items`;
  if (issue.origin === 'string') return minimum <= 1 ? 'must not be empty' : `needs at least ${minimum} characters`;
  return `must be at least ${minimum}`;
}

function tooBig(issue: core.$ZodIssueTooBig): string {
  const maximum = Number(issue.maximum);
  if (issue.origin === 'array') return `has more than ${maximum} items`;
  if (issue.origin === 'string') return `is longer than ${maximum} characters`;
  return `must be at most ${maximum}`;
}

export function formatDiagnostics(file: string, diagnostics: readonly Diagnostic[]): string[] {
  const sorted = [...diagnostics].sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
  const lines = sorted.map(({ pos, message }) => `${file}:${pos.line}:${pos.col}: ${oneLine(message)}`);
  return [...new Set(lines)];
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[\u0000-\u001f\u007f]/g, '?');
}
