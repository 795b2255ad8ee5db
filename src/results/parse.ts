/** One result file, by its declared format or recognised by its content (`auto`). */
import { parseAutomake } from './automake.js';
import { parseGoJson } from './go-json.js';
import { parseJunit } from './junit.js';
import { parseTap } from './tap.js';
import { decodeText, type ParseOutcome, type ResultFormat } from './types.js';

type Concrete = Exclude<ResultFormat, 'auto'>;

/** The format `text` is unambiguously in, or undefined. */
export function detectFormat(text: string, path: string): Concrete | undefined {
  const head = text.slice(0, 4096).replace(/^\s+/, '');
  if (/^(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*)*<testsuites?[\s>]/.test(head)) return 'junit';
  const firstLine = head.split('\n', 1)[0] ?? '';
  if (/^\{.*"Action"\s*:/.test(firstLine)) return 'go-json';
  if (/^TAP version \d+/.test(firstLine) || /^1\.\.\d+(\s|$)/.test(firstLine) || /^(not )?ok\b/.test(firstLine)) return 'tap';
  if (path.endsWith('.trs') || /^:test-result:/m.test(head)) return 'automake';
  if (/^# TOTAL:\s*\d+$/m.test(head)) return 'automake';
  if (/^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR): \S/m.test(text)) return 'automake';
  return undefined;
}

/** Parses the bytes of one result file (`path` is its container path, for names and for `.trs`). Never throws. */
export function parseResultFile(format: ResultFormat, path: string, bytes: Uint8Array): ParseOutcome {
  const text = decodeText(bytes);
  const concrete = format === 'auto' ? detectFormat(text, path) : format;
  try {
    switch (concrete) {
      case 'junit':
        return parseJunit(text);
      case 'tap':
        return parseTap(text);
      case 'automake':
        return parseAutomake(text, path);
      case 'go-json':
        return parseGoJson(text);
      case undefined:
        return { tests: [], warnings: ['format not recognised (declare format: junit, tap, automake or go-json)'], format: 'unknown' };
    }
  } catch (error) {
    // A parser bug must not cost the report: the file becomes a warning.
    return { tests: [], warnings: [`could not be read as ${concrete ?? 'unknown'}: ${(error as Error).message}`], format: concrete ?? 'unknown' };
  }
}
