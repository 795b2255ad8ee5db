/** `${{ matrix.KEY }}` expressions: finding them (for validation) and resolving them for one cell. Pure. */
import type { MatrixValue } from './types.js';

const EXPRESSION_RE = /\$\{\{([\s\S]*?)\}\}/g;
const MATRIX_REF_RE = /^\s*matrix\.([A-Za-z_][A-Za-z0-9_-]*)\s*$/;

export type ExpressionProblem = { kind: 'unsupported'; text: string } | { kind: 'unterminated' };

export interface ExpressionScan {
  /** Keys referenced as `${{ matrix.KEY }}`, in order of appearance. */
  keys: string[];
  problems: ExpressionProblem[];
}

export function scanExpressions(text: string): ExpressionScan {
  const keys: string[] = [];
  const problems: ExpressionProblem[] = [];
  let end = 0;
  for (const match of text.matchAll(EXPRESSION_RE)) {
    const ref = MATRIX_REF_RE.exec(match[1]!);
    if (ref) keys.push(ref[1]!);
    else problems.push({ kind: 'unsupported', text: match[0] });
    end = match.index + match[0].length;
  }
  if (text.indexOf('${{', end) >= 0) problems.push({ kind: 'unterminated' });
  return { keys, problems };
}

/** Replaces every `${{ matrix.KEY }}`; a key the cell does not have becomes "" (as in GitHub Actions). */
export function interpolate(text: string, values: Readonly<Record<string, MatrixValue>>): string {
  return text.replace(EXPRESSION_RE, (whole, inner: string) => {
    const ref = MATRIX_REF_RE.exec(inner);
    if (!ref) return whole;
    const value = Object.hasOwn(values, ref[1]!) ? values[ref[1]!] : undefined;
    return value === undefined ? '' : String(value);
  });
}

/** `continue-on-error` for one cell: an unset `${{ matrix.x }}` is false. */
export function resolveFlag(flag: boolean | string | undefined, values: Readonly<Record<string, MatrixValue>>): boolean {
  if (flag === undefined) return false;
  if (typeof flag === 'boolean') return flag;
  return interpolate(flag, values).trim() === 'true';
}
