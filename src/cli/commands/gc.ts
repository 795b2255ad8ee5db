/** `nsmatrix gc`: repairs what crashed or killed runs left behind. Safe while other runs are active. */
import { gcImages, resolveStateDir } from '../../images/index.js';
import { gcRuntime } from '../../runtime/index.js';

export default async function gc(args: { stateDir?: string }): Promise<number> {
  const stateDir = resolveStateDir(args.stateDir);
  const removed = [...(await gcRuntime(stateDir)), ...(await gcImages(stateDir))];
  for (const path of removed) process.stdout.write(`removed ${path}\n`);
  process.stdout.write(removed.length === 0 ? `nothing to clean in ${stateDir}\n` : `cleaned ${removed.length} leftover(s) in ${stateDir}\n`);
  return 0;
}
