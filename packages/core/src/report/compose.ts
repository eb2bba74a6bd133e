/**
 * The one way to make a procedure report's model and key images from what is loaded, called alike by
 * node's makeReport (`corridor report`, POST /api/report) and by the workstation's case worker (which
 * has the volumes the server never sees): `reportModel` adds the C-arm views of each path to
 * buildProcedureReport; `reportKeyImages` chooses and draws the key images (the plan on the CBCT, the
 * overlay on fluoroscopy, the cement against the foramina) and says what it could not show.
 */
import type { Point3 } from '../math/vec3.js';
import type { Volume } from '../volume/volume.js';
import type { CarmGeometry, CarmSystem } from '../carm/geometry.js';
import type { PelvicViews } from '../carm/pelvic-views.js';
import { pathViews } from '../carm/views.js';
import { buildProcedureReport, type ProcedureReport, type ReportInput } from './model.js';
import { cementSliceImage, drrOverlayImage, fluoroOverlayImage, planSliceImage, type KeyImage } from './images.js';

export interface ReportModelInput extends Omit<ReportInput, 'views'> {
  system: CarmSystem;
  /** The pelvic inlet and outlet (core's pelvicViews) when known. */
  pelvic?: PelvicViews | null;
}

/** buildProcedureReport with each path's bull's-eye and progress views for `system` (core's pathViews). */
export function reportModel(input: ReportModelInput): ProcedureReport {
  const { system, pelvic, ...rest } = input;
  return buildProcedureReport({
    ...rest,
    views: {
      carm: system.id,
      carmName: system.name,
      paths: input.plan.paths.map((p) => pathViews(p, system)),
      pelvic: pelvic ?? null,
    },
  });
}

/** A fluoroscopy frame to show the plan on: a loaded XA/RF frame or the virtual one shown. */
export interface ReportFluoroFrame {
  /** Grey levels 0..255, row-major, row 0 at the top, geometry.columns x geometry.rows. */
  gray: ArrayLike<number>;
  geometry: CarmGeometry;
  /** 'XA frame name.dcm', 'virtual fluoroscopy'. */
  label: string;
  /** The motion correction applied to the overlay (planned LPS -> the patient now, 4 x 4 rows). */
  planningToCurrent?: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;
  /** The frame's geometry was partly assumed (a dashed border, said in the caption). */
  unverified?: boolean;
}

export interface KeyImageSources {
  system: CarmSystem;
  pelvic?: PelvicViews | null;
  /** The planning image: plan slices and the DRRs when no verification scan is given. */
  ct?: Volume;
  /** The verification scan in the plan's frame (the placed instruments show in the slices and DRRs). */
  verificationScan?: Volume;
  /** The latest cement scan, and labels (any grid, same patient frame) whose critical labels are outlined. */
  cementScan?: Volume;
  labels?: Volume;
  criticalLabels?: readonly number[];
  /** Fluoroscopy frames used in the procedure, each with the plan over it. */
  fluoroscopy?: readonly ReportFluoroFrame[];
  /** Pixel size of the slices and DRRs (default 320 for slices, 384 for DRRs). */
  sizePx?: number;
}

function centerOf(report: ProcedureReport): Point3 {
  const s: Point3 = [0, 0, 0];
  const n = report.paths.length;
  for (const p of report.paths) for (let i = 0; i < 3; i++) s[i] += (p.entry[i] + p.target[i]) / (2 * n);
  return s;
}

/**
 * The report's key images, in order: each path on a slice along it (the verification scan when given, the
 * placed instrument drawn), the plan over DRRs at the inlet and outlet (else AP at the plan's centre), the
 * plan over each fluoroscopy frame given, and the latest cement scan against the nearest foramen (else the
 * nearest critical structure). `notes` says what could not be shown and why.
 */
export function reportKeyImages(
  report: ProcedureReport,
  src: KeyImageSources,
): { images: KeyImage[]; notes: string[] } {
  const images: KeyImage[] = [];
  const notes: string[] = [];
  const size = src.sizePx;
  const sized = size ? { sizePx: size } : {};
  const volume = src.verificationScan ?? src.ct;
  if (volume) {
    const label = src.verificationScan ? 'verification CBCT' : 'planning CT';
    for (const p of report.paths) {
      const a = p.achieved;
      images.push(
        planSliceImage(volume, p, {
          label,
          ...sized,
          ...(a?.outerEnd && a.tip ? { achieved: { outerEnd: a.outerEnd, tip: a.tip } } : {}),
        }),
      );
    }
    const pelvic = src.pelvic;
    const poses = pelvic
      ? [
          { ...pelvic.inlet, label: 'inlet' },
          { ...pelvic.outlet, label: 'outlet' },
        ]
      : [{ primaryDeg: 0, secondaryDeg: 0, isocenter: centerOf(report), label: 'AP' }];
    for (const pose of poses) images.push(drrOverlayImage(volume, report.paths, src.system, pose, sized));
  } else notes.push('no planning image or verification scan given: no slices of the plan and no DRR');
  (src.fluoroscopy ?? []).forEach((f, i) => {
    const corrected = !!f.planningToCurrent;
    images.push(
      fluoroOverlayImage(f, report.paths, {
        id: `fluoro-${i + 1}`,
        title: `${f.label}${corrected ? ' (motion corrected)' : ''}`,
        caption:
          `Planned paths projected on ${f.label}` +
          (corrected ? ', moved by the motion correction (the uncorrected plan in grey)' : '') +
          (f.unverified ? '; the frame geometry is partly assumed (dashed border)' : '') +
          '.',
        ...(f.planningToCurrent ? { planningToCurrent: f.planningToCurrent } : {}),
        ...(f.unverified ? { unverified: true } : {}),
      }),
    );
  });
  const last = report.cement?.scans[report.cement.scans.length - 1];
  if (last && src.cementScan) {
    const near = [...last.nearest]
      .filter((n) => n.distanceMm !== null && n.cementAt && n.at)
      .sort(
        (a, b) =>
          (a.structure === 'foramen' ? 0 : 1) - (b.structure === 'foramen' ? 0 : 1) ||
          (a.distanceMm ?? 0) - (b.distanceMm ?? 0),
      )[0];
    if (near?.cementAt && near.at)
      images.push(
        cementSliceImage(
          src.cementScan,
          { name: near.name, distanceMm: near.distanceMm, cementAt: near.cementAt, at: near.at },
          {
            ...sized,
            ...(src.labels ? { labels: src.labels, criticalLabels: src.criticalLabels ?? [] } : {}),
            scanLabel: `cement scan ${last.index + 1}`,
          },
        ),
      );
    else notes.push('the cement report has no cement front near a critical structure: no cement image');
  } else if (last) notes.push('no cement scan given: no image of the cement');
  return { images, notes };
}
