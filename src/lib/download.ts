/**
 * The few downloads nsmatrix makes itself (a `pull:` tarball, a mirror's Release file), over node's own http(s)
 * client rather than fetch(): fetch's TLS roots are fixed when node starts, and the executable starts node without
 * NODE_EXTRA_CA_CERTS (src/cli/bin.ts says why), so the certificates it names are added here, per request.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

// node:http, node:https and node:tls are loaded on the first download, not by every command that can download
// (~3 ms of node compiling its own modules at every start otherwise).

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class DownloadError extends Error {
  override name = 'DownloadError';
}

const authorities = new Map<string, string[] | undefined>();

/**
 * Node's own roots plus the file NODE_EXTRA_CA_CERTS names, as node would trust them had it loaded the file at
 * start-up; undefined (node's defaults) without one. An unreadable file is skipped, as node skips it.
 */
export function certificateAuthorities(file = process.env.NODE_EXTRA_CA_CERTS): string[] | undefined {
  if (!file) return undefined;
  if (!authorities.has(file)) {
    let extra: string | undefined;
    try {
      extra = readFileSync(file, 'utf8');
    } catch {
      extra = undefined;
    }
    const { rootCertificates } = process.getBuiltinModule('node:tls');
    authorities.set(file, extra === undefined ? undefined : [...rootCertificates, extra]);
  }
  return authorities.get(file);
}

function requestOnce(url: URL, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = { method: 'GET', ...(signal ? { signal } : {}) };
    const ca = url.protocol === 'https:' ? certificateAuthorities() : undefined;
    const request =
      url.protocol === 'https:'
        ? process.getBuiltinModule('node:https').request(url, { ...options, ...(ca ? { ca } : {}) }, resolve)
        : process.getBuiltinModule('node:http').request(url, options, resolve);
    request.once('error', reject);
    request.end();
  });
}

/**
 * GET `url` (http or https), following up to five redirects; resolves with the response of a 2xx status, whose body
 * the caller reads. Any other status, a bad URL or a network failure rejects with a DownloadError.
 */
export async function httpGet(url: string, signal?: AbortSignal): Promise<IncomingMessage> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new DownloadError(`not a URL: ${url}`);
  }
  for (let hop = 0; ; hop++) {
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new DownloadError(`not an http(s) URL: ${target.href}`);
    let response: IncomingMessage;
    try {
      response = await requestOnce(target, signal);
    } catch (error) {
      throw new DownloadError((error as Error).message, { cause: error });
    }
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return response;
    response.resume();
    const location = response.headers.location;
    if (!REDIRECTS.has(status) || !location) throw new DownloadError(`HTTP ${status}`);
    if (hop >= MAX_REDIRECTS) throw new DownloadError(`more than ${MAX_REDIRECTS} redirects`);
    try {
      target = new URL(location, target);
    } catch {
      throw new DownloadError(`HTTP ${status} to a bad location: ${location}`);
    }
  }
}

/** The whole body of a GET as text (small files only: a Release file). */
export async function httpGetText(url: string, signal?: AbortSignal): Promise<string> {
  const response = await httpGet(url, signal);
  response.setEncoding('utf8');
  let text = '';
  try {
    for await (const chunk of response) text += chunk as string;
  } catch (error) {
    throw new DownloadError((error as Error).message, { cause: error });
  }
  return text;
}
