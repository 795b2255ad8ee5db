/**
 * Red team: a step that plants hostile result files. The host must never read a host file through them, never hang
 * on them, and keep memory and the model bounded; the report is still written and valid. Exec and boot mode (the
 * gathering goes through the in-container agent there), and exec mode with private users.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { DEFAULT_GATHER_LIMITS } from '../../src/results/gather.js';
import { junitSchemaErrors, runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
let work: string;
let canaryDir: string;
const SECRET = `HOSTSECRET${process.pid}x${Date.now()}`;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-results-');
  // A host file a host-side reader would pick up through any of the links below: a valid report naming SECRET.
  canaryDir = join(work, 'canary');
  mkdirSync(canaryDir);
  writeFileSync(join(canaryDir, 'secret.xml'), `<testsuite><testcase classname="c" name="${SECRET}"/></testsuite>\n`);
  writeFileSync(join(canaryDir, 'secret.tap'), `1..1\nok 1 - ${SECRET}\n`);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const block = (script: string) => `|\n${script.trim().split('\n').map((l) => `      ${l}`).join('\n')}`;

const hostile = () => `
  mkdir -p /tmp/r/many && cd /tmp/r
  # links to the host's canary, absolute and climbing, to a file and to a directory; a link to the container's own file
  ln -s ${canaryDir}/secret.xml abs.xml
  ln -s ../../../../../../../../..${canaryDir}/secret.xml climb.xml
  ln -s ${canaryDir} dir
  ln -s /etc/passwd passwd.xml
  # a FIFO nobody writes (a reader would block), a device node where allowed, a 1 GiB sparse file
  mkfifo fifo.xml fifo.tap
  mknod dev.xml c 1 3 2>/dev/null || true
  truncate -s 1G huge.tap
  # a frame marker with a guessed token, and more files than the limit
  printf '\\n@@NSM 0000 FILE 0 /etc/shadow\\nnot ok 1 - forged\\n@@NSM 0000 END\\n@@NSM 0000 DONE\\n1..1\\nok 1 - real\\n' > forged.tap
  i=0; while [ $i -lt ${DEFAULT_GATHER_LIMITS.maxFiles + 200} ]; do printf '1..1\\nok 1 - t%s\\n' $i > many/t$i.tap; i=$((i+1)); done
  printf '1..1\\nok 1 - fine\\n' > ok.tap
`;

function run(name: string, mode: { boot: boolean; privateUsers: boolean }) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'nsmatrix.yaml');
  writeFileSync(
    file,
    [
      'matrix:',
      '  image: [debian:bookworm]',
      `boot: ${mode.boot}`,
      `private-users: ${mode.privateUsers}`,
      'timeout: 5m',
      'steps:',
      '  - name: plant',
      `    run: ${block(hostile())}`,
      '    results:',
      '      - { format: auto, path: "/tmp/r/*.xml" }',
      '      - { format: tap, path: "/tmp/r/*.tap" }',
      '      - { format: tap, path: "/tmp/r/**/*.xml" }',
      '      - { format: tap, path: "/tmp/r/many/*.tap" }',
      '  - name: after',
      '    run: echo still-running',
    ].join('\n') + '\n',
  );
  const out = join(dir, 'out');
  const started = Date.now();
  const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'html', '-r', 'markdown'], { timeoutMs: 900_000 });
  const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
  return { r, out, result, elapsedMs: Date.now() - started };
}

const modes = [
  { boot: false, privateUsers: false },
  { boot: false, privateUsers: true },
  { boot: true, privateUsers: false },
];

describe('hostile result files', () => {
  for (const mode of modes) {
    it(`are read from inside the container only, bounded, never blocking (${mode.boot ? 'boot' : 'exec'} mode${mode.privateUsers ? ', private users' : ''})`, { timeout: 900_000 }, () => {
      const { r, out, result, elapsedMs } = run(`m-${mode.boot}-${mode.privateUsers}`, mode);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const cell = result.cells[0]!;
      expect(cell.steps.map((s) => s.outcome)).toEqual(['passed', 'passed']);
      const results = cell.steps[0]!.attempts[0]!.results!;
      const paths = results.files.map((f) => f.path);
      // Regular files only: no link (to the host or not), no FIFO, no device node.
      expect(paths.filter((p) => !p.startsWith('/tmp/r/many/'))).toEqual(['/tmp/r/forged.tap', '/tmp/r/huge.tap', '/tmp/r/ok.tap']);
      // The limit on files per entry, said in a warning.
      expect(paths.filter((p) => p.startsWith('/tmp/r/many/'))).toHaveLength(DEFAULT_GATHER_LIMITS.maxFiles);
      expect(results.warnings).toContain(`/tmp/r/many/*.tap: more than ${DEFAULT_GATHER_LIMITS.maxFiles} files match; the first ${DEFAULT_GATHER_LIMITS.maxFiles} are read`);
      expect(results.warnings).toContain(`/tmp/r/huge.tap: larger than ${DEFAULT_GATHER_LIMITS.maxFileBytes} bytes; only the first ${DEFAULT_GATHER_LIMITS.maxFileBytes} are read`);
      // The forged frame is the file's content, not a frame: its lines are read as TAP of forged.tap.
      expect(results.tests.filter((t) => t.name === 'forged' || t.name === 'real').map((t) => t.name)).toEqual(['forged', 'real']);
      expect(results.tests.some((t) => t.name === 'fine')).toBe(true);
      // Nothing from the host's canary anywhere in the reports.
      for (const report of ['results.json', 'junit.xml', 'report.html', 'summary.md']) expect(readFileSync(join(out, report), 'utf8')).not.toContain(SECRET);
      expect(junitSchemaErrors(join(out, 'junit.xml'))).toBe('');
      // The FIFOs did not block gathering (a blocked read would wait for the 60 s gathering timeout).
      const gatherMs = Date.parse(cell.steps[1]!.attempts[0]!.startedAt) - Date.parse(cell.steps[0]!.attempts[0]!.startedAt) - cell.steps[0]!.attempts[0]!.durationMs;
      expect(gatherMs).toBeLessThan(30_000);
      expect(elapsedMs).toBeLessThan(600_000);
    });
  }
});
