#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS NSMATRIX_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node
/**
 * The nsmatrix executable (dist/src/cli/main.js once built): runs the CLI's bundle (main.ts and everything it
 * loads, dist/src/cli/nsmatrix.cjs) with V8's code cache; see lib/code-cache.ts and scripts/build.mjs.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBundle } from '../lib/code-cache.js';
import { isVersionRequest, toolVersion } from '../lib/version.js';

// Node parses every certificate NODE_EXTRA_CA_CERTS names before the first line of JavaScript runs (~40 ms for a
// system bundle of some 140 on a 2-core host, on every command), and nsmatrix needs them only for its own https
// downloads, which add them per request (lib/download.ts). So the #! line above (`env -S`: GNU coreutils 8.30 or
// later, older than any host node 20 runs on) and the wrapper scripts/setup-host.sh installs start node without the
// variable, passing its value on under another name; it goes back here, before anything runs, for lib/download.ts
// and for every process nsmatrix starts.
const deferredCaCerts = process.env.NSMATRIX_EXTRA_CA_CERTS;
if (deferredCaCerts !== undefined) {
  delete process.env.NSMATRIX_EXTRA_CA_CERTS;
  if (deferredCaCerts !== '') process.env.NODE_EXTRA_CA_CERTS = deferredCaCerts;
}

const argv = process.argv.slice(2);
if (isVersionRequest(argv)) process.stdout.write(`${toolVersion()}\n`);
else runBundle(join(dirname(fileURLToPath(import.meta.url)), 'nsmatrix.cjs'), argv);
