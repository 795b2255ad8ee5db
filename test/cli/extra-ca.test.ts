/**
 * NODE_EXTRA_CA_CERTS: node would parse the file before running nsmatrix's first line (~40 ms on every command), so
 * the executable starts node without it (src/cli/bin.ts) and nsmatrix's own https downloads trust it per request
 * (src/lib/download.ts). Checked with the built executable as a user runs it (its #! line), against a mirror over
 * https whose certificate only that file vouches for.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { selfSignedCertificate } from '../helpers/tls.js';

describe('NODE_EXTRA_CA_CERTS', () => {
  let dir: string;
  let cert: string;
  let server: Server;
  let mirror: string;
  /** The environment each nsmatrix process was started with (its /proc/PID/environ), read while it waits on us. */
  const startEnvironments: string[][] = [];
  let pending: number | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nsmatrix-extra-ca-'));
    const pair = selfSignedCertificate(dir);
    cert = pair.cert;
    server = createServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (req, res) => {
      if (pending !== undefined) startEnvironments.push(readFileSync(`/proc/${pending}/environ`, 'utf8').split('\0'));
      if (req.url === '/debian/dists/bookworm/Release') res.end('Origin: Debian\nCodename: bookworm\nArchitectures: amd64 arm64\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    mirror = `https://127.0.0.1:${(server.address() as AddressInfo).port}/debian`;
    writeFileSync(join(dir, 'nsmatrix.yaml'), `matrix:\n  image: [debian:bookworm]\n  arch: [amd64, riscv64]\nimages:\n  debian:bookworm:\n    mirror: ${mirror}\nsteps:\n  - name: x\n    run: "true"\n`);
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function installWrapper(): string {
    const bin = join(dir, 'bin');
    const setup = spawnSync('bash', ['scripts/setup-host.sh'], { encoding: 'utf8', env: { ...process.env, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1', NSMATRIX_SKIP_BUILD: '1' } });
    expect(setup.status, setup.stderr).toBe(0);
    return join(bin, 'nsmatrix');
  }

  function validate(env: NodeJS.ProcessEnv, command = CLI): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(command, ['validate'], { cwd: dir, env: { ...env, PATH: process.env.PATH, NO_COLOR: '1', NSMATRIX_STATE_DIR: join(dir, 'state') }, stdio: ['ignore', 'ignore', 'pipe'] });
    pending = child.pid;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  }

  it.each([
    ['the executable (its #! line)', () => CLI],
    ['the wrapper setup-host.sh installs', installWrapper],
  ])('is trusted for nsmatrix downloads, though node starts without it: %s', async (_, command) => {
    startEnvironments.length = 0;
    const trusted = await validate({ NODE_EXTRA_CA_CERTS: cert }, command());
    // The mirror answered: riscv64 is refused from its Release file.
    expect(trusted.stderr).toContain(`debian:bookworm is not published for riscv64 by ${mirror} (its Release file lists amd64, arm64)`);
    expect(trusted.code).toBe(2);
    expect(startEnvironments).toHaveLength(1);
    expect(startEnvironments[0]).toContain(`NSMATRIX_EXTRA_CA_CERTS=${cert}`);
    expect(startEnvironments[0]!.filter((v) => v.startsWith('NODE_EXTRA_CA_CERTS='))).toEqual([]);

    // Without it the certificate is not trusted: the mirror cannot be asked, which validate does not report.
    const untrusted = await validate({}, command());
    expect(untrusted.stderr).toBe('');
    expect(untrusted.code).toBe(0);
  });
});
