/** Terminal views are reporters; the registry's catalogue is the one place reporter names, files and defaults live. */
import { describe, expect, it } from 'vitest';
import { REPORTER_CATALOG, DEFAULT_REPORTERS } from '../../reporters/types.js';
import { createReporter, reporterNames } from '../../reporters/index.js';
import { HTML_DEFAULT_FILE } from '../../reporters/html.js';
import { JSON_DEFAULT_FILE } from '../../reporters/json.js';
import { JUNIT_DEFAULT_FILE } from '../../reporters/junit.js';
import { MARKDOWN_DEFAULT_FILE } from '../../reporters/markdown.js';
import { createTerminal } from '../../src/cli/terminal.js';

describe('reporter registry', () => {
  it('catalogues every reporter with the file it really writes, and defaults from the catalogue', () => {
    const files: Record<string, string> = { junit: JUNIT_DEFAULT_FILE, json: JSON_DEFAULT_FILE, markdown: MARKDOWN_DEFAULT_FILE, html: HTML_DEFAULT_FILE };
    for (const entry of REPORTER_CATALOG) {
      expect(entry.file).toBe(files[entry.name]);
      expect(createReporter(entry.name).name).toBe(entry.name);
    }
    expect(reporterNames).toEqual(REPORTER_CATALOG.map((r) => r.name));
    for (const name of DEFAULT_REPORTERS) expect(reporterNames).toContain(name);
  });

  it('terminal views implement the reporter interface (events in, no files out)', async () => {
    const stream = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
    const view = createTerminal({ plain: true, stream, env: {} });
    expect(view.name).toBe('plain');
    expect(typeof view.onEvent).toBe('function');
    expect(await view.onRunEnd!({} as never, { outputDir: '/x' })).toEqual([]);
  });
});
