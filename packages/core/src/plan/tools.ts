/**
 * Tools and the lengths to order: tool specifications ("screw:7.3", "trocar:11G"), needle gauges, and
 * catalogue rounding.
 */
import { UsageError } from '../errors.js';
import { TOOL_KINDS, type ToolKind } from './model.js';
import { MAX_TOOL_DIAMETER_MM } from './clinical.js';

/** Outer diameters (mm) of needle gauges (Stubs / Birmingham wire gauge, ISO 9626 nominal). */
export const GAUGE_OUTER_DIAMETER_MM: Readonly<Record<number, number>> = {
  8: 4.191,
  10: 3.404,
  11: 3.048,
  12: 2.769,
  13: 2.413,
  14: 2.108,
  15: 1.829,
  16: 1.651,
  17: 1.473,
  18: 1.27,
  19: 1.067,
  20: 0.908,
  21: 0.819,
  22: 0.718,
};

export interface ToolSpec {
  kind: ToolKind;
  diameterMm: number;
}

/** Defaults per kind: a 7.3 mm cannulated screw, a 2.8 mm guide pin, 11-gauge trocar and needle. */
export const DEFAULT_TOOLS: Readonly<Record<ToolKind, ToolSpec>> = {
  screw: { kind: 'screw', diameterMm: 7.3 },
  guidepin: { kind: 'guidepin', diameterMm: 2.8 },
  trocar: { kind: 'trocar', diameterMm: GAUGE_OUTER_DIAMETER_MM[11] },
  needle: { kind: 'needle', diameterMm: GAUGE_OUTER_DIAMETER_MM[11] },
};

/** Parse "KIND:SIZE": SIZE in mm ("7.3", "7.3mm") or a gauge ("11G"); "KIND" alone takes its default. */
export function parseToolSpec(spec: string): ToolSpec {
  const m = /^\s*([a-z]+)\s*(?::\s*([0-9]*\.?[0-9]+)\s*(mm|g)?\s*)?$/i.exec(spec);
  if (!m) throw new UsageError(`tool "${spec}" is not KIND:SIZE (e.g. screw:7.3 or trocar:11G)`);
  const kind = m[1].toLowerCase() as ToolKind;
  if (!TOOL_KINDS.includes(kind)) throw new UsageError(`tool kind "${m[1]}" is not one of ${TOOL_KINDS.join(', ')}`);
  if (m[2] === undefined) return { ...DEFAULT_TOOLS[kind] };
  const size = Number(m[2]);
  if (m[3] && m[3].toLowerCase() === 'g') {
    const d = GAUGE_OUTER_DIAMETER_MM[size];
    if (d === undefined)
      throw new UsageError(`unknown needle gauge ${m[2]}G (known: ${Object.keys(GAUGE_OUTER_DIAMETER_MM).join(', ')})`);
    return { kind, diameterMm: d };
  }
  if (!(size > 0 && size <= MAX_TOOL_DIAMETER_MM)) {
    throw new UsageError(`tool diameter ${m[2]} mm is out of range (above 0, at most ${MAX_TOOL_DIAMETER_MM} mm)`);
  }
  return { kind, diameterMm: size };
}

export interface Catalogue {
  /** Lengths on offer, mm, ascending. */
  lengthsMm: number[];
}

/** A catalogue of lengths from minMm to maxMm in stepMm steps (default 20..200 mm in 5 mm steps). */
export function steppedCatalogue(stepMm = 5, minMm = 20, maxMm = 200): Catalogue {
  if (!(stepMm > 0) || !(maxMm >= minMm) || !(minMm > 0))
    throw new UsageError(`bad catalogue ${minMm}..${maxMm} step ${stepMm}`);
  const lengthsMm: number[] = [];
  for (let l = minMm; l <= maxMm + 1e-9; l += stepMm) lengthsMm.push(Math.round(l * 1000) / 1000);
  return { lengthsMm };
}

/**
 * The length to order: the longest catalogue length not longer than the bone-to-bone length (a screw
 * that does not stand out of the far cortex); the shortest on offer when even that is too long.
 */
export function lengthToOrder(boneToBoneMm: number, catalogue: Catalogue = steppedCatalogue()): number {
  const ls = catalogue.lengthsMm;
  if (!ls.length) throw new UsageError('empty catalogue');
  let best = ls[0];
  for (const l of ls) if (l <= boneToBoneMm + 1e-9) best = l;
  return best;
}
