/**
 * The few downloads nsmatrix makes itself (a `pull:` tarball, a mirror's Release file), over node's own http(s)
 * client rather than fetch(): fetch's TLS roots are fixed when node starts, and the executable starts node without
 * NODE_EXTRA_CA_CERTS (src/cli/bin.ts says why), so the certificates it names are added here, per request.
 * node:http, node:https and node:tls are loaded on the first download, not by every command that can download (~3 ms
 * of node compiling its own modules at every start otherwise).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

/** A connection that sends nothing for this long is given up (a stalled mirror must not hang a run). */
export const IDLE_TIMEOUT_MS = 120_000;
/** The most a text download keeps (a Release file is some hundred KiB). */
export const MAX_TEXT_BYTES = 32 * 2 ** 20;
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

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Default IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
}

function requestOnce(url: URL, { signal, idleTimeoutMs = IDLE_TIMEOUT_MS }: DownloadOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = { method: 'GET', ...(signal ? { signal } : {}) };
    const ca = url.protocol === 'https:' ? certificateAuthorities() : undefined;
    const request =
      url.protocol === 'https:'
        ? process.getBuiltinModule('node:https').request(url, { ...options, ...(ca ? { ca } : {}) }, resolve)
        : process.getBuiltinModule('node:http').request(url, options, resolve);
    request.once('error', reject);
    // The socket's idle time, while waiting for the answer and while reading the body alike.
    request.setTimeout(idleTimeoutMs, () => request.destroy(new Error(`nothing received for ${idleTimeoutMs / 1000} s`)));
    request.end();
  });
}

/**
 * GET `url` (http or https), following up to five redirects; resolves with the response of a 2xx status, whose body
 * the caller reads. Any other status, a bad URL or a network failure rejects with a DownloadError.
 */
export async function httpGet(url: string, options: DownloadOptions = {}): Promise<IncomingMessage> {
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
      response = await requestOnce(target, options);
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

/** The whole body of a GET as text, at most `maxBytes` (small files only: a Release file). */
export async function httpGetText(url: string, options: DownloadOptions & { maxBytes?: number } = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? MAX_TEXT_BYTES;
  const response = await httpGet(url, options);
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        response.destroy();
        throw new DownloadError(`more than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof DownloadError) throw error;
    throw new DownloadError((error as Error).message, { cause: error });
  }
  return Buffer.concat(chunks).toString('utf8');
}
