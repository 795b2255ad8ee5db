/** A build's log: every line goes to the log file, and progress lines to the caller's `onProgress`. */
import { appendFileSync, readFileSync } from 'node:fs';

export class BuildLog {
  constructor(
    readonly path: string,
    private readonly onProgress?: (line: string) => void,
  ) {}

  /** A line of our own: logged and shown. */
  info(line: string): void {
    this.write(`nsmatrix: ${line}\n`);
    this.onProgress?.(line);
  }

  /** Output of a child process: logged whole, shown line by line. */
  output(text: string): void {
    this.write(text);
    if (!this.onProgress) return;
    for (const line of text.split('\n')) if (line.trim()) this.onProgress(line);
  }

  private write(text: string): void {
    // 0600 like everything in the state directory (the mode applies when the file is created).
    appendFileSync(this.path, text, { mode: 0o600 });
  }

  text(): string {
    try {
      return readFileSync(this.path, 'utf8');
    } catch {
      return '';
    }
  }

  tail(lines = 30): string[] {
    try {
      const all = readFileSync(this.path, 'utf8').split('\n').filter((l) => l.length > 0);
      return all.slice(-lines);
    } catch {
      return [];
    }
  }
}
