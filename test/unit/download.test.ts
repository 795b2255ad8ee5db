import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateAuthorities, DownloadError, httpGet, httpGetText } from '../../src/lib/download.js';
import { selfSignedCertificate } from '../helpers/tls.js';

const routes: RequestListener = (req, res) => {
  const hops = /^\/hop\/(\d+)$/.exec(req.url ?? '');
  if (hops) {
    const n = Number(hops[1]);
    res.writeHead(302, { location: n > 0 ? `/hop/${n - 1}` : '/hello' }).end();
  } else if (req.url === '/hello') res.end('hello, world\n');
  else if (req.url === '/loop') res.writeHead(301, { location: '/loop' }).end();
  else if (req.url === '/slow') setTimeout(() => res.end('late'), 5_000).unref();
  else if (req.url === '/big') res.end('x'.repeat(65_536));
  else res.writeHead(404).end('no');
};

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(String((server.address() as AddressInfo).port))));
}

describe('httpGet', () => {
  let dir: string;
  let http: Server;
  let https: Server;
  let plain: string;
  let secure: string;
  let cert: string;
  const savedExtra = process.env.NODE_EXTRA_CA_CERTS;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nsmatrix-download-'));
    const pair = selfSignedCertificate(dir);
    cert = pair.cert;
    http = createHttpServer(routes);
    https = createHttpsServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, routes);
    plain = `http://127.0.0.1:${await listen(http)}`;
    secure = `https://127.0.0.1:${await listen(https)}`;
  });
  afterAll(() => {
    http.closeAllConnections();
    https.closeAllConnections();
    http.close();
    https.close();
    rmSync(dir, { recursive: true, force: true });
    if (savedExtra === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = savedExtra;
  });

  it('reads a body, following relative redirects', async () => {
    expect(await httpGetText(`${plain}/hello`)).toBe('hello, world\n');
    expect(await httpGetText(`${plain}/hop/4`)).toBe('hello, world\n');
  });

  it('refuses other statuses, redirect loops, and URLs that are not http(s)', async () => {
    await expect(httpGet(`${plain}/missing`)).rejects.toThrow(new DownloadError('HTTP 404'));
    // hop/4 is five redirects, hop/5 six.
    expect((await httpGet(`${plain}/hop/4`)).resume().statusCode).toBe(200);
    await expect(httpGet(`${plain}/hop/5`)).rejects.toThrow(/more than 5 redirects/);
    await expect(httpGet(`${plain}/loop`)).rejects.toThrow(/more than 5 redirects/);
    await expect(httpGet('file:///etc/passwd')).rejects.toThrow(/not an http\(s\) URL/);
    await expect(httpGet('no url')).rejects.toThrow(/not a URL/);
    await expect(httpGet('http://127.0.0.1:9/closed')).rejects.toThrow(DownloadError);
  });

  it('gives up when its signal fires', async () => {
    const started = Date.now();
    await expect(httpGetText(`${plain}/slow`, { signal: AbortSignal.timeout(200) })).rejects.toThrow(DownloadError);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('gives up on a server that stops sending, and on a text larger than its bound', async () => {
    await expect(httpGetText(`${plain}/slow`, { idleTimeoutMs: 200 })).rejects.toThrow(/nothing received for 0.2 s/);
    await expect(httpGetText(`${plain}/big`, { maxBytes: 1000 })).rejects.toThrow(/more than 1000 bytes/);
    expect(await httpGetText(`${plain}/big`, { maxBytes: 100_000 })).toHaveLength(65_536);
  });

  it('trusts the certificates NODE_EXTRA_CA_CERTS names, per request, though node started without them', async () => {
    delete process.env.NODE_EXTRA_CA_CERTS;
    await expect(httpGet(`${secure}/hello`)).rejects.toThrow(/self[- ]signed/);
    process.env.NODE_EXTRA_CA_CERTS = cert;
    expect(await httpGetText(`${secure}/hop/1`)).toBe('hello, world\n');
    // Node's own roots stay trusted beside the extra file, as when node loads it at start-up.
    expect(certificateAuthorities(cert)!.length).toBeGreaterThan(100);
    // An unreadable file is skipped, as node skips it.
    expect(certificateAuthorities(join(dir, 'none.pem'))).toBeUndefined();
  });
});
