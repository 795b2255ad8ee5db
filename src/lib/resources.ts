/**
 * One registry of everything a process creates that must not outlive it: container processes, lock holders,
 * temporary directories, cgroups. Each creator registers a release function and calls the returned handle when
 * done; whatever is still registered on exit (success, failure, SIGINT, SIGTERM, uncaught error) is released
 * in reverse order of creation by `releaseAll`.
 */
export interface Releasable {
  /** Releases now (idempotent) and forgets the entry. */
  release(): Promise<void>;
}

interface Entry {
  label: string;
  release: () => Promise<void> | void;
}

export class ResourceRegistry {
  private readonly entries = new Map<number, Entry>();
  private nextId = 0;

  add(label: string, release: () => Promise<void> | void): Releasable {
    const id = this.nextId++;
    this.entries.set(id, { label, release });
    let done: Promise<void> | undefined;
    return {
      release: () => {
        done ??= (async () => {
          const entry = this.entries.get(id);
          this.entries.delete(id);
          if (entry) await entry.release();
        })();
        return done;
      },
    };
  }

  get size(): number {
    return this.entries.size;
  }

  labels(): string[] {
    return [...this.entries.values()].map((e) => e.label);
  }

  /** Releases everything still registered, newest first; collects failures instead of stopping at one. */
  async releaseAll(): Promise<Error[]> {
    const failures: Error[] = [];
    const ids = [...this.entries.keys()].sort((a, b) => b - a);
    for (const id of ids) {
      const entry = this.entries.get(id);
      this.entries.delete(id);
      if (!entry) continue;
      try {
        await entry.release();
      } catch (error) {
        failures.push(new Error(`releasing ${entry.label}: ${(error as Error).message}`));
      }
    }
    return failures;
  }
}

/** The process-wide registry the CLI drains on exit and on signals. */
export const resources = new ResourceRegistry();
