/**
 * Runs the CLI's CommonJS bundle through V8's code cache. Compiling the bundle (some 2 MB: yargs, zod, yaml and
 * nsmatrix) was the largest part of a command's start-up after node's own, on every command. V8 can keep the
 * compiled code: after a command ran, `createCachedData` serialises the code of every function that command used,
 * and the next run of that command takes it instead of compiling.
 *
 * Root only, in ROOT_CACHE_DIR (see root-cache.ts for what root believes), one file per command, named after the
 * bundle's identity (device, inode, size, mtime, ctime): V8 itself only checks that the source has the same length, so a
 * rebuilt bundle must never meet the code of an older one. Any problem (not root, no cache, a rejected cache): the
 * bundle is compiled as node would, and nothing else changes.
 *
 * A cache holds only what the runs that made it compiled: made by `shell IMAGE`, it lacks the matrix parsing of a
 * project's `shell`, which then compiled that code on every start (some 15 ms). So a cache grows: the runs after the
 * first write it again (what they took from it plus what they compiled) until a run adds less than GROWTH_FLOOR of
 * it, or it has been written MAX_GENERATION times. Its first byte counts the writes.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';
import { fileIdentity, readRootCache, ROOT_CACHE_DIR, writeRootCache } from './root-cache.js';

/** The commands that get a cache of their own; anything else shares one. */
const COMMANDS = new Set(['run', 'shell', 'list', 'validate', 'images', 'cache', 'doctor', 'gc', 'merge', 'completion']);

export function cacheName(bundle: string, argv: readonly string[]): string | null {
  const identity = fileIdentity(bundle);
  if (identity === null) return null;
  const command = argv[0] !== undefined && COMMANDS.has(argv[0]) ? argv[0] : 'other';
  return `${command}-${identity}.v8`;
}

/** How many times a command's cache is written at most, and the growth below which a run stops writing it. */
export const MAX_GENERATION = 4;
export const GROWTH_FLOOR = 0.02;

/** What a run does with its command's cache at exit: `write` it with this generation, or leave it. */
export function cacheUpdate(cached: { generation: number; bytes: number } | null, made: () => Uint8Array): { generation: number; data: Uint8Array } | null {
  if (cached === null) return { generation: 1, data: made() };
  if (cached.generation >= MAX_GENERATION) return null;
  const data = made();
  // Grown enough to be worth another look next time, or final: either way written, so that its count goes up.
  const grew = data.length > cached.bytes * (1 + GROWTH_FLOOR);
  return { generation: grew ? cached.generation + 1 : MAX_GENERATION, data };
}

/** Runs `bundle` (CommonJS) as node would, with the cached code of `argv`'s command when root has one. */
export function runBundle(bundle: string, argv: readonly string[], cacheDir = join(ROOT_CACHE_DIR, 'code-cache')): void {
  // ASCII (scripts/build.mjs makes sure): latin1 decodes it to the same string, without UTF-8's checks.
  const source = readFileSync(bundle, 'latin1').replace(/^#!.*/, '');
  const name = process.getuid?.() === 0 ? cacheName(bundle, argv) : null;
  const file = name ? readRootCache(join(cacheDir, name)) : null;
  const generation = file && file.length > 1 ? file[0]! : 0;
  const cachedData = generation > 0 ? file!.subarray(1) : undefined;
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  if (name) {
    const cached = cachedData && !script.cachedDataRejected ? { generation, bytes: cachedData.length } : null;
    // At exit the cache can hold the code of every function this command ran. Older caches of the same command
    // (an earlier build's) go first.
    process.once('exit', () => {
      const update = cacheUpdate(cached, () => script.createCachedData());
      if (update === null) return;
      const prefix = `${name.split('-')[0]}-`;
      try {
        for (const old of readdirSync(cacheDir)) if (old.startsWith(prefix) && old !== name) rmSync(join(cacheDir, old), { force: true });
      } catch {
        // no directory yet
      }
      writeRootCache(cacheDir, name, Buffer.concat([Buffer.of(update.generation), update.data]));
    });
  }
  const module = { exports: {} };
  const wrapper = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  wrapper(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
}
