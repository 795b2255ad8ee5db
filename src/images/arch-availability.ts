/**
 * Release × architecture: a cell whose Debian/Ubuntu suite the mirror does not publish for its architecture (riscv64
 * before trixie) is the file's problem, reported at `validate` like every other one (`FILE:LINE:COL: message`, exit
 * 2). Read from the mirror's Release file (suites.ts caches it); a mirror that cannot be asked is not reported.
 */
import { UsageError } from '../errors.js';
import { hostArch } from '../lib/arch.js';
import { formatDiagnostics } from '../matrix/diagnostics.js';
import { pathKey, type Diagnostic, type PathSegment } from '../matrix/source-map.js';
import type { Cell, MatrixModel } from '../matrix/types.js';
import { chooseMirrors } from './builders/bootstrap.js';
import { parseImageRef } from './ref.js';
import { publishedArchitectures, resolveSuite } from './suites.js';

/** Where the cell's architecture was written: its axis value or include entry, else its image. */
function placeOf(model: MatrixModel, cell: Cell): PathSegment[] {
  const axis = model.axes.find((a) => a.key === 'arch');
  const index = axis?.values.findIndex((v) => v === cell.arch) ?? -1;
  if (index >= 0) return ['matrix', 'arch', index];
  const entry = model.include.findIndex((e) => e.arch === cell.arch);
  if (entry >= 0) return ['matrix', 'include', entry, 'arch'];
  const image = model.axes.find((a) => a.key === 'image')?.values.findIndex((v) => v === cell.image) ?? -1;
  return image >= 0 ? ['matrix', 'image', image] : ['matrix'];
}

function positionOf(model: MatrixModel, path: PathSegment[]): Diagnostic['pos'] {
  const positions = model.origin?.positions ?? {};
  for (let length = path.length; length >= 0; length--) {
    const found = positions[pathKey(path.slice(0, length))];
    if (found) return found;
  }
  return { line: 1, col: 1 };
}

/** Throws a UsageError naming every cell whose suite the mirror does not publish for the cell's architecture. */
export async function checkArchAvailability(model: MatrixModel, cells: readonly Cell[], stateDir?: string): Promise<void> {
  const problems: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const cell of cells) {
    const arch = cell.arch ?? hostArch();
    if (seen.has(`${cell.image}\0${arch}`)) continue;
    seen.add(`${cell.image}\0${arch}`);
    let source;
    try {
      source = parseImageRef(cell.image, model.images[cell.image] ?? {});
    } catch {
      continue; // reported by the image check
    }
    if (source.kind !== 'bootstrap') continue;
    let mirror: string;
    try {
      mirror = chooseMirrors(source.distro, source.mirror, arch).mirror;
    } catch {
      continue; // no mirror known: the build says so
    }
    const suite = await resolveSuite(source.distro, source.suite, mirror);
    const published = await publishedArchitectures(mirror, suite, stateDir);
    if (!published || published.includes(arch)) continue;
    problems.push({
      pos: positionOf(model, placeOf(model, cell)),
      message: `${cell.image} is not published for ${arch} by ${mirror} (its Release file lists ${published.filter((a) => a !== 'all').join(', ')})`,
    });
  }
  if (problems.length > 0) throw new UsageError(formatDiagnostics(model.origin?.displayFile ?? model.file, problems));
}
