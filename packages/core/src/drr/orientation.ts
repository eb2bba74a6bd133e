/**
 * Orientation markers of a projection image: which patient direction each image edge faces, from the
 * C-arm geometry (`carmFrame`'s detector axes u, increasing column, and v, increasing row, in LPS).
 *
 * The image is shown with column 0 at the left and row 0 at the top, so its right edge faces +u and its
 * bottom edge +v. A patient direction's letter: L (+x), R (-x), P (+y), A (-y), H (+z, head), F (-z).
 * AP view (0, 0): u = +x and v = -z, so the patient's left is on the image's right, the head at the top
 * (the radiological convention: as if facing the patient).
 */
import { carmFrame, type CarmGeometry } from '../carm/geometry.js';

export type PatientLetter = 'L' | 'R' | 'A' | 'P' | 'H' | 'F';
export type ImageEdge = 'left' | 'right' | 'top' | 'bottom';

export interface OrientationMarkers {
  /** The dominant patient direction each edge faces (DICOM Patient Orientation letters, first only). */
  edges: Record<ImageEdge, PatientLetter>;
  /**
   * Where the patient's left and right lie in the image: the edge facing L and the one facing R, or null
   * when the left-right axis runs within about 12 degrees of the beam (a lateral view: no side to mark).
   */
  side: { left: ImageEdge; right: ImageEdge } | null;
}

/** The letter of the dominant component of a direction (LPS). */
export function patientLetter(d: ArrayLike<number>): PatientLetter {
  const ax = Math.abs(d[0]),
    ay = Math.abs(d[1]),
    az = Math.abs(d[2]);
  if (ax >= ay && ax >= az) return d[0] >= 0 ? 'L' : 'R';
  if (ay >= az) return d[1] >= 0 ? 'P' : 'A';
  return d[2] >= 0 ? 'H' : 'F';
}

export function orientationMarkers(g: CarmGeometry): OrientationMarkers {
  const { u, v } = carmFrame(g);
  const neg = (a: readonly number[]) => [-a[0], -a[1], -a[2]];
  const edges: Record<ImageEdge, PatientLetter> = {
    right: patientLetter(u),
    left: patientLetter(neg(u)),
    bottom: patientLetter(v),
    top: patientLetter(neg(v)),
  };
  // The patient's left (+x) in the image plane: (u.x, v.x), image right and down.
  const cu = u[0],
    cv = v[0];
  let side: OrientationMarkers['side'] = null;
  if (Math.hypot(cu, cv) >= 0.2) {
    const left: ImageEdge = Math.abs(cu) >= Math.abs(cv) ? (cu > 0 ? 'right' : 'left') : cv > 0 ? 'bottom' : 'top';
    const opposite: Record<ImageEdge, ImageEdge> = { left: 'right', right: 'left', top: 'bottom', bottom: 'top' };
    side = { left, right: opposite[left] };
  }
  return { edges, side };
}

/** The primary and secondary angles as a C-arm shows them, e.g. "LAO 20° CRAN 35°". */
export function anglesLabel(primaryDeg: number, secondaryDeg: number): string {
  const f = (x: number) => (Math.round(Math.abs(x) * 10) / 10).toString();
  return `${primaryDeg >= 0 ? 'LAO' : 'RAO'} ${f(primaryDeg)}° ${secondaryDeg >= 0 ? 'CRAN' : 'CAUD'} ${f(secondaryDeg)}°`;
}
