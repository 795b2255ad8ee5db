/** Exit codes of the nsmatrix command line (documented in the README). */
export const ExitCode = {
  ok: 0,
  cellFailed: 1,
  usage: 2,
  infrastructure: 3,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Bad input from the user: a matrix file, a flag, an image reference, a name.
 * `lines` are already formatted one-line diagnostics, e.g. `nsmatrix.yaml:3:5: unknown key "stpes"`.
 * The CLI prints them and exits 2 without a stack trace.
 */
export class UsageError extends Error {
  readonly lines: string[];
  readonly exitCode: ExitCodeValue = ExitCode.usage;
  constructor(lines: string | string[]) {
    const list = Array.isArray(lines) ? lines : [lines];
    super(list.join('\n'));
    this.name = 'UsageError';
    this.lines = list;
  }
}

/**
 * Something outside the user's matrix went wrong: an image could not be built or pulled, a container could
 * not start, the host lacks a tool. Exit 3. `logPath` names the log to read when there is one.
 */
export class InfraError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.infrastructure;
  readonly logPath: string | undefined;
  readonly tail: string[];
  constructor(message: string, options: { logPath?: string; tail?: string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InfraError';
    this.logPath = options.logPath;
    this.tail = options.tail ?? [];
  }
}
