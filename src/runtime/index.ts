/** The runtime stage: one ephemeral systemd-nspawn container per cell. */
export { openContainer, createRunScratch, gcRuntime } from './container.js';
export { validateBinds, parseBind } from './binds.js';
export { buildNspawnArgs, type NspawnPlan } from './args.js';
export { chooseStrategy, pickStrategy, STRATEGIES } from './strategy.js';
export type { Container, ContainerOptions, EphemeralStrategy, ExecRequest, ExecResult, HostInfo } from './types.js';
