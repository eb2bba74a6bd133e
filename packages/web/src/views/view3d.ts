/**
 * 3D view: the bone surface of the CT (first sample at or above the bone threshold along each ray,
 * shaded by the CT gradient) with the plan's paths, orthographic, rotated by dragging. Rendered on the
 * CPU from a copy resampled by core to at most ~128 voxels across, so it stays interactive without a GPU.
 */
import {
  resampleToSpacing,
  sampleIndexTrilinear,
  smoothBinomial,
  withData,
  type Point3,
  type Volume,
} from '@corridor/core';
import type { Store } from '../store.js';
import { volumeCenter } from '../geometry.js';
import { context2d } from '../dom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const BONE_HU = 250;

export class View3d {
  readonly root: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private svg: SVGSVGElement;
  private small: Volume | null = null;
  /** Rotation: azimuth about the patient's z axis and elevation, degrees; zoom in mm per pixel. */
  private azDeg = 30;
  private elDeg = 15;
  private mmPerPx = 1;
  private center: Point3 = [0, 0, 0];
  private raf = 0;
  private drag: { x: number; y: number; az: number; el: number } | null = null;
  lastRenderMs = 0;
  /** Depth (mm along the ray from its start) of the surface hit at each pixel of the last full render; NaN = none. */
  hitDepthMm: Float32Array = new Float32Array(0);
  /** The ray step of the last render, mm (the resampled copy's voxel). */
  get rayStepMm(): number {
    return this.small ? Math.min(...this.small.spacing) : NaN;
  }

  constructor(private store: Store) {
    this.root = document.createElement('div');
    this.root.className = 'view view3d';
    this.root.dataset.view = '3d';
    this.canvas = document.createElement('canvas');
    this.svg = document.createElementNS(SVG_NS, 'svg');
    this.svg.classList.add('overlay');
    const title = document.createElement('div');
    title.className = 'view-title';
    title.textContent = '3D (bone)';
    const info = document.createElement('div');
    info.className = 'view-info';
    info.textContent = 'drag: rotate · wheel: zoom';
    this.root.append(this.canvas, this.svg, title, info);
    this.ctx = context2d(this.canvas);
    store.on(['volume'], () => {
      this.small = null;
      // After the slice views have drawn their first image.
      setTimeout(() => this.prepare(), 50);
    });
    store.on(['plan', 'selection', 'procedure'], () => this.invalidate());
    new ResizeObserver(() => this.invalidate()).observe(this.root);
    this.bind();
  }

  private prepare() {
    const v = this.store.volume;
    if (!v) return;
    const extent = v.dims.map((d, a) => d * v.spacing[a]);
    const s = Math.max(Math.max(...extent) / 128, ...v.spacing);
    const small = resampleToSpacing(v, [s, s, s], { interpolation: 'linear' });
    // One binomial pass ([1 2 1] / 4 along each axis): the normals of a surface thresholded in a nearly
    // binary image otherwise follow the voxel grid and the shading shows it as a moiré of stripes.
    this.small = withData(small, smoothBinomial(small.data, small.dims, 1));
    this.center = volumeCenter(v);
    this.mmPerPx = (Math.max(...extent) / Math.max(64, Math.min(this.root.clientWidth, this.root.clientHeight))) * 1.1;
    this.invalidate();
  }

  invalidate(): void {
    if (!this.raf)
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        this.render(this.drag ? 2 : 1);
      });
  }

  /** Camera axes: right (u), down (v), view direction (w, away from the viewer), LPS. */
  private axes(): { u: Point3; v: Point3; w: Point3 } {
    const az = (this.azDeg * Math.PI) / 180,
      el = (this.elDeg * Math.PI) / 180;
    // At az = el = 0 the viewer looks from the front (anterior) at the patient: w = +y (posterior).
    const w: Point3 = [Math.sin(az) * Math.cos(el), Math.cos(az) * Math.cos(el), -Math.sin(el)];
    const u: Point3 = [Math.cos(az), -Math.sin(az), 0];
    const v: Point3 = [w[1] * u[2] - w[2] * u[1], w[2] * u[0] - w[0] * u[2], w[0] * u[1] - w[1] * u[0]];
    return { u, v, w };
  }

  private render(step: number) {
    const vol = this.small;
    const W = Math.max(1, this.root.clientWidth),
      H = Math.max(1, this.root.clientHeight);
    this.canvas.width = W;
    this.canvas.height = H;
    this.svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    this.svg.replaceChildren();
    if (!vol) return;
    const t0 = performance.now();
    const { u, v, w } = this.axes();
    const m = vol.patientToIndex;
    const lin = (r: number, q: ArrayLike<number>) => m[r * 4] * q[0] + m[r * 4 + 1] * q[1] + m[r * 4 + 2] * q[2];
    const dI = [lin(0, w), lin(1, w), lin(2, w)];
    const sp = Math.min(...vol.spacing);
    const depth = Math.hypot(...vol.dims.map((d, a) => d * vol.spacing[a]));
    const nSteps = Math.ceil(depth / sp);
    const img = this.ctx.createImageData(W, H);
    const depthMm = new Float32Array(step === 1 ? W * H : 0).fill(NaN);
    const px = img.data;
    const light = [-0.3 * u[0] - 0.5 * v[0] - w[0], -0.3 * u[1] - 0.5 * v[1] - w[1], -0.3 * u[2] - 0.5 * v[2] - w[2]];
    const ln = Math.hypot(light[0], light[1], light[2]);
    for (let y = 0; y < H; y += step) {
      for (let x = 0; x < W; x += step) {
        const a = (x - W / 2) * this.mmPerPx,
          b = (y - H / 2) * this.mmPerPx;
        const p0 = [
          this.center[0] + a * u[0] + b * v[0] - (depth / 2) * w[0],
          this.center[1] + a * u[1] + b * v[1] - (depth / 2) * w[1],
          this.center[2] + a * u[2] + b * v[2] - (depth / 2) * w[2],
        ];
        let fi = lin(0, p0) + m[3],
          fj = lin(1, p0) + m[7],
          fk = lin(2, p0) + m[11];
        let g = 0;
        let prev = -1000;
        let hitMm = NaN;
        for (let s = 0; s < nSteps; s++, fi += dI[0] * sp, fj += dI[1] * sp, fk += dI[2] * sp) {
          const val = sampleIndexTrilinear(vol, fi, fj, fk, -1000);
          if (val < BONE_HU) {
            prev = val;
            continue;
          }
          // The threshold crossing between this sample and the one before (linear in between): without it
          // the surface snaps to the sample planes, which all rays share, and shows as stripes.
          const back = s > 0 && val > prev ? ((val - BONE_HU) / (val - prev)) * sp : 0;
          fi -= dI[0] * back;
          fj -= dI[1] * back;
          fk -= dI[2] * back;
          hitMm = s * sp - back;
          // Gradient (central differences in index space; the grid is isotropic).
          const gx =
            sampleIndexTrilinear(vol, fi + 1, fj, fk, -1000) - sampleIndexTrilinear(vol, fi - 1, fj, fk, -1000);
          const gy =
            sampleIndexTrilinear(vol, fi, fj + 1, fk, -1000) - sampleIndexTrilinear(vol, fi, fj - 1, fk, -1000);
          const gz =
            sampleIndexTrilinear(vol, fi, fj, fk + 1, -1000) - sampleIndexTrilinear(vol, fi, fj, fk - 1, -1000);
          // Index-space gradient to patient space: the rows of patientToIndex.
          const nx = m[0] * gx + m[4] * gy + m[8] * gz,
            ny = m[1] * gx + m[5] * gy + m[9] * gz,
            nz = m[2] * gx + m[6] * gy + m[10] * gz;
          const nn = Math.hypot(nx, ny, nz) || 1;
          // The outward normal points down the gradient (bone is brighter inside).
          const lam = Math.max(0, -(nx * light[0] + ny * light[1] + nz * light[2]) / (nn * ln));
          g = 40 + 215 * lam * (1 - 0.4 * (hitMm / depth));
          break;
        }
        if (step === 1) depthMm[y * W + x] = hitMm;
        for (let yy = y; yy < Math.min(H, y + step); yy++)
          for (let xx = x; xx < Math.min(W, x + step); xx++) {
            const o = (yy * W + xx) * 4;
            px[o] = g;
            px[o + 1] = g * 0.97;
            px[o + 2] = g * 0.9;
            px[o + 3] = 255;
          }
      }
    }
    this.ctx.putImageData(img, 0, 0);
    if (step === 1) this.hitDepthMm = depthMm;
    this.lastRenderMs = performance.now() - t0;
    this.root.dataset.renderMs = this.lastRenderMs.toFixed(1);
    this.drawTriad(W, H, u, v);
    // Paths on top (the surface does not hide them: they run inside the bone).
    const proj = (p: ArrayLike<number>) => {
      const d = [p[0] - this.center[0], p[1] - this.center[1], p[2] - this.center[2]];
      return [
        W / 2 + (d[0] * u[0] + d[1] * u[1] + d[2] * u[2]) / this.mmPerPx,
        H / 2 + (d[0] * v[0] + d[1] * v[1] + d[2] * v[2]) / this.mmPerPx,
      ];
    };
    for (const p of this.store.plan.paths) {
      const a = proj(p.entry),
        b = proj(p.target);
      const l = document.createElementNS(SVG_NS, 'line');
      l.setAttribute('x1', String(a[0]));
      l.setAttribute('y1', String(a[1]));
      l.setAttribute('x2', String(b[0]));
      l.setAttribute('y2', String(b[1]));
      l.setAttribute('stroke', p.id === this.store.selectedId ? '#ffd60a' : '#5ac8fa');
      l.setAttribute('stroke-width', String(Math.max(2, p.diameterMm / this.mmPerPx)));
      l.setAttribute('stroke-linecap', 'round');
      this.svg.appendChild(l);
    }
    // The placed instruments (verification scan) beside the planned paths.
    for (const ins of this.store.instruments) {
      const a = proj(ins.outerEnd),
        b = proj(ins.tip);
      const l = document.createElementNS(SVG_NS, 'line');
      l.setAttribute('x1', String(a[0]));
      l.setAttribute('y1', String(a[1]));
      l.setAttribute('x2', String(b[0]));
      l.setAttribute('y2', String(b[1]));
      l.setAttribute('class', `instrument ${ins.status} instrument-body`);
      l.setAttribute('data-instrument-id', ins.id);
      l.setAttribute('stroke-width', String(Math.max(2, ins.diameterMm / this.mmPerPx / 2)));
      this.svg.appendChild(l);
    }
  }

  /**
   * Orientation cue: the patient's axes projected to the screen, bottom right, each end lettered
   * (R/L along x, A/P along y, I/S along z, LPS); an axis seen end-on shrinks to a point.
   */
  private drawTriad(W: number, H: number, u: Point3, v: Point3) {
    const cx = W - 42,
      cy = H - 42,
      r = 26;
    const g = document.createElementNS(SVG_NS, 'g');
    g.setAttribute('class', 'triad');
    const axes: [Point3, string, string, string][] = [
      [[1, 0, 0], 'L', 'R', '#ff6b5e'],
      [[0, 1, 0], 'P', 'A', '#5ee07a'],
      [[0, 0, 1], 'S', 'I', '#6bb8ff'],
    ];
    for (const [d, pos, neg, color] of axes) {
      const sx = d[0] * u[0] + d[1] * u[1] + d[2] * u[2],
        sy = d[0] * v[0] + d[1] * v[1] + d[2] * v[2];
      const line = document.createElementNS(SVG_NS, 'line');
      line.setAttribute('x1', String(cx - sx * r));
      line.setAttribute('y1', String(cy - sy * r));
      line.setAttribute('x2', String(cx + sx * r));
      line.setAttribute('y2', String(cy + sy * r));
      line.setAttribute('stroke', color);
      line.setAttribute('stroke-width', '2');
      g.appendChild(line);
      for (const [sign, letter] of [
        [1, pos],
        [-1, neg],
      ] as const) {
        const t = document.createElementNS(SVG_NS, 'text');
        t.setAttribute('x', String(cx + sign * sx * (r + 9)));
        t.setAttribute('y', String(cy + sign * sy * (r + 9) + 4));
        t.setAttribute('fill', color);
        t.setAttribute('class', 'triad-letter');
        t.setAttribute('text-anchor', 'middle');
        t.dataset.axis = letter;
        t.textContent = letter;
        g.appendChild(t);
      }
    }
    this.svg.appendChild(g);
  }

  private bind() {
    const el = this.root;
    el.addEventListener('pointerdown', (e) => {
      el.setPointerCapture(e.pointerId);
      this.drag = { x: e.clientX, y: e.clientY, az: this.azDeg, el: this.elDeg };
    });
    el.addEventListener('pointermove', (e) => {
      if (!this.drag) return;
      this.azDeg = this.drag.az + (e.clientX - this.drag.x) * 0.5;
      this.elDeg = Math.max(-89, Math.min(89, this.drag.el + (e.clientY - this.drag.y) * 0.5));
      this.invalidate();
    });
    const end = () => {
      this.drag = null;
      this.invalidate();
    };
    el.addEventListener('pointerup', end);
    el.addEventListener('pointercancel', end);
    el.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        this.mmPerPx *= e.deltaY > 0 ? 1.1 : 1 / 1.1;
        this.invalidate();
      },
      { passive: false },
    );
  }
}
