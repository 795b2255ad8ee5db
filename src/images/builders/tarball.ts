/**
 * `pull:` bases: a root filesystem tarball from an http(s) URL or a local path. The bytes are copied into the
 * build's scratch directory while hashing, the sha256 checked, the member list audited (tar-audit.ts), and only
 * then unpacked.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InfraError } from '../../errors.js';
import { httpGet } from '../../lib/download.js';
import { runChecked } from '../../lib/process.js';
import type { BuildLog } from '../build-log.js';
import { runLogged } from '../process.js';
import { auditTarEntries, parseTarListing } from '../tar-audit.js';
import type { BaseBuilder, BuildContext } from './types.js';

/** Copies `url` to `dest`, returning the sha256 of the bytes written. */
export async function fetchToFile(url: string, dest: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  let input: NodeJS.ReadableStream;
  if (url.startsWith('/')) {
    input = createReadStream(url);
  } else {
    try {
      input = await httpGet(url, signal ? { signal } : {});
    } catch (error) {
      throw new InfraError(`cannot download ${url}: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    await pipeline(input, hasher, createWriteStream(dest), signal ? { signal } : {});
  } catch (error) {
    throw new InfraError(`cannot read ${url}: ${(error as Error).message}`, { cause: error });
  }
  return hash.digest('hex');
}

/** tar's decompression flag from the file's magic bytes (names lie; bytes do not). */
export function compressionFlag(head: Buffer): string[] {
  if (head[0] === 0x1f && head[1] === 0x8b) return ['--gzip'];
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return ['--xz'];
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return ['--zstd'];
  return [];
}

function readHead(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(8);
    readSync(fd, head, 0, 8, 0);
    return head;
  } finally {
    closeSync(fd);
  }
}

async function unpack(file: string, target: string, log: BuildLog, signal?: AbortSignal): Promise<void> {
  const compression = compressionFlag(readHead(file));
  let listing: string;
  try {
    ({ stdout: listing } = await runChecked(['tar', '-tv', '--numeric-owner', '--quoting-style=c', ...compression, '-f', file], {
      maxBuffer: 256 << 20,
    }));
  } catch (error) {
    throw new InfraError(`not a readable tar archive: ${(error as Error).message.split('\n')[0]}`, { logPath: log.path });
  }
  const audit = auditTarEntries(parseTarListing(listing));
  if (audit.refused.length) {
    for (const line of audit.refused) log.info(`refused: ${line}`);
    throw new InfraError(`refusing to unpack: ${audit.refused.length} member(s) would escape the target: ${audit.refused.slice(0, 5).join('; ')}`, {
      logPath: log.path,
      tail: audit.refused.slice(0, 30),
    });
  }
  const argv = ['tar', '-x', '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*'];
  argv.push(...compression, '-f', file, '-C', target);
  const outcome = await runLogged(argv, log, signal ? { signal } : {});
  if (outcome.exitCode !== 0) throw new InfraError(`unpacking failed (exit ${outcome.exitCode ?? outcome.signal})`, { logPath: log.path, tail: log.tail() });
  if (audit.devices.length) {
    log.info(`removing ${audit.devices.length} device node(s) from the tree (nspawn provides /dev)`);
    await runChecked(['find', target, '-xdev', '(', '-type', 'b', '-o', '-type', 'c', ')', '-delete']);
  }
}

export function tarballBuilder(url: string, sha256: string): BaseBuilder {
  return {
    kind: 'tarball',
    keyInputs: { layer: 'base', kind: 'tarball', sha256 },
    madeFrom: `tarball ${url} (sha256 ${sha256.slice(0, 12)}…)`,
    async build(targetDir: string, context: BuildContext): Promise<void> {
      const file = join(context.scratchDir, 'rootfs.tar');
      context.log.info(`fetching ${url}`);
      const actual = await fetchToFile(url, file, context.signal);
      if (actual !== sha256) {
        throw new InfraError(`checksum mismatch for ${url}: expected sha256 ${sha256}, got ${actual}; nothing was unpacked`, {
          logPath: context.log.path,
        });
      }
      context.log.info(`sha256 ${actual} verified`);
      await unpack(file, targetDir, context.log, context.signal);
    },
  };
}
