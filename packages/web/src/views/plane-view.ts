/**
 * A reslice view: the CT sampled on a plane (axial, sagittal, coronal, along the selected path, across
 * it), drawn on a canvas, with an SVG overlay for the crosshair, the paths and their handles.
 *
 * Orientation (radiological): axial and coronal show the patient's right on the screen's left; axial
 * has anterior up, coronal and sagittal have the head up, sagittal has anterior on the left.
 *
 * Mouse: left click or drag = crosshair; left drag on a path end = move it; Shift+left or middle drag =
 * pan; right drag = window (horizontal) and level (vertical); wheel = next slice (across-path view:
 * depth along the path; along-path view: rotate about the path); Ctrl+wheel = zoom at the cursor;
 * double click = fit.
 */
import {
  CorridorError,
  dot,
  normalize,
  reslicePlane,
  stepAlongSlices,
  type PlanPath,
  type Point3,
} from '@corridor/core';
import {
  fmt1,
  patientToScreen,
  perpendiculars,
  rotateAbout,
  screenToPatient,
  volumeCenter,
  volumeCorners,
  type ScreenFrame,
} from '../geometry.js';
import type { ShownInstrument, Store } from '../store.js';
import { clearanceColor } from '../ui/colors.js';
import { context2d } from '../dom.js';

export type PlaneKind = 'axial' | 'sagittal' | 'coronal' | 'along' | 'across';

const AXES: Record<
  'axial' | 'sagittal' | 'coronal',
  { u: Point3; v: Point3; labels: [string, string, string, string] }
> = {
  // labels: left, right, top, bottom edges of the screen
  axial: { u: [1, 0, 0], v: [0, 1, 0], labels: ['R', 'L', 'A', 'P'] },
  coronal: { u: [1, 0, 0], v: [0, 0, -1], labels: ['R', 'L', 'S', 'I'] },
  sagittal: { u: [0, 1, 0], v: [0, 0, -1], labels: ['A', 'P', 'S', 'I'] },
};

const TITLES: Record<PlaneKind, string> = {
  axial: 'Axial',
  sagittal: 'Sagittal',
  coronal: 'Coronal',
  along: 'Along path',
  across: 'Across path',
};

const SVG_NS = 'http://www.w3.org/2000/svg';

export interface PlaneViewHooks {
  /** A click in "add path" mode: the patient point clicked. */
  onAddPoint?: (p: Point3) => void;
  isAddMode?: () => boolean;
}

type Drag =
  | { kind: 'crosshair' }
  | { kind: 'pan'; x: number; y: number; cu: number; cv: number }
  | { kind: 'window'; x: number; y: number; c: number; w: number }
  | { kind: 'handle'; id: string; end: 'entry' | 'target'; x: number; y: number; start: Point3; key: string };

export class PlaneView {
  readonly root: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private svg: SVGSVGElement;
  private info: HTMLElement;
  /** In-plane position of the screen centre (mm along u and v); the depth comes from the crosshair or path. */
  private cu = 0;
  private cv = 0;
  private mmPerPx = 1;
  private fitted = false;
  /** Along-path view: rotation of the plane about the path, degrees. */
  private rollDeg = 0;
  private drag: Drag | null = null;
  private frameCache: ScreenFrame | null = null;
  private raf = 0;
  private imageDirty = true;
  /** Milliseconds the last image took (shown in the benchmark). */
  lastRenderMs = 0;
  private image: ImageData | null = null;
  /** The resliced CT values of the last image (HU), reused while the view keeps its size. */
  private values: Float64Array | null = null;
  /** The cement overlay resliced on the same raster (1 = cement). */
  private maskValues: Float64Array | null = null;

  constructor(
    readonly kind: PlaneKind,
    private store: Store,
    private hooks: PlaneViewHooks = {},
  ) {
    this.root = document.createElement('div');
    this.root.className = `view plane-view view-${kind}`;
    this.root.dataset.view = kind;
    this.canvas = document.createElement('canvas');
    this.svg = document.createElementNS(SVG_NS, 'svg');
    this.svg.classList.add('overlay');
    const title = document.createElement('div');
    title.className = 'view-title';
    title.textContent = TITLES[kind];
    this.info = document.createElement('div');
    this.info.className = 'view-info';
    this.root.append(this.canvas, this.svg, title, this.info);
    this.ctx = context2d(this.canvas, { willReadFrequently: false });
    this.bindEvents();
    store.on(['volume'], () => {
      this.fitted = false;
      this.invalidate(true);
    });
    store.on(['crosshair', 'window', 'selection', 'pathDepth'], () => this.invalidate(true));
    store.on(['plan'], () => this.invalidate(kind === 'along' || kind === 'across'));
    store.on(['reports'], () => this.invalidate(false));
    store.on(['procedure'], () => this.invalidate(true));
    new ResizeObserver(() => this.invalidate(true)).observe(this.root);
  }

  /** Schedule a redraw; image = resample the CT too (not only the overlay). */
  invalidate(image: boolean): void {
    if (image) this.imageDirty = true;
    if (!this.raf)
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        this.draw();
      });
  }

  /** The screen frame now (null when there is nothing to show, e.g. no path for a path view). */
  frame(): ScreenFrame | null {
    const vol = this.store.volume;
    if (!vol) return null;
    const width = Math.max(1, this.root.clientWidth),
      height = Math.max(1, this.root.clientHeight);
    let u: Point3, v: Point3, depthPoint: Point3, fitCenter: Point3;
    if (this.kind === 'axial' || this.kind === 'sagittal' || this.kind === 'coronal') {
      ({ u, v } = AXES[this.kind]);
      depthPoint = this.store.crosshair;
      fitCenter = volumeCenter(vol);
    } else {
      const p = this.store.selected;
      if (!p) return null;
      const d = normalize([p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]]);
      const [a, b] = perpendiculars(d);
      const a2 = rotateAbout(a, d, (this.rollDeg * Math.PI) / 180);
      const b2 = rotateAbout(b, d, (this.rollDeg * Math.PI) / 180);
      const mid: Point3 = [
        (p.entry[0] + p.target[0]) / 2,
        (p.entry[1] + p.target[1]) / 2,
        (p.entry[2] + p.target[2]) / 2,
      ];
      if (this.kind === 'along') {
        // Path horizontal, entry on the left.
        u = d;
        v = normalize([-b2[0], -b2[1], -b2[2]]);
        if (v[2] > 0) v = [-v[0], -v[1], -v[2]]; // keep the head up when the plane allows it
        depthPoint = mid;
        fitCenter = mid;
      } else {
        u = a2;
        v = b2[2] > 0 ? [-b2[0], -b2[1], -b2[2]] : b2;
        const t = Math.min(
          Math.max(this.store.pathDepthMm, 0),
          Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]),
        );
        depthPoint = [p.entry[0] + t * d[0], p.entry[1] + t * d[1], p.entry[2] + t * d[2]];
        fitCenter = depthPoint;
      }
      if (!this.fitted) {
        this.cu = dot(fitCenter, u);
        this.cv = dot(fitCenter, v);
      }
    }
    const n = normalize([u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]);
    if (!this.fitted) this.fit(vol ? volumeCorners(vol) : [], u, v, fitCenter, width, height);
    if (this.kind === 'along' || this.kind === 'across') {
      // Path views follow the path: centre on it every time.
      this.cu = dot(fitCenter, u);
      this.cv = dot(fitCenter, v);
    }
    const dn = dot(depthPoint, n);
    const origin: Point3 = [
      this.cu * u[0] + this.cv * v[0] + dn * n[0],
      this.cu * u[1] + this.cv * v[1] + dn * n[1],
      this.cu * u[2] + this.cv * v[2] + dn * n[2],
    ];
    return { origin, u, v, n, mmPerPx: this.mmPerPx, width, height };
  }

  private fit(corners: Point3[], u: Point3, v: Point3, center: Point3, width: number, height: number) {
    let eu = 1,
      ev = 1;
    if (this.kind === 'along' || this.kind === 'across') {
      const p = this.store.selected;
      const L = p ? Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]) : 100;
      eu = ev = this.kind === 'along' ? L * 1.3 : 80;
    } else if (corners.length) {
      const us = corners.map((c) => dot(c, u)),
        vs = corners.map((c) => dot(c, v));
      eu = Math.max(...us) - Math.min(...us);
      ev = Math.max(...vs) - Math.min(...vs);
    }
    this.mmPerPx = Math.max(eu / width, ev / height) * 1.04;
    this.cu = dot(center, u);
    this.cv = dot(center, v);
    this.fitted = true;
  }

  private draw() {
    const f = this.frame();
    this.frameCache = f;
    const w = Math.max(1, this.root.clientWidth),
      h = Math.max(1, this.root.clientHeight);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.imageDirty = true;
    }
    this.svg.setAttribute('width', String(w));
    this.svg.setAttribute('height', String(h));
    this.svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    if (!f) {
      this.ctx.fillStyle = '#000';
      this.ctx.fillRect(0, 0, w, h);
      this.svg.replaceChildren();
      this.info.textContent = this.store.volume ? 'select a path' : '';
      return;
    }
    if (this.imageDirty) {
      this.renderImage(f);
      this.imageDirty = false;
    }
    this.drawOverlay(f);
  }

  private renderImage(f: ScreenFrame) {
    const vol = this.store.volume;
    if (!vol) throw new CorridorError('no volume to reslice', `${this.kind} view`);
    const t0 = performance.now();
    const W = f.width,
      H = f.height;
    if (!this.image || this.image.width !== W || this.image.height !== H) this.image = this.ctx.createImageData(W, H);
    const px = this.image.data;
    // Core's reslice on the screen raster: pixel (x, y) samples the patient point under its centre.
    if (!this.values || this.values.length !== W * H) this.values = new Float64Array(W * H);
    const OUT = -1e30;
    const values = reslicePlane(
      this.values,
      vol,
      {
        origin: screenToPatient(f, 0.5, 0.5),
        u: f.u,
        v: f.v,
        pixelSizeMm: f.mmPerPx,
        width: W,
        height: H,
      },
      { interpolation: 'linear', outside: OUT },
    );
    const lo = this.store.window.centerHu - this.store.window.widthHu / 2;
    const k = 255 / this.store.window.widthHu;
    for (let n = 0, o = 0; n < values.length; n++, o += 4) {
      const val = values[n];
      if (val === OUT) {
        px[o] = 12;
        px[o + 1] = 12;
        px[o + 2] = 24;
        px[o + 3] = 255;
        continue;
      }
      let g = (val - lo) * k;
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      px[o] = g;
      px[o + 1] = g;
      px[o + 2] = g;
      px[o + 3] = 255;
    }
    // The latest cement scan's cement (core's analyzeCement), tinted orange over the CT.
    const cement = this.store.cementOverlay;
    let cementPx = 0;
    if (cement) {
      if (!this.maskValues || this.maskValues.length !== W * H) this.maskValues = new Float64Array(W * H);
      const m = reslicePlane(
        this.maskValues,
        cement,
        { origin: screenToPatient(f, 0.5, 0.5), u: f.u, v: f.v, pixelSizeMm: f.mmPerPx, width: W, height: H },
        { interpolation: 'nearest', outside: 0 },
      );
      for (let n = 0, o = 0; n < m.length; n++, o += 4) {
        if (m[n] < 0.5) continue;
        cementPx++;
        px[o] = 0.35 * px[o] + 0.65 * 255;
        px[o + 1] = 0.35 * px[o + 1] + 0.65 * 140;
        px[o + 2] = 0.35 * px[o + 2];
      }
    }
    this.root.dataset.cementPx = String(cementPx);
    this.ctx.putImageData(this.image, 0, 0);
    this.lastRenderMs = performance.now() - t0;
    this.root.dataset.renderMs = this.lastRenderMs.toFixed(1);
  }

  private el<K extends keyof SVGElementTagNameMap>(
    tag: K,
    attrs: Record<string, string | number>,
    parent: Element = this.svg,
  ): SVGElementTagNameMap[K] {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, String(v));
    parent.appendChild(e);
    return e;
  }

  private drawOverlay(f: ScreenFrame) {
    this.svg.replaceChildren();
    const st = this.store;
    // Crosshair (the other two planes through the shared point).
    const c = patientToScreen(f, st.crosshair);
    if (this.kind !== 'along') {
      this.el('line', { x1: 0, y1: c.y, x2: f.width, y2: c.y, class: 'crosshair' });
      this.el('line', { x1: c.x, y1: 0, x2: c.x, y2: f.height, class: 'crosshair' });
    }
    // Paths: the projection of each, coloured by clearance; handles at both ends.
    const labels: PathLabel[] = [];
    for (const p of st.plan.paths) labels.push(this.drawPath(f, p, p.id === st.selectedId));
    // The placed instruments of the verification scan, beside the planned paths.
    for (const ins of st.instruments) this.drawInstrument(f, ins);
    layoutLabels(labels, f.width, f.height);
    // Breaches of the selected path.
    const rep = st.selectedId ? st.reports.get(st.selectedId) : undefined;
    for (const b of rep?.analysis.breaches ?? []) {
      const s = patientToScreen(f, b.at);
      const g = this.el('g', { class: 'breach-mark', transform: `translate(${s.x},${s.y})` });
      this.el('path', { d: 'M-6,-6L6,6M-6,6L6,-6' }, g);
    }
    // Orientation letters, depth and scale.
    if (this.kind === 'axial' || this.kind === 'sagittal' || this.kind === 'coronal') {
      const [l, r, t, b] = AXES[this.kind].labels;
      this.text(4, f.height / 2, l, 'orient');
      this.text(f.width - 14, f.height / 2, r, 'orient');
      this.text(f.width / 2, 16, t, 'orient');
      this.text(f.width / 2, f.height - 6, b, 'orient');
    }
    const depth =
      this.kind === 'axial'
        ? `z = ${fmt1(st.crosshair[2])} mm`
        : this.kind === 'coronal'
          ? `y = ${fmt1(st.crosshair[1])} mm`
          : this.kind === 'sagittal'
            ? `x = ${fmt1(st.crosshair[0])} mm`
            : this.kind === 'across'
              ? `depth ${fmt1(st.pathDepthMm)} mm from entry`
              : `roll ${fmt1(this.rollDeg)}°`;
    this.info.textContent = `${depth} · ${fmt1(f.mmPerPx * 100)} mm / 100 px`;
    const barMm = niceLength(f.mmPerPx * 80);
    const barPx = barMm / f.mmPerPx;
    this.el('line', {
      x1: f.width - 10 - barPx,
      y1: f.height - 28,
      x2: f.width - 10,
      y2: f.height - 28,
      class: 'scale-bar',
    });
    this.text(f.width - 10 - barPx, f.height - 32, `${barMm} mm`, 'scale-text');
  }

  private text(x: number, y: number, s: string, cls: string) {
    const t = this.el('text', { x, y, class: cls });
    t.textContent = s;
  }

  private drawPath(f: ScreenFrame, p: PlanPath, selected: boolean): PathLabel {
    const a = patientToScreen(f, p.entry),
      b = patientToScreen(f, p.target);
    const g = this.el('g', { class: `path${selected ? ' selected' : ''}`, 'data-path-id': p.id });
    const rep = this.store.reports.get(p.id);
    const L = Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]);
    // Tool width on screen (at least 2 px) so the physician sees the diameter against the bone.
    const widthPx = Math.max(2, p.diameterMm / f.mmPerPx);
    const far =
      Math.min(Math.abs(a.depthMm), Math.abs(b.depthMm)) > 15 && Math.sign(a.depthMm) === Math.sign(b.depthMm);
    if (rep && rep.profile.clearanceMm.length) {
      const prof = rep.profile;
      for (let i = 0; i < prof.clearanceMm.length; i++) {
        const t0 = Math.min(1, (i * prof.stepMm) / L),
          t1 = Math.min(1, ((i + 1) * prof.stepMm) / L);
        this.el(
          'line',
          {
            x1: a.x + (b.x - a.x) * t0,
            y1: a.y + (b.y - a.y) * t0,
            x2: a.x + (b.x - a.x) * t1,
            y2: a.y + (b.y - a.y) * t1,
            stroke: clearanceColor(prof.clearanceMm[i], this.store.marginMm),
            'stroke-width': widthPx,
            class: 'path-body',
            opacity: far ? 0.35 : 0.85,
          },
          g,
        );
      }
    } else {
      this.el(
        'line',
        {
          x1: a.x,
          y1: a.y,
          x2: b.x,
          y2: b.y,
          'stroke-width': widthPx,
          class: 'path-body plain',
          opacity: far ? 0.35 : 0.85,
        },
        g,
      );
    }
    this.el('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'path-axis' }, g);
    this.el('circle', { cx: a.x, cy: a.y, r: selected ? 6 : 4, class: 'handle entry', 'data-end': 'entry' }, g);
    this.el(
      'rect',
      {
        x: b.x - (selected ? 5 : 4),
        y: b.y - (selected ? 5 : 4),
        width: selected ? 10 : 8,
        height: selected ? 10 : 8,
        class: 'handle target',
        'data-end': 'target',
      },
      g,
    );
    const label = this.el('text', { x: a.x + 8, y: a.y - 8, class: 'path-label' }, g);
    label.textContent = p.name;
    return { el: label, ax: a.x, ay: a.y, selected };
  }

  private drawInstrument(f: ScreenFrame, ins: ShownInstrument) {
    const a = patientToScreen(f, ins.outerEnd),
      b = patientToScreen(f, ins.tip);
    const far =
      Math.min(Math.abs(a.depthMm), Math.abs(b.depthMm)) > 15 && Math.sign(a.depthMm) === Math.sign(b.depthMm);
    const g = this.el('g', {
      class: `instrument ${ins.status}`,
      'data-instrument-id': ins.id,
      'data-path-id': ins.pathId ?? '',
    });
    this.el(
      'line',
      {
        x1: a.x,
        y1: a.y,
        x2: b.x,
        y2: b.y,
        'stroke-width': Math.max(2, ins.diameterMm / f.mmPerPx / 2),
        class: 'instrument-body',
        opacity: far ? 0.35 : 0.9,
      },
      g,
    );
    this.el('circle', { cx: b.x, cy: b.y, r: 3, class: 'instrument-tip' }, g);
    const t = this.el('text', { x: b.x + 6, y: b.y + 12, class: 'instrument-label' }, g);
    t.textContent = ins.pathId ? `${ins.pathId} placed` : `${ins.id} (unplanned)`;
  }

  /** The path end under screen point (x, y), within 9 px; the selected path first. */
  private hitHandle(x: number, y: number): { id: string; end: 'entry' | 'target' } | null {
    const f = this.frameCache;
    if (!f) return null;
    const paths = [...this.store.plan.paths].sort(
      (p, q) => Number(q.id === this.store.selectedId) - Number(p.id === this.store.selectedId),
    );
    let best: { id: string; end: 'entry' | 'target'; d: number } | null = null;
    for (const p of paths) {
      for (const end of ['entry', 'target'] as const) {
        const s = patientToScreen(f, p[end]);
        const d = Math.hypot(s.x - x, s.y - y);
        if (d <= 9 && (!best || d < best.d - 0.5)) best = { id: p.id, end, d };
      }
    }
    return best;
  }

  private bindEvents() {
    const el = this.root;
    el.addEventListener('contextmenu', (e) => e.preventDefault());
    el.addEventListener('pointerdown', (e) => {
      const f = this.frameCache;
      if (!f) return;
      const r = el.getBoundingClientRect();
      const x = e.clientX - r.left,
        y = e.clientY - r.top;
      el.setPointerCapture(e.pointerId);
      if (e.button === 2) {
        this.drag = { kind: 'window', x, y, c: this.store.window.centerHu, w: this.store.window.widthHu };
        return;
      }
      if (e.button === 1 || (e.button === 0 && e.shiftKey)) {
        this.drag = { kind: 'pan', x, y, cu: this.cu, cv: this.cv };
        return;
      }
      if (e.button !== 0) return;
      if (this.hooks.isAddMode?.()) {
        this.hooks.onAddPoint?.(screenToPatient(f, x, y));
        return;
      }
      const hit = this.hitHandle(x, y);
      if (hit) {
        const p = this.store.plan.paths.find((q) => q.id === hit.id);
        if (!p) return; // cannot happen: hitHandle took the id from these paths
        if (this.store.selectedId !== hit.id) this.store.select(hit.id);
        this.drag = {
          kind: 'handle',
          id: hit.id,
          end: hit.end,
          x,
          y,
          start: [...p[hit.end]] as Point3,
          key: `drag-${hit.id}-${hit.end}-${performance.now()}`,
        };
        return;
      }
      this.drag = { kind: 'crosshair' };
      this.store.setCrosshair(screenToPatient(f, x, y));
    });
    el.addEventListener('pointermove', (e) => {
      const f = this.frameCache;
      const r = el.getBoundingClientRect();
      const x = e.clientX - r.left,
        y = e.clientY - r.top;
      if (!f) return;
      if (!this.drag) {
        el.style.cursor = this.hitHandle(x, y) ? 'grab' : this.hooks.isAddMode?.() ? 'copy' : 'crosshair';
        const p = screenToPatient(f, x, y);
        this.root.title = `${fmt1(p[0])}, ${fmt1(p[1])}, ${fmt1(p[2])} mm (LPS)`;
        return;
      }
      const d = this.drag;
      if (d.kind === 'crosshair') this.store.setCrosshair(screenToPatient(f, x, y));
      else if (d.kind === 'pan') {
        this.cu = d.cu - (x - d.x) * f.mmPerPx;
        this.cv = d.cv - (y - d.y) * f.mmPerPx;
        this.invalidate(true);
      } else if (d.kind === 'window') {
        this.store.setWindow({ centerHu: d.c - (y - d.y) * 2, widthHu: d.w + (x - d.x) * 4 });
      } else {
        const du = (x - d.x) * f.mmPerPx,
          dv = (y - d.y) * f.mmPerPx;
        const q: Point3 = [
          d.start[0] + du * f.u[0] + dv * f.v[0],
          d.start[1] + du * f.u[1] + dv * f.v[1],
          d.start[2] + du * f.u[2] + dv * f.v[2],
        ];
        this.store.updatePath(d.id, { [d.end]: q }, d.key);
      }
    });
    const end = () => {
      if (this.drag?.kind === 'handle') this.store.endCoalesce();
      this.drag = null;
    };
    el.addEventListener('pointerup', end);
    el.addEventListener('pointercancel', end);
    el.addEventListener('dblclick', () => {
      this.fitted = false;
      this.invalidate(true);
    });
    el.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const f = this.frameCache;
        const vol = this.store.volume;
        if (!f || !vol) return;
        const steps = Math.sign(e.deltaY);
        if (e.ctrlKey || e.metaKey) {
          const r = el.getBoundingClientRect();
          const x = e.clientX - r.left,
            y = e.clientY - r.top;
          const before = screenToPatient(f, x, y);
          this.mmPerPx *= steps > 0 ? 1.15 : 1 / 1.15;
          // Keep the point under the cursor in place.
          this.cu = dot(before, f.u) - (x - f.width / 2) * this.mmPerPx;
          this.cv = dot(before, f.v) - (y - f.height / 2) * this.mmPerPx;
          this.invalidate(true);
          return;
        }
        if (this.kind === 'across') {
          const p = this.store.selected;
          if (!p) return;
          const L = Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]);
          this.store.pathDepthMm = Math.min(L, Math.max(0, this.store.pathDepthMm + steps * (e.shiftKey ? 5 : 1)));
          this.store.emit('pathDepth');
        } else if (this.kind === 'along') {
          this.rollDeg = (this.rollDeg + steps * 5 + 360) % 360;
          this.invalidate(true);
        } else {
          // To the next acquired slice centre along the view's normal (core's stepAlongSlices), so the image
          // is a slice as acquired, not a blend of two; an oblique grid steps by its slice spacing.
          const r = stepAlongSlices(vol, this.store.crosshair, f.n, steps * (e.shiftKey ? 5 : 1));
          this.store.setCrosshair(r.point);
        }
      },
      { passive: false },
    );
  }
}

/** A path's name label and the entry mark it belongs to (screen px). */
interface PathLabel {
  el: SVGTextElement;
  ax: number;
  ay: number;
  selected: boolean;
}

/**
 * Place the path labels so that no two overlap: each at the first free spot of a ring of places around
 * its entry mark (the selected path's first), else further down in steps of a line until one is free.
 * Boxes are the texts' measured extents plus 2 px.
 */
function layoutLabels(labels: PathLabel[], width: number, height: number) {
  const placed: { x0: number; y0: number; x1: number; y1: number }[] = [];
  const order = [...labels].sort((a, b) => Number(b.selected) - Number(a.selected));
  for (const l of order) {
    let w = 0;
    try {
      w = l.el.getComputedTextLength();
    } catch {
      w = 0; // not laid out (a hidden view): estimated below
    }
    if (!(w > 0)) w = 6.5 * (l.el.textContent ?? '').length;
    const h = 13;
    // (dx, baseline dy) candidates: upper right, lower right, upper left, lower left, right, left.
    const ring: [number, number][] = [
      [8, -8],
      [8, 18],
      [-8 - w, -8],
      [-8 - w, 18],
      [10, 4],
      [-10 - w, 4],
    ];
    const box = (dx: number, dy: number) => ({
      x0: l.ax + dx - 2,
      y0: l.ay + dy - h + 1,
      x1: l.ax + dx + w + 2,
      y1: l.ay + dy + 4,
    });
    const free = (b: { x0: number; y0: number; x1: number; y1: number }) =>
      placed.every((q) => b.x1 <= q.x0 || q.x1 <= b.x0 || b.y1 <= q.y0 || q.y1 <= b.y0);
    const inside = (b: { x0: number; x1: number; y0: number; y1: number }) =>
      b.x0 >= 0 && b.y0 >= 0 && b.x1 <= width && b.y1 <= height;
    // Then the same places a line or more further out (up and down), all inside the view; then anywhere.
    const stacked: [number, number][] = [];
    for (let k = 1; k <= 6; k++) for (const [dx, dy] of ring) stacked.push([dx, dy + (dy < 0 ? -k : k) * (h + 4)]);
    let chosen: [number, number] | null = null;
    for (const pass of [true, false]) {
      for (const c of pass ? [...ring, ...stacked] : ring) {
        const b = box(c[0], c[1]);
        if (free(b) && (!pass || inside(b))) {
          chosen = c;
          break;
        }
      }
      if (chosen) break;
    }
    if (!chosen) {
      chosen = [8, -8];
      for (let k = 1; k < 200 && !free(box(chosen[0], chosen[1])); k++) chosen = [8, -8 + k * (h + 4)];
    }
    l.el.setAttribute('x', String(l.ax + chosen[0]));
    l.el.setAttribute('y', String(l.ay + chosen[1]));
    const b = box(chosen[0], chosen[1]);
    placed.push(b);
    if (!ring.includes(chosen)) {
      // Moved away from its mark: a thin leader line says whose label it is.
      const lead = document.createElementNS(SVG_NS, 'line');
      const tx = Math.min(Math.max(l.ax, b.x0), b.x1),
        ty = Math.min(Math.max(l.ay, b.y0), b.y1);
      lead.setAttribute('x1', String(l.ax));
      lead.setAttribute('y1', String(l.ay));
      lead.setAttribute('x2', String(tx));
      lead.setAttribute('y2', String(ty));
      lead.setAttribute('class', 'label-leader');
      l.el.parentNode?.insertBefore(lead, l.el);
    }
  }
}

function niceLength(mm: number): number {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200];
  for (const s of steps) if (s >= mm) return s;
  return 500;
}
