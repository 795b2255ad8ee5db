/**
 * `nsmatrix gc`: repairs what crashed or killed runs left behind. Safe while other runs are active. Sandboxes kept
 * by `nsmatrix shell --keep` are listed, never removed (`nsmatrix shell --rm NAME` does that); so are the homes of
 * shells whose project directory is gone.
 */
import { existsSync } from 'node:fs';
import { gcCaches } from '../../caches/paths.js';
import { gcImages } from '../../images/index.js';
import { formatDuration } from '../../lib/duration.js';
import { gcRuntime } from '../../runtime/index.js';
import { gcShellState, listHomes, listSandboxes } from '../../shell/state.js';
import { formatBytes, usableStateDir } from './images.js';

export default async function gc(args: { stateDir?: string }): Promise<number> {
  // A foreign directory is refused before anything in it is looked at, let alone removed.
  const stateDir = usableStateDir(args.stateDir, { create: true });
  const removed = [...(await gcRuntime(stateDir)), ...(await gcImages(stateDir)), ...(await gcCaches(stateDir)), ...(await gcShellState(stateDir))];
  for (const path of removed) process.stdout.write(`removed ${path}\n`);
  process.stdout.write(removed.length === 0 ? `nothing to clean in ${stateDir}\n` : `cleaned ${removed.length} leftover(s) in ${stateDir}\n`);
  const now = Date.now();
  for (const { name, meta, bytes } of await listSandboxes(stateDir)) {
    const used = meta ? `, last used ${formatDuration(Math.max(0, now - Date.parse(meta.lastUsed)))} ago` : '';
    process.stdout.write(`kept sandbox ${name} (${meta?.image ?? 'unknown image'}, ${formatBytes(bytes)}${used}): not removed (nsmatrix shell --rm ${name} removes it)\n`);
  }
  // Homes of projects whose directory is gone: listed too (a project on an unmounted disk is not gone for good).
  for (const home of await listHomes(stateDir)) {
    if (home.project === undefined || existsSync(home.project)) continue;
    process.stdout.write(`shell home ${home.id} of ${home.project} (gone; uid ${home.uid ?? '?'}, ${formatBytes(home.bytes)}): not removed (nsmatrix shell --rm-home ${home.id} removes it)\n`);
  }
  return 0;
}
