/**
 * Turning untrusted console output into text that every report format accepts (see
 * ../shared/junit-contract.md, "Text that goes into the XML"). All functions here are pure.
 */

/** `system-out` cap, in UTF-16 code units (never more than the schema's characters). */
export const SYSTEM_OUT_MAX_CHARS = 256 * 1024;
/** failure/error body cap. */
export const FAILURE_BODY_MAX_CHARS = 64 * 1024;
/** Attribute values (`message`): one line. */
export const ATTRIBUTE_MAX_CHARS = 1024;
/** Names (`testsuite@name`, `testcase@name`, property names): the schema's Label type. */
export const LABEL_MAX_CHARS = 512;

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Decodes UTF-8, replacing every invalid sequence (including CESU-encoded surrogates) with U+FFFD. */
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/*
 * ECMA-48 sequences, in both 7-bit (ESC-prefixed) and 8-bit (C1) forms:
 * - CSI: ESC [ or U+009B, parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, a final byte 0x40-0x7E;
 * - string commands OSC/DCS/SOS/PM/APC (ESC ] P X ^ _, or U+009D/0090/0098/009E/009F) up to BEL or ST
 *   (ESC \ or U+009C). An unterminated string ends at the line end, so one stray OSC cannot swallow a log;
 * - any other escape: ESC, intermediates 0x20-0x2F, a final byte 0x30-0x7E (ESC ( B, ESC 7, ESC c ...);
 * - an ESC with nothing valid after it.
 */
const TERMINAL_SEQUENCE = new RegExp(
  [
    '(?:\\u001b\\[|\\u009b)[\\u0030-\\u003f]*[\\u0020-\\u002f]*[\\u0040-\\u007e]?',
    '(?:\\u001b[\\]PX^_]|[\\u009d\\u0090\\u0098\\u009e\\u009f])[^\\u0007\\u001b\\u009c\\n]*(?:\\u0007|\\u001b\\\\|\\u009c)?',
    '\\u001b[\\u0020-\\u002f]*[\\u0030-\\u007e]?',
  ].join('|'),
  'g',
);

/** Removes terminal control sequences whole (not just the ESC byte, which would leave `[31m` behind). */
export function stripTerminalSequences(text: string): string {
  return text.replace(TERMINAL_SEQUENCE, '');
}

/** CRLF and lone CR (progress bars) become LF. */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/*
 * What XML 1.0 forbids (C0 controls but TAB, LF, CR; U+FFFE, U+FFFF; unpaired surrogates), plus what it
 * discourages and terminals misread (DEL, C1 controls). Controls become a visible `\xNN`; the rest U+FFFD.
 */
const UNWANTED_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function replaceForbiddenCharacters(text: string): string {
  return text.replace(UNWANTED_CHARACTER, (ch) => {
    const code = ch.charCodeAt(0);
    if (code <= 0x9f) return `\\x${code.toString(16).padStart(2, '0')}`;
    return '\ufffd';
  });
}

/** True when `text` holds no character the XML 1.0 `Char` production forbids. */
export function isXmlSafe(text: string): boolean {
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

/** A cut must never leave half a surrogate pair behind. */
function safeHead(text: string, length: number): string {
  let end = Math.max(0, Math.min(length, text.length));
  if (end > 0 && end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
  return text.slice(0, end);
}

function safeTail(text: string, length: number): string {
  let start = Math.max(0, text.length - Math.max(0, length));
  if (start > 0 && start < text.length && isLowSurrogate(text.charCodeAt(start))) start++;
  return text.slice(start);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

export function cutMarker(count: number, unit: 'characters' | 'bytes', fullLogPath?: string): string {
  const where = fullLogPath ? `, full log: ${replaceForbiddenCharacters(oneLine(fullLogPath))}` : '';
  return `[… ${count} ${unit} cut${where}]`;
}

/**
 * Caps `text` at `maxChars` UTF-16 code units: a third from the head, the rest from the tail (the end of a
 * log is what explains a failure), joined by a marker line that says how much was cut and where the full log is.
 */
export function capText(text: string, maxChars: number, fullLogPath?: string): string {
  if (text.length <= maxChars) return text;
  // The marker's own length depends on the count; size it for the worst case.
  const marker = `\n${cutMarker(text.length, 'characters', fullLogPath)}\n`;
  const budget = maxChars - marker.length;
  if (budget <= 0) return safeTail(text, maxChars);
  const head = safeHead(text, Math.floor(budget / 3));
  const tail = safeTail(text, budget - head.length);
  const cut = text.length - head.length - tail.length;
  return `${head}\n${cutMarker(cut, 'characters', fullLogPath)}\n${tail}`;
}

/** Shortens each over-long line for display (a tail is for reading; the full log is linked). */
export function clipLines(lines: string[], maxChars: number): string[] {
  return lines.map((line) => (line.length <= maxChars ? line : `${safeHead(line, maxChars)} [… ${line.length - safeHead(line, maxChars).length} characters cut]`));
}

export interface SanitizeOptions {
  /** Cap in UTF-16 code units; no cap when undefined. */
  maxChars?: number;
  /** Named in the cut marker. */
  fullLogPath?: string;
}

/** The whole pipeline for a block of text (log, journal, message body): steps 1-5 of the contract. */
export function sanitizeText(input: string | Uint8Array, options: SanitizeOptions = {}): string {
  const decoded = typeof input === 'string' ? input : decodeUtf8(input);
  const clean = replaceForbiddenCharacters(normalizeNewlines(stripTerminalSequences(decoded)));
  return options.maxChars === undefined ? clean : capText(clean, options.maxChars, options.fullLogPath);
}

function oneLine(text: string): string {
  return text.replace(/[\r\n\t\v\f]+/g, ' ');
}

/**
 * An attribute value: sanitised, one line, trimmed, at most `maxChars` (an ellipsis marks a cut), and never
 * empty when `fallback` is given (schema types with minLength 1). `visibleBreaks` shows a line break or tab as
 * `\n` / `\t` instead of a space, for pages a person reads (`cc=cl\nang` must not look like `cc=cl ang`).
 */
export function sanitizeAttribute(input: string, options: { maxChars?: number; fallback?: string; visibleBreaks?: boolean } = {}): string {
  const maxChars = options.maxChars ?? ATTRIBUTE_MAX_CHARS;
  const shown = options.visibleBreaks ? input.replace(/\r\n|\n|\r/g, '\\n').replace(/\t/g, '\\t') : input;
  let value = sanitizeText(oneLine(stripTerminalSequences(shown))).replace(/\s+/g, ' ').trim();
  if (value.length > maxChars) value = `${safeHead(value, maxChars - 1).trimEnd()}…`;
  if (value === '' && options.fallback !== undefined) return sanitizeAttribute(options.fallback, { maxChars });
  return value;
}

/** Lower-case `[a-z0-9_-]` runs joined by `-`; never empty. Dots are structural in JUnit class names. */
export function slugify(text: string, maxChars = 120, fallback = 'x'): string {
  const slug = text
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxChars)
    .replace(/-+$/, '');
  return slug || fallback;
}

/**
 * Splits text at every `]]>` so that each piece can go into its own CDATA section: no piece contains `]]>`,
 * and the pieces concatenated are the text.
 */
export function splitCdataTerminators(text: string): string[] {
  const pieces: string[] = [];
  let from = 0;
  for (let at = text.indexOf(']]>'); at !== -1; at = text.indexOf(']]>', at + 1)) {
    pieces.push(text.slice(from, at + 2));
    from = at + 2;
  }
  pieces.push(text.slice(from));
  return pieces;
}

/** XML text content (escaped, so `]]>` is harmless too). */
export function escapeXmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

export function escapeXmlAttribute(text: string): string {
  return escapeXmlText(text).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;');
}

/** HTML text and attribute values (quotes included, so the same helper serves both). */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A relative file path as an `href`: each segment percent-encoded, `/` kept. */
export function hrefOf(relativePath: string): string {
  return relativePath
    .split(/[\\/]/)
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

/** The runtime writes `2026-11-22T03:40:01.123Z out| text`; for display only the text matters. */
const LOG_PREFIX = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z (?:out|err)\| ?/;

export function stripLogPrefix(line: string): string {
  return line.replace(LOG_PREFIX, '');
}

/** Log text (possibly many lines) without the runtime's per-line prefixes. */
export function stripLogPrefixes(text: string): string {
  return text
    .split('\n')
    .map((line) => stripLogPrefix(line))
    .join('\n');
}
