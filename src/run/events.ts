/**
 * Everything that happens in a run, as one discriminated union. The scheduler emits; reporters and the terminal
 * views only listen. Output chunks are raw bytes: listeners that show text decode and sanitise them.
 */
import type { Cell } from '../matrix/types.js';
import type { CellResult, RunResult, StepResult, AttemptResult } from './result.js';

export type RunEvent =
  | { type: 'run-start'; matrixName: string; file: string; cells: Cell[]; outputDir: string; startedAt: string }
  | { type: 'image-start'; image: string }
  | { type: 'image-progress'; image: string; line: string }
  | { type: 'image-end'; image: string; key?: string; cached: boolean; durationMs: number; error?: string; logPath?: string }
  | { type: 'cell-start'; cell: Cell }
  | { type: 'step-start'; cell: Cell; step: number; name: string; attempt: number }
  | { type: 'step-output'; cell: Cell; step: number; stream: 'stdout' | 'stderr'; chunk: Buffer }
  | { type: 'step-attempt-end'; cell: Cell; step: number; attempt: AttemptResult; willRetry: boolean }
  | { type: 'step-end'; cell: Cell; result: StepResult }
  | { type: 'cell-end'; cell: Cell; result: CellResult }
  | { type: 'run-end'; result: RunResult };

export type RunEventType = RunEvent['type'];

export type RunListener = (event: RunEvent) => void;

/** A tiny synchronous emitter: listeners run in registration order; a throwing listener never stops the run. */
export class RunEvents {
  private readonly listeners: RunListener[] = [];
  readonly errors: unknown[] = [];

  on(listener: RunListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(event: RunEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.errors.push(error);
      }
    }
  }
}
