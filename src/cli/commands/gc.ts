/** `nsmatrix gc`: repairs what crashed or killed runs left behind. Safe while other runs are active. */
import { gcCaches } from '../../caches/paths.js';
import { gcImages } from '../../images/index.js';
import { gcRuntime } from '../../runtime/index.js';
import { usableStateDir } from './images.js';

export default async function gc(args: { stateDir?: string }): Promise<number> {
  // A foreign directory is refused before anything in it is looked at, let alone removed.
  const stateDir = usableStateDir(args.stateDir, { create: true });
  const removed = [...(await gcRuntime(stateDir)), ...(await gcImages(stateDir)), ...(await gcCaches(stateDir))];
  for (const path of removed) process.stdout.write(`removed ${path}\n`);
  process.stdout.write(removed.length === 0 ? `nothing to clean in ${stateDir}\n` : `cleaned ${removed.length} leftover(s) in ${stateDir}\n`);
  return 0;
}
