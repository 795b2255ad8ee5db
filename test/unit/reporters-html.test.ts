import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHtml, createHtmlReporter, OUTCOME_COLOURS } from '../../reporters/html.js';
import type { RunResult } from '../../src/run/result.js';
import { makeHostileResult } from '../fixtures/results/make-result.js';

describe('html reporter', () => {
  let dir: string;
  let result: RunResult;
  let html: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsm-html-'));
    result = await makeHostileResult(dir);
    const [path] = (await createHtmlReporter().onRunEnd!(result, { outputDir: dir })) as string[];
    expect(path).toBe(join(dir, 'report.html'));
    html = await readFile(path!, 'utf8');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('shows a line break inside a value as \\n rather than a space', async () => {
    const broken = structuredClone(result);
    broken.cells[0]!.name = 'debian:trixie [cc=cl\nang]';
    expect(await buildHtml(broken, { outputDir: dir, reportPath: join(dir, 'report.html') })).toContain('cc=cl\\nang');
  });

  it('is self-contained: inline CSS, no script, no external asset', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('escapes everything from the run: no markup, escape sequence or control character gets through', () => {
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('</system-out></testcase>');
    expect(html).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(html).toContain('hostile &lt;matrix&gt; &amp; ]]&gt;');
    expect(html).not.toMatch(/\x1b/);
    expect(html).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/);
    // every tag in the page is one the reporter writes
    const tags = new Set([...html.matchAll(/<\/?([a-zA-Z0-9]+)/g)].map((m) => m[1]!.toLowerCase()));
    const allowed = ['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'h3', 'p', 'ul', 'li', 'span', 'main', 'table', 'colgroup', 'col', 'thead', 'tbody', 'tr', 'th', 'td', 'div', 'ol', 'a', 'br', 'section', 'article', 'pre', 'code'];
    for (const tag of tags) expect(allowed).toContain(tag);
  });

  it('lays the matrix out as a grid: a row per image, a column per other-axis combination', () => {
    const rows = [...html.matchAll(/<th scope="row" class="row">([^<]*)<\/th>/g)].map((m) => m[1]);
    expect(rows).toEqual(['debian:bookworm', 'debian:trixie', 'ubuntu:noble']);
    const columns = [...html.matchAll(/<th scope="col">([^<]*(?:<br>[^<]*)*)<\/th>/g)].map((m) => m[1]);
    expect(columns).toEqual(['image', 'cc=gcc<br>opt=O0', 'cc=gcc<br>opt=O2', 'cc=clang<br>opt=O0', 'cc=clang<br>opt=O2']);
    for (const outcome of ['passed', 'failed', 'error', 'cancelled', 'skipped', 'flaky']) expect(html).toContain(`class="cell o-${outcome}"`);
    for (const colour of Object.values(OUTCOME_COLOURS)) expect(html).toContain(colour);
  });

  it('links logs, earlier attempts and journals relatively, and shows failing tails inline', () => {
    expect(html).toContain('href="debian-bookworm-gcc-o2/02-test.log"');
    expect(html).toContain('href="debian-trixie-gcc-o2/01-flaky.attempt2.log">#2</a>');
    expect(html).toContain('href="debian-bookworm-gcc-o0/journal.txt">journal</a>');
    expect(html).toContain('<h2>Failures</h2>');
    expect(html).toContain('LAST LINE OF THE BIG LOG');
    expect(html.match(/<article class="failure/g)).toHaveLength(result.cells.filter((c) => c.outcome === 'failed' || c.outcome === 'error').length);
    expect(html).toContain('timed out after 600s');
    expect(html).toContain('killed by SIGKILL');
  });

  it('links from wherever the report is written', async () => {
    const page = await buildHtml(result, { outputDir: dir, reportPath: join(dir, 'reports', 'sub', 'r.html') });
    expect(page).toContain('href="../../debian-bookworm-gcc-o2/02-test.log"');
  });
});
