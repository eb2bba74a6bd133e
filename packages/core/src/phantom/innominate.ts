/**
 * The smooth parts of the innominate bones and the femora, as signed-distance-like functions of a point
 * in the design frame mirrored to the patient's left (ax = side * x, so one description serves both
 * sides). Exists so that the pelvis reads as a pelvis on fluoroscopy: a flaring, curved iliac wing with
 * a thickened crest, the pelvic brim, the supra-acetabular body, an acetabular cup, the pubic and ischial
 * rami around the obturator foramen, the pubic body at the symphysis, and a femur (head seated in the
 * socket, tapered neck, greater trochanter, shaft).
 * The posterior ilium (the block whose flat faces carry the SI joint and the corridor entries) stays in
 * anatomy.ts: nothing here reaches within 4 mm of the corridor axes beyond |x| = 80 mm or medial of the
 * ilium's joint face near the sacrum, so the corridor truth is unchanged (tested in phantom.test.ts).
 * Limits: blends are polynomial smooth minima (distance-like, not exact distances, within about k/4 mm
 * of the surfaces they join); tubes taper linearly; the wing's thickness is measured in the axial plane.
 */
import type { Point3 } from '../math/vec3.js';

export type Box = Float64Array;

function smin(a: number, b: number, k: number): number {
  const h = Math.max(k - Math.abs(a - b), 0) / k;
  return Math.min(a, b) - (h * h * k) / 4;
}

function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

function inBox(b: Box, x: number, y: number, z: number): boolean {
  return x >= b[0] && x <= b[3] && y >= b[1] && y <= b[4] && z >= b[2] && z <= b[5];
}

/** A tube along a polyline whose radius varies linearly along each segment. */
export class Tube {
  readonly pts: Point3[];
  readonly radii: number[];
  readonly box: Box;
  private readonly seg: { a: Point3; d: Point3; dd: number; r0: number; dr: number; box: Box }[] = [];
  constructor(pts: Point3[], radii: number[], margin: number) {
    this.pts = pts;
    this.radii = radii;
    const b = Float64Array.of(Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity);
    for (let i = 0; i < pts.length; i++) {
      for (let c = 0; c < 3; c++) {
        b[c] = Math.min(b[c], pts[i][c] - radii[i] - margin);
        b[c + 3] = Math.max(b[c + 3], pts[i][c] + radii[i] + margin);
      }
    }
    this.box = b;
    for (let i = 0; i + 1 < pts.length; i++) {
      const a = pts[i],
        e = pts[i + 1];
      const d: Point3 = [e[0] - a[0], e[1] - a[1], e[2] - a[2]];
      const g = Math.max(radii[i], radii[i + 1]) + margin;
      const box = Float64Array.of(
        Math.min(a[0], e[0]) - g,
        Math.min(a[1], e[1]) - g,
        Math.min(a[2], e[2]) - g,
        Math.max(a[0], e[0]) + g,
        Math.max(a[1], e[1]) + g,
        Math.max(a[2], e[2]) + g,
      );
      this.seg.push({
        a,
        d,
        dd: d[0] * d[0] + d[1] * d[1] + d[2] * d[2],
        r0: radii[i],
        dr: radii[i + 1] - radii[i],
        box,
      });
    }
  }
  sdf(x: number, y: number, z: number): number {
    let best = 1e9;
    const segs = this.seg;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (!inBox(s.box, x, y, z)) continue; // farther than the margin: it decides nothing
      const wx = x - s.a[0],
        wy = y - s.a[1],
        wz = z - s.a[2];
      let t = (wx * s.d[0] + wy * s.d[1] + wz * s.d[2]) / s.dd;
      if (t < 0) t = 0;
      else if (t > 1) t = 1;
      const ex = wx - t * s.d[0],
        ey = wy - t * s.d[1],
        ez = wz - t * s.d[2];
      const d = Math.sqrt(ex * ex + ey * ey + ez * ez) - (s.r0 + t * s.dr);
      if (d < best) best = d;
    }
    return best;
  }
}

/** Approximate signed distance to an axis-aligned ellipsoid centred at c. */
function ellSdf(x: number, y: number, z: number, c: Point3, r: Point3): number {
  const ux = (x - c[0]) / r[0],
    uy = (y - c[1]) / r[1],
    uz = (z - c[2]) / r[2];
  const vx = ux / r[0],
    vy = uy / r[1],
    vz = uz / r[2];
  const k0 = Math.sqrt(ux * ux + uy * uy + uz * uz);
  const k1 = Math.sqrt(vx * vx + vy * vy + vz * vz);
  return k1 === 0 ? -Math.min(r[0], r[1], r[2]) : (k0 * (k0 - 1)) / k1;
}

function boxUnion(boxes: Box[]): Box {
  const b = Float64Array.of(Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity);
  for (const o of boxes) {
    for (let c = 0; c < 3; c++) {
      b[c] = Math.min(b[c], o[c]);
      b[c + 3] = Math.max(b[c + 3], o[c + 3]);
    }
  }
  return b;
}

// ---- the iliac wing: a curved, flaring plate ------------------------------------------------------------
// In each axial plane the wing's mid-surface is an arc of the ellipse ((x - CX) / A(z))^2 + ((y - CY) / B(z))^2
// = 1, at angle psi (0 = posterior, 90 deg = lateral) from PSI_MIN (inside the posterior block) to PSI_MAX
// (the anterior superior iliac spine). A(z) grows upwards: the wing flares towards the crest.
const CX = -10,
  CY = -45;
const PSI_MIN = (35 * Math.PI) / 180,
  PSI_MAX = (120 * Math.PI) / 180;
const WING_BOTTOM_Z = -52;
/** Largest half-thickness of the wing plate (mm): fossa 1.7 + body 6 + posterior 3.5. */
const WING_MAX_HALF_MM = 11.2;
const wingA = (z: number) => 100 + 0.3 * (z + 45) + 0.004 * (z + 45) ** 2;
const wingB = (z: number) => 70 + 0.2 * (z + 45);
/** Height of the iliac crest's top at psi (radians): highest at the iliac tubercle, lower at PSIS and ASIS. */
function crestZ(psi: number): number {
  const d = (psi * 180) / Math.PI - 62;
  return d < 0 ? 40 - 26 * (d / 27) ** 2 : 40 - 65 * (d / 58) ** 2;
}
/** Mid-surface point of the wing at angle psi and height z (left side). */
function wingPoint(psi: number, z: number): Point3 {
  return [CX + wingA(z) * Math.sin(psi), CY + wingB(z) * Math.cos(psi), z];
}

/** Femoral head centre = acetabular (socket) centre, left side (design frame, mm). */
export const ACETABULUM_CENTER: Point3 = [98, -48, -82];
/** Radius of the acetabular socket and of the femoral head seated in it (2 mm joint space). */
export const SOCKET_RADIUS_MM = 25.5;
export const FEMORAL_HEAD_RADIUS_MM = 23.5;
const CUP_RADIUS_MM = 32;
/** Opening direction of the acetabulum: lateral, inferior, a little anterior (inclination, anteversion). */
const CUP_AXIS: Point3 = (() => {
  const v: Point3 = [0.62, -0.3, -0.72];
  const l = Math.hypot(...v);
  return [v[0] / l, v[1] / l, v[2] / l];
})();

/** The innominate bone minus its posterior block (left side; mirror x for the right). */
export class InnominateParts {
  /** Centre of the acetabular socket (left side). */
  readonly socketCenter: Point3 = ACETABULUM_CENTER;
  readonly wingBox: Box;
  readonly crest: Tube;
  readonly tubes: Tube[];
  readonly pubisC: Point3 = [12, -93, -100];
  readonly pubisR: Point3 = [10, 9, 17];
  readonly pubisBox: Box;
  readonly cupBox: Box;
  /** Bounds of everything here (left side), blend margins included. */
  readonly box: Box;
  /** Set by wingSdf: whether the point is within 10 mm of the plate's thickest extent. */
  private nearPlate = false;

  constructor() {
    const K = 8; // blend width (mm); boxes are grown by it so culling never cuts a blend
    const crestPts: Point3[] = [],
      crestR: number[] = [];
    const n = 12;
    for (let i = 0; i <= n; i++) {
      const psi = PSI_MIN + ((PSI_MAX - PSI_MIN) * i) / n;
      const deg = (psi * 180) / Math.PI;
      const r = 4 + 2.5 * Math.exp(-(((deg - 92) / 14) ** 2)); // the iliac tubercle
      const p = wingPoint(psi, crestZ(psi) - r * 0.6);
      crestPts.push(p);
      crestR.push(r);
    }
    this.crest = new Tube(crestPts, crestR, K);
    const A = ACETABULUM_CENTER;
    const E: Point3 = [78, -72, -76]; // iliopubic eminence
    this.tubes = [
      // Supra-acetabular body: from the posterior block down into the acetabular roof.
      new Tube(
        [
          [68, -5, -38],
          [88, -38, -70],
        ],
        [15, 19],
        K,
      ),
      // Pelvic brim (arcuate line): from the SI joint's anterior end to the iliopubic eminence.
      new Tube([[57, 2, -32], [62, -28, -54], [72, -58, -70], E], [6, 6, 7, 9], K),
      // Superior pubic ramus to the pubic body.
      new Tube([E, [48, -90, -84], [20, -96, -90]], [10, 8, 9], K),
      // Inferior pubic ramus and ischial ramus, to the ischial tuberosity.
      new Tube(
        [
          [14, -88, -112],
          [40, -68, -124],
          [72, -28, -130],
        ],
        [8, 8, 11],
        K,
      ),
      // Ischial body: from behind the acetabulum down to the tuberosity.
      new Tube(
        [
          [A[0] - 2, A[1] + 18, A[2] - 12],
          [80, -16, -126],
        ],
        [16, 14],
        K,
      ),
      // Ischial spine.
      new Tube(
        [
          [80, -16, -96],
          [62, -2, -98],
        ],
        [5, 3.5],
        K,
      ),
    ];
    const pts: Point3[] = [];
    for (let i = 0; i <= 24; i++) {
      const psi = PSI_MIN + ((PSI_MAX - PSI_MIN) * i) / 24;
      pts.push(wingPoint(psi, WING_BOTTOM_Z), wingPoint(psi, crestZ(psi)));
    }
    const wb = Float64Array.of(Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity);
    for (const p of pts) {
      for (let c = 0; c < 3; c++) {
        wb[c] = Math.min(wb[c], p[c] - 10 - K);
        wb[c + 3] = Math.max(wb[c + 3], p[c] + 10 + K);
      }
    }
    this.wingBox = wb;
    const pc = this.pubisC,
      pr = this.pubisR;
    this.pubisBox = Float64Array.of(
      pc[0] - pr[0] - K,
      pc[1] - pr[1] - K,
      pc[2] - pr[2] - K,
      pc[0] + pr[0] + K,
      pc[1] + pr[1] + K,
      pc[2] + pr[2] + K,
    );
    const cr = CUP_RADIUS_MM + K;
    this.cupBox = Float64Array.of(A[0] - cr, A[1] - cr, A[2] - cr, A[0] + cr, A[1] + cr, A[2] + cr);
    this.box = boxUnion([this.wingBox, this.crest.box, this.pubisBox, this.cupBox, ...this.tubes.map((t) => t.box)]);
  }

  /** Wing plate: thin in the iliac fossa, thick towards the body below and the posterior ilium. */
  private wingSdf(x: number, y: number, z: number): number {
    const A = wingA(z),
      B = wingB(z);
    const u = (x - CX) / A,
      v = (y - CY) / B;
    const k0 = Math.sqrt(u * u + v * v);
    const k1 = Math.sqrt((u / A) * (u / A) + (v / B) * (v / B));
    const d2 = (k0 * (k0 - 1)) / k1; // signed distance to the mid-surface in the axial plane
    // Far from the plate (the hot path: most of its box is soft tissue), a lower bound of the value
    // below. Beyond 10 mm it decides no sign and feeds the blends (k <= 8) only where they are nearly
    // nil; the pelvis is still defined by this one function, for the voxels and the truth alike.
    const far = Math.abs(d2) - WING_MAX_HALF_MM;
    this.nearPlate = far <= 10;
    if (!this.nearPlate) return far;
    const psi = Math.atan2(u, v);
    const deg = (psi * 180) / Math.PI;
    const h = 1.7 + 6 * smoothstep(-12, WING_BOTTOM_Z, z) + 3.5 * smoothstep(50, 36, deg); // <= WING_MAX_HALF_MM
    const r = 0.5 * (A + B);
    return Math.max(
      Math.abs(d2) - h,
      z - crestZ(psi),
      (PSI_MIN - psi) * r,
      (psi - PSI_MAX) * r,
      WING_BOTTOM_Z - z,
      56 - x, // never medial of the ilium's joint face
    );
  }

  /** Signed-distance-like value of the innominate (without the posterior block), left side; 1e9 when far. */
  sdf(x: number, y: number, z: number): number {
    if (!inBox(this.box, x, y, z)) return 1e9;
    let d = 1e9;
    if (inBox(this.wingBox, x, y, z)) {
      d = this.wingSdf(x, y, z);
      // The crest runs along the plate's mid-surface: more than 21 mm from it (about 15 mm in 3D), the
      // crest tube (radius <= 6.5 mm) is beyond its blend (k = 6).
      if (this.nearPlate && inBox(this.crest.box, x, y, z)) d = smin(d, this.crest.sdf(x, y, z), 6);
    }
    const tubes = this.tubes;
    for (let i = 0; i < tubes.length; i++) {
      const t = tubes[i];
      if (inBox(t.box, x, y, z)) d = smin(d, t.sdf(x, y, z), 8);
    }
    if (inBox(this.cupBox, x, y, z)) {
      // Acetabular cup: a sphere cut by a plane across its opening; the socket is hollow.
      const A = ACETABULUM_CENTER;
      const ex = x - A[0],
        ey = y - A[1],
        ez = z - A[2];
      const rA = Math.sqrt(ex * ex + ey * ey + ez * ez);
      const open = ex * CUP_AXIS[0] + ey * CUP_AXIS[1] + ez * CUP_AXIS[2] - 8;
      d = Math.max(smin(d, Math.max(rA - CUP_RADIUS_MM, open), 6), SOCKET_RADIUS_MM - rA);
    }
    if (inBox(this.pubisBox, x, y, z)) {
      // Pubic body, stopping 2.5 mm from the midline (the symphysis).
      d = smin(d, Math.max(ellSdf(x, y, z, this.pubisC, this.pubisR), 2.5 - x), 6);
    }
    return d;
  }
}

/** The femur, left side: head seated in the socket, tapered neck, greater trochanter, shaft. */
export class FemurParts {
  /** Centre of the femoral head (left side): seated in the socket, concentric with it. */
  readonly head: Point3 = ACETABULUM_CENTER;
  readonly neck: Tube;
  readonly shaft: Tube;
  readonly trochC: Point3 = [140, -34, -102];
  readonly trochR: Point3 = [13, 17, 22];
  readonly box: Box;
  constructor() {
    const A = ACETABULUM_CENTER;
    const dir: Point3 = [0.8, 0.12, -0.58];
    const l = Math.hypot(...dir);
    const N: Point3 = [A[0] + (42 * dir[0]) / l, A[1] + (42 * dir[1]) / l, A[2] + (42 * dir[2]) / l];
    this.neck = new Tube([A, N], [14, 16.5], 6);
    this.shaft = new Tube(
      [
        [N[0] + 2, N[1], N[2]],
        [150, -42, -260],
      ],
      [15.5, 14],
      6,
    );
    const c = this.trochC,
      r = this.trochR;
    const hr = FEMORAL_HEAD_RADIUS_MM + 1;
    this.box = boxUnion([
      Float64Array.of(A[0] - hr, A[1] - hr, A[2] - hr, A[0] + hr, A[1] + hr, A[2] + hr),
      this.neck.box,
      this.shaft.box,
      Float64Array.of(
        c[0] - r[0] - 6,
        c[1] - r[1] - 6,
        c[2] - r[2] - 6,
        c[0] + r[0] + 6,
        c[1] + r[1] + 6,
        c[2] + r[2] + 6,
      ),
    ]);
  }
  sdf(x: number, y: number, z: number): number {
    if (!inBox(this.box, x, y, z)) return 1e9;
    const A = this.head;
    const ex = x - A[0],
      ey = y - A[1],
      ez = z - A[2];
    let d = Math.sqrt(ex * ex + ey * ey + ez * ez) - FEMORAL_HEAD_RADIUS_MM;
    d = smin(d, this.neck.sdf(x, y, z), 4);
    if (inBox(this.shaft.box, x, y, z)) d = smin(d, this.shaft.sdf(x, y, z), 6);
    d = smin(d, ellSdf(x, y, z, this.trochC, this.trochR), 6);
    return d;
  }
}
