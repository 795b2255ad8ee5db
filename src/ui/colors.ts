/** Terminal colours that honour NO_COLOR and FORCE_COLOR (https://no-color.org, FORCE_COLOR convention). */
export interface Palette {
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

export function colorsEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

const wrap = (on: boolean, open: number, close: number) => (text: string) => (on ? `\u001b[${open}m${text}\u001b[${close}m` : text);

export function palette(enabled: boolean): Palette {
  return {
    green: wrap(enabled, 32, 39),
    red: wrap(enabled, 31, 39),
    yellow: wrap(enabled, 33, 39),
    dim: wrap(enabled, 2, 22),
    bold: wrap(enabled, 1, 22),
  };
}

/**
 * What must never reach a terminal raw: C0 controls (ESC, CR, LF, TAB, BS...), DEL, C1 controls (CSI is U+009B),
 * the Unicode line and paragraph separators, and the bidirectional controls that reorder what is shown.
 */
const UNPRINTABLE_RE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

const escapeChar = (char: string): string => {
  const short = SHORT_ESCAPES[char];
  if (short !== undefined) return short;
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/**
 * The sanitiser for every string a user controls (matrix, image, cell and step names, paths, values) before it
 * is shown on the terminal: every control character, newlines included, becomes a visible escape (`\n`, `\x1b`).
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE_RE, escapeChar);
}

/**
 * Step and build output, error messages: escape sequences are dropped (they are formatting), then everything
 * `printable` escapes except tabs, which are part of the text. A line shown stays one line.
 */
export function terminalSafe(line: string): string {
  return line
    .replace(/\u001b\][^\u0007\u001b]*(\u0007|\u001b\\)?/g, '')
    .replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(UNPRINTABLE_RE, (char) => (char === '\t' ? char : escapeChar(char)));
}
