/** The matrix stage: matrix file -> validated model -> cells -> the cells a run selects. */
export { findMatrixFile, loadMatrix, parseMatrix, DEFAULT_MATRIX_FILES } from './load.js';
export { expandMatrix, expandCombinations, cellEnvironment, cellLabel, DEFAULT_MAX_CELLS } from './expand.js';
export type { Combination } from './expand.js';
export { selectCells, parseShard, parseFilters, CELL_ID_KEY } from './select.js';
export type { Shard } from './select.js';
export { matrixEnvName } from './check.js';
export { cellIds, slugify, ID_MAX } from './cell-id.js';
export { interpolate } from './expressions.js';
export type * from './types.js';
