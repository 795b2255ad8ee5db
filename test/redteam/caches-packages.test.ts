/**
 * Red team: the shared package download cache. apt reuses a .deb from its archives directory when only its size
 * matches the index (measured with apt 2.6), so a step that could put a package where other cells look would
 * install its code into them. A step here corrupts a pooled .deb in place, plants a same-size forgery of another
 * package, a link to a host file and a setuid file; the next cell must install the genuine packages, and the pool
 * must hold nothing but files whose SHA-256 the index names.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { packagePoolsDir } from '../../src/caches/packages.js';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-caches-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const pools = (): string[] => {
  try {
    return readdirSync(packagePoolsDir(stateDir)).map((p) => join(packagePoolsDir(stateDir), p));
  } catch {
    return [];
  }
};

function matrixFile(name: string, cells: number, script: string): string {
  const file = join(work, `${name}.yaml`);
  const body = script.trim().split('\n').map((l) => `      ${l}`).join('\n');
  writeFileSync(
    file,
    ['matrix:', '  image: [debian:bookworm]', `  n: [${Array.from({ length: cells }, (_, i) => i + 1).join(', ')}]`, 'timeout: 5m', 'steps:', '  - name: step', '    run: |', body].join('\n') + '\n',
  );
  return file;
}

const attack = `
if [ "$MATRIX_N" = 1 ]; then
  apt-get update -qq
  cd /var/cache/apt/archives
  # 1. corrupt the pooled hello in place (same size)
  f=$(ls hello_*.deb) && printf 'XXXXXXXXXXXXXXXX' | dd of="$f" bs=1 seek=20000 conv=notrunc status=none
  # 2. a same-size forgery of sl, under the exact name apt looks for
  size=$(apt-cache show --no-all-versions sl | sed -n 's/^Size: //p')
  ver=$(apt-cache show --no-all-versions sl | sed -n 's/^Version: //p' | sed 's/:/%3a/')
  head -c "$size" /dev/urandom > "sl_\${ver}_amd64.deb"
  # 3. a link to a host file, and a setuid file, both named like packages
  ln -s /etc/shadow "evil_1.0_amd64.deb"
  cp /bin/true "suid_1.0_amd64.deb" && chmod 4755 "suid_1.0_amd64.deb"
  ls -l
else
  apt-get update -qq
  apt-get install -y --no-install-recommends hello sl
  hello
  dpkg -s sl | grep -q '^Status: install ok installed'
  apt-cache show --no-all-versions hello sl | grep -E '^(Package|SHA256):'
fi
`;

describe('shared package cache', () => {
  it('a step that corrupts or forges pooled .debs makes no other cell install them, and the pool stays genuine', () => {
    // Seed: the genuine hello in the pool, sl not there.
    for (const pool of pools()) {
      for (const name of readdirSync(pool)) if (/^(hello|sl|evil|suid)_/.test(name)) rmSync(join(pool, name));
    }
    const seed = runCli(['run', matrixFile('seed', 1, 'apt-get update -qq && apt-get install -y --no-install-recommends hello'), '--state-dir', stateDir, '-o', join(work, 'seed'), '--plain'], {
      timeoutMs: 900_000,
    });
    expect(seed.code, seed.stdout + seed.stderr).toBe(0);
    expect(pools().flatMap((p) => readdirSync(p)).filter((n) => n.startsWith('hello_'))).toHaveLength(1);

    const out = join(work, 'attack');
    const r = runCli(['run', matrixFile('attack', 2, attack), '--state-dir', stateDir, '-o', out, '--plain', '--jobs', '1'], { timeoutMs: 900_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);

    // The victim's log names the index's hashes; every pool file of these packages must have exactly that hash.
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
    const victimLog = readFileSync(join(out, result.cells[1]!.steps[0]!.attempts[0]!.logPath), 'utf8');
    const wanted = new Map<string, string>();
    for (const m of victimLog.matchAll(/Package: (\S+)[\s\S]*?SHA256: ([0-9a-f]{64})/g)) wanted.set(m[1]!, m[2]!);
    expect([...wanted.keys()].sort()).toEqual(['hello', 'sl']);
    const files = pools().flatMap((p) => readdirSync(p).map((n) => join(p, n)));
    expect(files.filter((f) => /\/(evil|suid)_/.test(f))).toEqual([]);
    for (const pkg of ['hello', 'sl']) {
      const pooled = files.filter((f) => f.includes(`/${pkg}_`));
      expect(pooled, pkg).toHaveLength(1);
      const st = lstatSync(pooled[0]!);
      expect(st.isFile() && (st.mode & 0o7000) === 0).toBe(true);
      expect(createHash('sha256').update(readFileSync(pooled[0]!)).digest('hex'), pkg).toBe(wanted.get(pkg));
    }
  }, 900_000);
});
