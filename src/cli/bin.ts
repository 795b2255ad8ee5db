#!/usr/bin/env node
/**
 * The nsmatrix executable (dist/src/cli/main.js once built): runs the CLI's bundle (main.ts and everything it
 * loads, dist/src/cli/nsmatrix.cjs) with V8's code cache; see lib/code-cache.ts and scripts/build.mjs.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBundle } from '../lib/code-cache.js';
import { isVersionRequest, toolVersion } from '../lib/version.js';

const argv = process.argv.slice(2);
if (isVersionRequest(argv)) process.stdout.write(`${toolVersion()}\n`);
else runBundle(join(dirname(fileURLToPath(import.meta.url)), 'nsmatrix.cjs'), argv);
