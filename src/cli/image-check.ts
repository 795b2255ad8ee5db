/**
 * Image references checked when a matrix is validated (and before `run` or `list` use it): an unknown suite or a
 * malformed reference is reported like every other problem of the file, `FILE:LINE:COL: message`, exit 2.
 * The matrix stage knows nothing of images; this is where the two meet.
 */
import { InfraError, UsageError } from '../errors.js';
import { parseImageRef } from '../images/ref.js';
import { formatDiagnostics } from '../matrix/diagnostics.js';
import { pathKey, type Diagnostic, type PathSegment } from '../matrix/source-map.js';
import type { Cell, MatrixModel } from '../matrix/types.js';

/** Where an image name was written: its axis value or include entry, else the matrix. */
function placeOf(model: MatrixModel, image: string): PathSegment[] {
  const axis = model.axes.find((a) => a.key === 'image');
  const index = axis?.values.findIndex((v) => String(v) === image) ?? -1;
  if (index >= 0) return ['matrix', 'image', index];
  const entry = model.include.findIndex((e) => e.image === image);
  if (entry >= 0) return ['matrix', 'include', entry, 'image'];
  return ['matrix'];
}

export function checkImageReferences(model: MatrixModel, cells: readonly Cell[]): void {
  const problems: Diagnostic[] = [];
  const named = new Map<string, PathSegment[] | undefined>(cells.map((cell) => [cell.image, undefined]));
  // `shell: image` too: `nsmatrix shell` would otherwise be the first to find its suite unknown.
  if (model.shell?.image !== undefined && !named.has(model.shell.image)) named.set(model.shell.image, ['shell', 'image']);
  for (const [image, place] of named) {
    try {
      parseImageRef(image, model.images[image] ?? {});
    } catch (error) {
      if (!(error instanceof UsageError || error instanceof InfraError)) throw error;
      const path = place ?? placeOf(model, image);
      const positions = model.origin?.positions ?? {};
      let pos = { line: 1, col: 1 };
      for (let length = path.length; length >= 0; length--) {
        const found = positions[pathKey(path.slice(0, length))];
        if (found) {
          pos = found;
          break;
        }
      }
      problems.push({ pos, message: error.message });
    }
  }
  if (problems.length > 0) throw new UsageError(formatDiagnostics(model.origin?.displayFile ?? model.file, problems));
}
