#!/usr/bin/env node
/**
 * `npm run build`: bundles the CLI with esbuild. dist/src/cli/main.js (the path package.json's bin, the wrapper
 * scripts/setup-host.sh installs and the tests run) is a small loader (src/cli/bin.ts) that runs
 * dist/src/cli/nsmatrix.cjs, main.ts and everything it loads, through V8's code cache (src/lib/code-cache.ts).
 * Resolving and compiling some 350 separate modules (execa, zod, yargs and their dependencies) took node longer
 * than running a trivial container. Type checking is `npm run lint`'s (tsc --noEmit): esbuild only strips types.
 */
import { build } from 'esbuild';
import { chmodSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * yargs and its help renderer (cliui) import string-width, whose module body builds an Intl.Segmenter and
 * Unicode-property regular expressions: some 30 ms on every command, though only help text measures widths. Each
 * import of it gets a stand-in that loads the real module (the same version the importer would get) on its first
 * call: esbuild turns that require() of a bundled ES module into a deferred initialisation.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData?.real) return undefined;
      const real = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: { real: true } });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      contents: `let real;\nexport default function stringWidth(string, options) {\n  real ??= require(${JSON.stringify(args.path)}).default;\n  return real(string, options);\n}\n`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};
/**
 * execa's IPC input (unused here: nsmatrix never gives a process an IPC channel) imports node:v8 at its top level,
 * and loading node:v8 costs some 3 ms of every command; execa's import of it gets a stand-in that loads node:v8 on
 * its first call.
 */
const lazyV8ForExeca = {
  name: 'lazy-v8-for-execa',
  setup(b) {
    b.onResolve({ filter: /^node:v8$/ }, (args) => (/[\\/]node_modules[\\/]execa[\\/]/.test(args.importer) ? { path: 'node:v8', namespace: 'lazy-v8' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-v8' }, () => ({
      contents: `export function serialize(value) {\n  return require('node:v8').serialize(value);\n}\n`,
      loader: 'js',
    }));
  },
};
const outdir = join(repo, 'dist', 'src', 'cli');
// Whitespace, comments and redundant syntax go (names stay, for stack traces; the source maps lead back): less to
// read and decode on every start. esbuild escapes every other character in strings, so the bundle is ASCII, which
// the loader reads as latin1 (checked below).
const common = { absWorkingDir: repo, bundle: true, platform: 'node', target: 'node20', sourcemap: 'linked', legalComments: 'none', logLevel: 'warning', metafile: true, minifyWhitespace: true, minifySyntax: true, charset: 'ascii' };
// Both outputs are CommonJS; the one import.meta.url of the sources (lib/version.ts) is spelled as CommonJS has it.
const cjs = {
  format: 'cjs',
  define: { 'import.meta.url': '__nsmatrixModuleUrl' },
  banner: { js: "var __nsmatrixModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
};
// The CLI and everything it loads, as one CommonJS file: what V8's code cache can keep (node 20 has no cache for
// ES modules). Lazily imported commands stay lazy: esbuild runs a module's body on its first import().
const bundle = await build({
  ...common,
  ...cjs,
  entryPoints: ['src/cli/main.ts'],
  outfile: join(outdir, 'nsmatrix.cjs'),
  plugins: [lazyStringWidth, lazyV8ForExeca],
});
// The executable: loads that bundle with the code cache (src/cli/bin.ts). CommonJS too, which node starts some 4 ms
// sooner than an ES module (no module loader to set up): dist/src/cli/package.json says so for main.js.
const loader = await build({ ...common, ...cjs, entryPoints: ['src/cli/bin.ts'], outfile: join(outdir, 'main.js') });
const packageJson = join(outdir, 'package.json');
writeFileSync(packageJson, `${JSON.stringify({ type: 'commonjs', private: true })}\n`);
if (/[^\x00-\x7f]/.test(readFileSync(join(outdir, 'nsmatrix.cjs'), 'latin1'))) throw new Error('build: dist/src/cli/nsmatrix.cjs is not ASCII, and src/lib/code-cache.ts reads it as latin1');
chmodSync(join(outdir, 'main.js'), 0o755);

// Then whatever an earlier build left (older chunks, tsc's per-module output): removed after the new files are
// in place, not before, so that a CLI started from this tree meanwhile still finds the files it loads.
const written = new Set([...[bundle, loader].flatMap((r) => Object.keys(r.metafile.outputs)).map((file) => resolve(repo, file)), packageJson]);
for (const entry of readdirSync(join(repo, 'dist'), { recursive: true, withFileTypes: true })) {
  const path = join(entry.parentPath, entry.name);
  if (entry.isFile() && !written.has(path)) rmSync(path, { force: true });
}
const dirs = readdirSync(join(repo, 'dist'), { recursive: true, withFileTypes: true }).filter((e) => e.isDirectory());
for (const path of dirs.map((e) => join(e.parentPath, e.name)).sort((a, b) => b.length - a.length)) {
  if (readdirSync(path).length === 0) rmdirSync(path);
}
