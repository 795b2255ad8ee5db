/**
 * The HTML report in a real browser: headless Chromium (Debian's `chromium`, installed by CI, never by this test)
 * renders report.html to a PNG; the test decodes it and checks the grid's outcome colours are on screen.
 * Set NSMATRIX_SCREENSHOT_OUT=/some/file.png to keep the screenshot for a look.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHtmlReporter, OUTCOME_COLOURS } from '../../reporters/html.js';
import { resources } from '../../src/lib/resources.js';
import { makeHostileResult } from '../fixtures/results/make-result.js';
import { countColour, decodePng, distinctColours } from '../fixtures/results/png.js';

function chromiumBinary(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    if (spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0) return name;
  }
  throw new Error('headless Chromium is missing: apt-get install -y chromium (the HTML screenshot test needs it)');
}

async function screenshot(binary: string, page: string, png: string, profile: string): Promise<{ code: number | null; stderr: string }> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    `--screenshot=${png}`,
    '--window-size=1280,900',
    `file://${page}`,
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  // The whole process group: Chromium starts helpers (zygote, renderer) that must not outlive the test.
  const kill = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const registration = resources.add(`chromium ${child.pid}`, kill);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(kill, 60_000);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    return { code, stderr };
  } finally {
    clearTimeout(timer);
    kill();
    await registration.release();
  }
}

describe('html report in headless Chromium', () => {
  let dir: string;
  let binary: string;
  beforeAll(async () => {
    binary = chromiumBinary();
    dir = await mkdtemp(join(tmpdir(), 'nsm-html-shot-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('renders the grid with every outcome colour on screen', async () => {
    const outputDir = join(dir, 'out');
    const result = await makeHostileResult(outputDir);
    const [page] = (await createHtmlReporter().onRunEnd!(result, { outputDir })) as string[];
    const png = join(dir, 'report.png');
    const profile = await mkdtemp(join(tmpdir(), 'nsm-chromium-profile-'));
    let run;
    try {
      run = await screenshot(binary, page!, png, profile);
    } finally {
      await rm(profile, { recursive: true, force: true });
    }
    expect(run.code, run.stderr).toBe(0);
    if (process.env.NSMATRIX_SCREENSHOT_OUT) await copyFile(png, process.env.NSMATRIX_SCREENSHOT_OUT);

    expect((await stat(png)).size).toBeGreaterThan(30_000);
    const image = decodePng(await readFile(png));
    expect(image.width).toBe(1280);
    expect(image.height).toBe(900);
    expect(distinctColours(image)).toBeGreaterThan(200);
    // Each outcome's header bar is a solid block of its colour (at least a 100x20 px area's worth).
    for (const [outcome, colour] of Object.entries(OUTCOME_COLOURS)) {
      expect(countColour(image, colour), `${outcome} (${colour})`).toBeGreaterThan(2000);
    }
    // Several failed cells: more of the failure colour than of the single error cell's.
    expect(countColour(image, OUTCOME_COLOURS.failed)).toBeGreaterThan(countColour(image, OUTCOME_COLOURS.error));
  });
});
