/**
 * Reads a YAML document with the `yaml` package's node API and records where every node sits, so that schema
 * problems found on the plain data can be reported as `FILE:LINE:COL`. Pure.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node } from 'yaml';
import type { SourcePosition } from './types.js';

export type PathSegment = string | number;

export interface Diagnostic {
  pos: SourcePosition;
  message: string;
}

/** Where a node is: its key (when it is a mapping value) and its value. */
export interface NodePlace {
  key?: SourcePosition;
  value: SourcePosition;
}

export interface SourceMap {
  /** The position of a path, or of its nearest ancestor that exists in the file. */
  valueAt(path: readonly PathSegment[]): SourcePosition;
  /** The position of the key naming `path` (falls back to the value, then to ancestors). */
  keyAt(path: readonly PathSegment[]): SourcePosition;
  /** Every recorded place, keyed by `pathKey(path)`. */
  readonly places: ReadonlyMap<string, NodePlace>;
}

export interface ParsedYaml {
  data: unknown;
  map: SourceMap;
  /** Syntax errors, duplicate keys, alias bombs: problems found before any schema is applied. */
  problems: Diagnostic[];
  /** True when the syntax is too broken for a schema check to say anything useful. */
  fatal: boolean;
}

export const pathKey = (path: readonly PathSegment[]): string => JSON.stringify(path);

const COMPLEX_KEY = 'keys must be plain scalars';
const START: SourcePosition = { line: 1, col: 1 };
// Far below yaml's own default of 100 expansions per alias: a matrix file has no reason for more.
const MAX_ALIAS_COUNT = 50;

export function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };

  const problems: Diagnostic[] = [];
  for (const error of [...doc.errors, ...doc.warnings]) {
    problems.push({ pos: at(error.pos[0]), message: `YAML: ${firstLine(error.message)}` });
  }
  const places = new Map<string, NodePlace>();
  if (doc.errors.length > 0) return { data: null, map: makeMap(places), problems, fatal: true };
  try {
    const before = problems.length;
    walk(doc.contents, [], undefined, places, problems, at);
    if (problems.slice(before).some((problem) => problem.message.startsWith(COMPLEX_KEY))) {
      return { data: null, map: makeMap(places), problems, fatal: true };
    }
    const data: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    return { data, map: makeMap(places), problems, fatal: false };
  } catch (error) {
    // Alias bombs, and nesting deep enough to exhaust the stack.
    problems.push({ pos: START, message: `YAML: ${firstLine(error instanceof Error ? error.message : String(error))}` });
    return { data: null, map: makeMap(places), problems, fatal: true };
  }
}

function firstLine(message: string): string {
  const line = message.split('\n')[0]!.trim();
  // yaml's advice is for programmers; a matrix file is one document.
  return line.startsWith('Source contains multiple documents') ? 'the file holds several YAML documents; use one' : line;
}

function walk(
  node: unknown,
  path: PathSegment[],
  keyPos: SourcePosition | undefined,
  places: Map<string, NodePlace>,
  problems: Diagnostic[],
  at: (offset: number) => SourcePosition,
): void {
  if (node === null || node === undefined) return;
  const target = node as Node;
  if (isAlias(target)) {
    // Not descended into: positions inside an alias fall back to the alias itself, which is where the user used
    // the value; descending would also let an alias bomb cost exponential time before toJS refuses it.
    places.set(pathKey(path), { key: keyPos, value: target.range ? at(target.range[0]) : keyPos ?? START });
    return;
  }
  places.set(pathKey(path), { key: keyPos, value: target.range ? at(target.range[0]) : keyPos ?? START });
  walkChildren(target, path, places, problems, at);
}

function walkChildren(
  node: Node,
  path: PathSegment[],
  places: Map<string, NodePlace>,
  problems: Diagnostic[],
  at: (offset: number) => SourcePosition,
): void {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      const keyPos = keyNode?.range ? at(keyNode.range[0]) : undefined;
      if (keyNode !== null && !isScalar(keyNode)) {
        problems.push({ pos: keyPos ?? START, message: `${COMPLEX_KEY}, not lists, mappings or aliases` });
        continue;
      }
      const key = keyNode === null ? '' : String(keyNode.value);
      if (seen.has(key)) {
        problems.push({ pos: keyPos ?? START, message: `duplicate key "${key}"` });
      }
      seen.add(key);
      const valuePath = [...path, key];
      const value = pair.value as Node | null;
      if (value === null) {
        places.set(pathKey(valuePath), { key: keyPos, value: keyPos ?? START });
      } else {
        walk(value, valuePath, keyPos, places, problems, at);
        const place = places.get(pathKey(valuePath));
        if (place && !place.key) place.key = keyPos;
      }
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => walk(item, [...path, index], undefined, places, problems, at));
  }
}

function makeMap(places: Map<string, NodePlace>): SourceMap {
  const nearest = (path: readonly PathSegment[]): NodePlace | undefined => {
    for (let length = path.length; length >= 0; length--) {
      const place = places.get(pathKey(path.slice(0, length)));
      if (place) return place;
    }
    return undefined;
  };
  return {
    places,
    valueAt: (path) => nearest(path)?.value ?? START,
    keyAt: (path) => {
      const place = places.get(pathKey(path));
      if (place) return place.key ?? place.value;
      return nearest(path)?.value ?? START;
    },
  };
}
