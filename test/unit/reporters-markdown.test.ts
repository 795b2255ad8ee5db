import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMarkdown, createMarkdownReporter, fenced, markdownInline } from '../../reporters/markdown.js';
import type { RunResult } from '../../src/run/result.js';
import { makeHostileResult } from '../fixtures/results/make-result.js';

describe('markdown reporter', () => {
  let dir: string;
  let result: RunResult;
  let md: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsm-md-'));
    result = await makeHostileResult(dir);
    const [path] = (await createMarkdownReporter().onRunEnd!(result, { outputDir: dir })) as string[];
    expect(path).toBe(join(dir, 'summary.md'));
    md = await readFile(path!, 'utf8');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has one table with a row per cell: outcome emoji, steps pass/fail/skip/not run, duration', () => {
    const rows = md.split('\n').filter((l) => l.startsWith('| '));
    expect(rows[0]).toBe('| | Cell | Steps passed / failed / skipped / not run | Duration |');
    expect(rows).toHaveLength(result.cells.length + 1);
    expect(md).toContain('| ✅ | debian:bookworm \\[cc=gcc, opt=O0\\] | 2 / 0 / 0 / 0 | 4.3s |');
    expect(md).toContain('| ❌ | debian:bookworm \\[cc=gcc, opt=O2\\] | 1 / 1 / 0 / 1 |');
    expect(md).toContain('| ⚠️ | debian:trixie \\[cc=gcc, opt=O2\\] | 1 / 0 / 0 / 0 |');
    expect(md).toContain('| 💥 |');
    expect(md).toContain('| 🚫 |');
    expect(md).toContain('| ⏭️ |');
  });

  it('tells a step that skipped itself (exit status 77) from one that never ran', () => {
    expect(md).toContain('| ⏭️ | debian:trixie \\[cc=gcc, opt=O0\\] | 0 / 0 / 1 / 0 |'); // exit 77
    expect(md).toContain('| 💥 | debian:trixie \\[cc=clang, opt=O2\\] | 0 / 0 / 0 / 1 |'); // no container
    expect(md).toContain('| 🚫 | ubuntu:noble \\[cc=gcc, opt=O2\\] | 1 / 0 / 0 / 1 |'); // interrupted
  });

  it('folds each failing cell log tail and rerun command into <details>', () => {
    const details = md.split('<details>').slice(1);
    expect(details).toHaveLength(result.cells.filter((c) => c.outcome === 'failed' || c.outcome === 'error').length);
    expect(md).toContain("nsmatrix run -f matrix.yaml --cell 'debian-bookworm-gcc-o2'");
    expect(md).toContain('LAST LINE OF THE BIG LOG');
    expect(md).toContain('test: exit status 2');
    expect(md).toContain('experimental: exit status 1 (continue-on-error)');
  });

  it('sanitises and escapes: no escape sequences, no raw HTML from cell names', () => {
    expect(md).not.toMatch(/\x1b/);
    expect(md).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/);
    expect(md).not.toContain('<b>&amp;');
    expect(md).toContain('&lt;b&gt;&amp;amp;');
  });

  it('uses a fence no backtick run in the text can close', () => {
    expect(fenced('a ``` b')).toBe('````text\na ``` b\n````');
    expect(markdownInline('a|b*c_d`e')).toBe('a\\|b\\*c\\_d\\`e');
    // A line break in a value stays visible: cc=cl<newline>ang must not read as cc=cl ang.
    expect(markdownInline('cl\nang\tx')).toBe('cl\\\\nang\\\\tx');
  });

  it('is compact for a passing run', async () => {
    const passing = { ...result, outcome: 'passed' as const, cells: result.cells.filter((c) => c.outcome === 'passed') };
    const text = await buildMarkdown(passing, dir);
    expect(text).not.toContain('<details>');
    expect(text.startsWith('## ⚠️')).toBe(true); // one passing cell is flaky
  });
});
