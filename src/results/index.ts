/** Per-test results: parsing result files (pure) and the script that gathers them inside a cell. */
export * from './types.js';
export { detectFormat, parseResultFile } from './parse.js';
export { DEFAULT_GATHER_LIMITS, GatherSink, gatherScript, readGathered, type GatherLimits, type Gathered, type GatheredFile } from './gather.js';
export { collectTests, isFailedTest, markFlakyTests, testKey, type AttemptTests } from './collect.js';
