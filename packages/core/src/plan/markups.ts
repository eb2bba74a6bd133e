/**
 * 3D Slicer markups files (.mrk.json, schema markups-schema-v1.0.3): each plan path becomes one
 * markup of type "Line" with two control points, entry then target. Export writes LPS (Slicer's own
 * file default); import reads LPS or RAS (x and y negated) and rejects anything else.
 *
 * Slicer keeps only its own properties, so the tool kind, diameter and path id travel twice: in a
 * `corridor` object on the markup (the schema allows additional properties; read back first) and in
 * the markup's name, "NAME [id, kind, DIAMETER mm]", which survives a save from Slicer.
 */
import type { Point3 } from '../math/vec3.js';
import {
  PLAN_SCHEMA_VERSION,
  PlanError,
  validatePath,
  type Plan,
  type PlanPath,
  type PlanVolumeRef,
  type ToolKind,
} from './model.js';

export const SLICER_MARKUPS_SCHEMA =
  'https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/' +
  'markups-schema-v1.0.3.json#';

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The plan's paths as a Slicer markups document (a JSON object; stringify to write a .mrk.json). */
export function planToSlicerMarkups(plan: Plan): Record<string, unknown> {
  return {
    '@schema': SLICER_MARKUPS_SCHEMA,
    markups: plan.paths.map((p) => ({
      type: 'Line',
      name: `${p.name} [${p.id}, ${p.kind}, ${p.diameterMm} mm]`,
      coordinateSystem: 'LPS',
      coordinateUnits: 'mm',
      locked: false,
      fixedNumberOfControlPoints: false,
      labelFormat: '%N-%d',
      lastUsedControlPointNumber: 2,
      controlPoints: [
        {
          id: '1',
          label: `${p.id}-entry`,
          description: 'entry',
          position: [...p.entry],
          positionStatus: 'defined',
          selected: true,
          locked: false,
          visibility: true,
        },
        {
          id: '2',
          label: `${p.id}-target`,
          description: 'target',
          position: [...p.target],
          positionStatus: 'defined',
          selected: true,
          locked: false,
          visibility: true,
        },
      ],
      measurements: [
        {
          name: 'length',
          enabled: true,
          value: Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]),
          units: 'mm',
          printFormat: '%-#4.4g%s',
        },
      ],
      corridor: { id: p.id, name: p.name, kind: p.kind, diameterMm: p.diameterMm },
    })),
  };
}

const NAME_RE = /^(.*) \[([A-Za-z0-9._-]+), (screw|guidepin|trocar|needle), ([0-9.eE+-]+) mm\]$/;

export interface MarkupsImportDefaults {
  /** Kind for lines that carry none (drawn in Slicer). Default "guidepin". */
  kind?: ToolKind;
  /** Diameter for lines that carry none. Default 2.8 mm (a common guide pin). */
  diameterMm?: number;
  /** The volume the plan refers to. */
  volume?: PlanVolumeRef;
}

/**
 * Read a Slicer markups document (object or text) into a plan: every "Line" markup with two defined
 * control points becomes a path; other markup types are skipped (their names are returned in `skipped`).
 */
export function slicerMarkupsToPlan(
  doc: unknown,
  source = 'markups',
  defaults: MarkupsImportDefaults = {},
): { plan: Plan; skipped: string[] } {
  let obj = doc;
  if (typeof doc === 'string') {
    try {
      obj = JSON.parse(doc);
    } catch (err) {
      throw new PlanError(`not valid JSON: ${(err as Error).message}`, source);
    }
  }
  if (!isObject(obj) || !Array.isArray(obj.markups))
    throw new PlanError('not a Slicer markups file (no "markups" array)', source);
  const schema = obj['@schema'];
  if (schema !== undefined && (typeof schema !== 'string' || !/markups-schema-v1\.\d+\.\d+\.json/.test(schema))) {
    throw new PlanError(`unsupported markups schema ${JSON.stringify(schema)}`, source);
  }
  const paths: PlanPath[] = [];
  const skipped: string[] = [];
  const used = new Set<string>();
  obj.markups.forEach((m, n) => {
    const where = `markups[${n}]`;
    if (!isObject(m)) throw new PlanError(`${where} is not an object`, source);
    const name = typeof m.name === 'string' ? m.name : `line-${n + 1}`;
    if (m.type !== 'Line') {
      skipped.push(`${name} (${String(m.type)})`);
      return;
    }
    const cs = m.coordinateSystem ?? 'LPS';
    if (cs !== 'LPS' && cs !== 'RAS')
      throw new PlanError(`${where}: coordinateSystem ${JSON.stringify(cs)} is neither LPS nor RAS`, source);
    const units = m.coordinateUnits ?? 'mm';
    const unitName: unknown = Array.isArray(units) ? units[0] : units;
    if (unitName !== 'mm' && unitName !== 'um')
      throw new PlanError(`${where}: coordinateUnits ${JSON.stringify(units)} not supported`, source);
    const toMm = unitName === 'um' ? 1e-3 : 1;
    if (!Array.isArray(m.controlPoints)) throw new PlanError(`${where}: controlPoints missing`, source);
    const pts = m.controlPoints.filter(
      (c) => isObject(c) && (c.positionStatus === undefined || c.positionStatus === 'defined'),
    );
    if (pts.length !== 2)
      throw new PlanError(
        `${where} ("${name}"): a line needs exactly two defined control points, found ${pts.length}`,
        source,
      );
    const [entry, target] = pts.map((c, i): Point3 => {
      const p = (c as Record<string, unknown>).position;
      if (!Array.isArray(p) || p.length !== 3 || !p.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        throw new PlanError(`${where} ("${name}"): control point ${i + 1} has no valid position`, source);
      }
      const s = cs === 'RAS' ? [-toMm, -toMm, toMm] : [toMm, toMm, toMm];
      return [p[0] * s[0], p[1] * s[1], p[2] * s[2]];
    });
    // Our own properties first, then what the name encodes, then the defaults.
    const c = isObject(m.corridor) ? m.corridor : {};
    const parsed = NAME_RE.exec(name);
    let id =
      typeof c.id === 'string'
        ? c.id
        : parsed
          ? parsed[2]
          : name
              .replace(/[^A-Za-z0-9._-]+/g, '-')
              .replace(/^-+|-+$/g, '')
              .slice(0, 64) || `line-${n + 1}`;
    if (used.has(id)) id = `${id}-${n + 1}`;
    used.add(id);
    const path = validatePath(
      {
        id,
        name: typeof c.name === 'string' ? c.name : parsed ? parsed[1] : name,
        kind: typeof c.kind === 'string' ? c.kind : parsed ? parsed[3] : (defaults.kind ?? 'guidepin'),
        diameterMm:
          typeof c.diameterMm === 'number' ? c.diameterMm : parsed ? Number(parsed[4]) : (defaults.diameterMm ?? 2.8),
        entry,
        target,
      },
      where,
      source,
    );
    paths.push(path);
  });
  return { plan: { schemaVersion: PLAN_SCHEMA_VERSION, volume: { ...(defaults.volume ?? {}) }, paths }, skipped };
}
