/** The images stage's public API: provision images for runs, and the store operations behind `nsmatrix images`. */
import type { MatrixModel } from '../matrix/types.js';
import type { ImageRequest } from './types.js';

export { provisionImage } from './provision.js';
export { listImages, removeImage, pruneImages, gcImages } from './manage.js';
export { resolveStateDir } from './store.js';
export type { Manifest } from './store.js';

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

/** What a matrix needs of one image: matrix-wide then image packages, whether it boots, setups in order. */
export function imageRequestFor(name: string, model: MatrixModel, arch?: string): ImageRequest {
  const spec = model.images[name] ?? { packages: [] };
  const setups = [model.setup, spec.setup].filter((s): s is string => Boolean(s?.trim()));
  const request: ImageRequest = {
    name,
    spec,
    packages: dedupe([...model.packages, ...spec.packages]),
    boot: model.boot,
  };
  if (arch !== undefined) request.arch = arch;
  if (setups.length) request.setup = setups.join('\n');
  return request;
}
