/**
 * Virtual fluoroscopy: the CT projected for the C-arm pose (core's DRR; WebGL2 when the browser has a
 * GPU, core's CPU kernel in workers otherwise), with the plan projected by core's projection matrix.
 * The image is core's fluoroscopyWithExposure, as `corridor drr` makes it: automatic exposure per view
 * (kV and mAs in the caption), the window from the body, core's orientation letters on the edges.
 * Or, when a real XA/RF frame is loaded, that frame with the plan projected for the frame's geometry.
 *
 * While the pose changes a coarse frame is drawn at once; the full frame follows when it settles.
 * The overlay is an SVG in detector pixel units of the full frame: each path end is a mark whose
 * data-col/data-row attributes hold its projected (column, row), so entry and target can be checked to
 * coincide in a bull's-eye view.
 */
import {
  anglesLabel,
  carmGeometry,
  carmPreset,
  exposureLabel,
  fluoroscopyWithExposure,
  orientationMarkers,
  overlayGeometry,
  resolveModel,
  projectionMatrix,
  projectPoint,
  type CarmGeometry,
  type CarmSystem,
  type Exposure,
  type ReportFluoroFrame,
} from '@corridor/core';
import type { DrrFrame } from '../drr-pool.js';
import { DrrPool } from '../drr-pool.js';
import type { LoadedXa, Store } from '../store.js';
import { GlDrr } from './gl-drr.js';
import { fmt1 } from '../geometry.js';
import { context2d, find } from '../dom.js';
import { drawBeforeOverlay, movePaths } from '../motion.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A caption that stays legible over any image: a dark, half-opaque backdrop and a dark outline. */
function legibleOverImage(el: HTMLElement): void {
  el.style.background = 'rgba(0, 0, 0, 0.6)';
  el.style.color = '#fff';
  el.style.padding = '1px 5px';
  el.style.borderRadius = '3px';
  el.style.textShadow = '0 0 2px #000, 0 0 2px #000';
}

export const FULL_SIZE = 512;
export const COARSE_SIZE = 128;
/**
 * Side of the square detector field used, mm at the detector: within the width of every preset's panel
 * (the Artis zee's is 295.7 mm), so the image is square.
 */
export const FIELD_MM = 290;

export type Renderer = 'gpu' | 'cpu';

export class FluoroView {
  readonly root: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private svg: SVGSVGElement;
  private info: HTMLElement;
  /** The CPU path (null while the GPU path draws). */
  pool: DrrPool | null = null;
  private gl: GlDrr | null = null;
  system: CarmSystem = carmPreset('artis-zee-floor');
  renderer: Renderer = 'cpu';
  private settleTimer = 0;
  private image: ImageData;
  /** Frame times (ms) of the last coarse and full CPU frames, and the last GPU frame. */
  stats = { coarseMs: NaN, fullMs: NaN, gpuMs: NaN, frames: 0 };
  /**
   * Core's full fluoroscopy model (quantum noise and edge enhancement) on full frames: off by default,
   * as it costs about 100 ms more per 512 x 512 frame on a CPU than blur and log window alone.
   */
  realistic = false;
  /** The last DRR frame painted: its geometry, noise-free line integrals and exposure (for tests, caption). */
  lastFrame: {
    geometry: CarmGeometry;
    lineIntegrals: Float32Array;
    /** The grey levels painted (geometry.columns x geometry.rows). */
    gray: Uint8Array;
    exposure: Exposure;
    window: [number, number];
  } | null = null;
  /** Whether the shown image is the XA frame. */
  showXa = true;
  onError: (e: unknown) => void = (e) => console.error(e);

  constructor(
    private store: Store,
    opts: { forceCpu?: boolean; allowSoftwareGl?: boolean } = {},
  ) {
    this.root = document.createElement('div');
    this.root.className = 'view fluoro-view';
    this.root.dataset.view = 'fluoro';
    this.canvas = document.createElement('canvas');
    this.canvas.width = FULL_SIZE;
    this.canvas.height = FULL_SIZE;
    this.canvas.className = 'fluoro-canvas';
    this.svg = document.createElementNS(SVG_NS, 'svg');
    this.svg.classList.add('overlay');
    this.svg.setAttribute('viewBox', `0 0 ${FULL_SIZE} ${FULL_SIZE}`);
    this.svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    const title = document.createElement('div');
    title.className = 'view-title';
    title.textContent = 'Virtual fluoroscopy';
    // Legible over any image, white bone or black air alike: a dark backdrop behind the text.
    legibleOverImage(title);
    this.info = document.createElement('div');
    this.info.className = 'view-info';
    legibleOverImage(this.info);
    this.ctx = context2d(this.canvas);
    this.image = this.ctx.createImageData(FULL_SIZE, FULL_SIZE);
    if (!opts.forceCpu) {
      try {
        this.gl = GlDrr.create(FULL_SIZE, { allowSoftware: opts.allowSoftwareGl });
      } catch (err) {
        this.gl = null;
        console.warn('WebGL2 DRR unavailable, using the CPU fallback:', err);
      }
    }
    this.renderer = this.gl ? 'gpu' : 'cpu';
    const stack = document.createElement('div');
    stack.className = 'fluoro-stack';
    stack.append(...(this.gl ? [this.gl.canvas] : []), this.canvas, this.svg);
    if (this.gl) this.gl.canvas.classList.add('fluoro-canvas');
    this.showCanvas(this.gl ? 'gpu' : 'cpu');
    this.root.append(stack, title, this.info);
    this.root.dataset.renderer = this.renderer;
    store.on(['volume'], () => this.onVolume());
    store.on(['carm'], () => this.update(true));
    store.on(['plan', 'selection', 'reports', 'procedure', 'motion'], () => this.drawOverlay());
    store.on(['xa'], () => this.update(false));
  }

  private onVolume() {
    const v = this.store.volume;
    if (!v) return;
    if (this.gl) {
      try {
        this.gl.setVolume(v);
      } catch (err) {
        // A volume too large for the GPU's 3D textures falls back to the CPU path.
        console.warn('WebGL2 DRR cannot take this volume, using the CPU fallback:', err);
        this.gl = null;
        this.renderer = 'cpu';
        this.root.dataset.renderer = 'cpu';
        find(this.root, '.fluoro-stack').replaceChildren(this.canvas, this.svg);
        this.showCanvas('cpu');
      }
    }
    if (!this.gl) {
      this.pool ??= new DrrPool();
      this.pool.setVolume(v).catch(this.onError);
    }
    this.update(false);
  }

  /** The geometry of the full frame for the current pose. */
  geometry(size = FULL_SIZE): CarmGeometry {
    const c = this.store.carm;
    const g = carmGeometry(
      this.system,
      { primaryDeg: c.primaryDeg, secondaryDeg: c.secondaryDeg, isocenter: c.isocenter },
      {
        size,
        fieldMm: Math.min(
          FIELD_MM,
          this.system.detectorColumns * this.system.pixelPitchMm,
          this.system.detectorRows * this.system.pixelPitchMm,
        ),
      },
    );
    if (g.columns !== size || g.rows !== size)
      throw new Error(`the ${this.system.name} gives a ${g.columns} x ${g.rows} image, not ${size} x ${size}`);
    return g;
  }

  /** Redraw for the current pose; moving = the pose is being dragged (coarse frame now, full when it settles). */
  update(moving: boolean): void {
    this.drawOverlay();
    if (!this.store.volume) return;
    const xa = this.store.xa;
    if (xa && this.showXa) {
      this.showCanvas('cpu');
      this.drawXa(xa);
      this.root.dataset.xaFrame = xa.name;
      return;
    }
    delete this.root.dataset.xaFrame;
    clearTimeout(this.settleTimer);
    if (this.gl) {
      const gl = this.gl;
      const g = this.geometry(FULL_SIZE);
      // Settled: the GPU's line integrals read back and processed by core's model (automatic exposure),
      // painted on the 2D canvas; while moving, the shader's direct grey with the last frame's window.
      const settle = () => {
        try {
          const t0 = performance.now();
          this.paint(gl.lineIntegrals(g), FULL_SIZE);
          const e = this.lastFrame;
          if (e) gl.setWindow(e.window, e.exposure.attenuationScale);
          this.showCanvas('cpu');
          this.stats.frames++;
          this.publish('gpu', FULL_SIZE, performance.now() - t0);
        } catch (err) {
          this.onError(err);
        }
      };
      if (moving) {
        this.showCanvas('gpu');
        gl.render(g);
        this.stats.frames++;
        // The draw call returns before the GPU finishes: no time is shown (the benchmark syncs and times it).
        this.publish('gpu', FULL_SIZE, NaN);
        this.settleTimer = window.setTimeout(settle, 180);
      } else settle();
      return;
    }
    if (moving) {
      void this.renderCpu(COARSE_SIZE);
      this.settleTimer = window.setTimeout(() => void this.renderCpu(FULL_SIZE), 180);
    } else {
      void this.renderCpu(FULL_SIZE);
    }
  }

  private showCanvas(which: Renderer) {
    if (this.gl) this.gl.canvas.hidden = which !== 'gpu';
    this.canvas.hidden = which !== 'cpu';
  }

  private xaShown(): boolean {
    return !!this.store.xa && this.showXa;
  }

  private async renderCpu(size: number) {
    if (!this.pool) return;
    let frame: DrrFrame | null;
    try {
      frame = await this.pool.render(this.geometry(size));
    } catch (err) {
      this.onError(err);
      return;
    }
    if (!frame || this.xaShown()) return;
    if (size === COARSE_SIZE) this.stats.coarseMs = frame.ms;
    else this.stats.fullMs = frame.ms;
    this.stats.frames++;
    this.paint(frame.lineIntegrals, size);
    this.publish('cpu', size, frame.ms);
  }

  private publish(kind: string, size: number, ms: number) {
    if (Number.isFinite(ms)) this.root.dataset.lastFrameMs = ms.toFixed(1);
    this.root.dataset.lastFrameSize = String(size);
    this.root.dataset.frames = String(this.stats.frames);
    const c = this.store.carm;
    const primary = `${c.primaryDeg >= 0 ? 'LAO' : 'RAO'} ${fmt1(Math.abs(c.primaryDeg))}°`;
    const secondary = `${c.secondaryDeg >= 0 ? 'CRAN' : 'CAUD'} ${fmt1(Math.abs(c.secondaryDeg))}°`;
    const time = Number.isFinite(ms) ? ` ${fmt1(ms)} ms` : '';
    // The exposure of the frame shown (the direct GPU draw while moving keeps the last one's).
    const e = this.lastFrame?.exposure;
    if (e) {
      this.root.dataset.kvp = e.kvp.toFixed(1);
      this.root.dataset.mas = e.mAs.toFixed(3);
    } else {
      delete this.root.dataset.kvp;
      delete this.root.dataset.mas;
    }
    const exposure = e ? ` · ${exposureLabel(e)}` : '';
    this.info.textContent = `${primary} · ${secondary}${exposure} · ${kind.toUpperCase()} ${size}²${time}`;
  }

  /**
   * Line integrals to the displayed image with core's fluoroscopy model, as `corridor drr` makes it:
   * automatic exposure (kV, mAs for this view), Beer-Lambert intensity at that kV, detector blur, the
   * display's log window from the pixels inside the body; quantum noise at the exposure's dose and edge
   * enhancement when `realistic` (full frames).
   */
  private paint(li: Float32Array, size: number) {
    const full = size === FULL_SIZE && this.realistic;
    const geometry = this.geometry(size);
    const img = fluoroscopyWithExposure(li, geometry, {
      // The workers project with core's default attenuation model: its kV is the reference.
      exposure: { referenceKvp: resolveModel().kvp },
      ...(full ? {} : { noiseFree: true, edgeEnhance: 0 }),
    });
    this.lastFrame = { geometry, lineIntegrals: li, gray: img.gray, exposure: img.exposure, window: img.window };
    const gray = img.gray;
    const px = this.image.data;
    const scale = FULL_SIZE / size;
    for (let y = 0; y < FULL_SIZE; y++) {
      const sy = Math.min(size - 1, Math.floor(y / scale));
      for (let x = 0; x < FULL_SIZE; x++) {
        const g = gray[sy * size + Math.min(size - 1, Math.floor(x / scale))];
        const o = (y * FULL_SIZE + x) * 4;
        px[o] = g;
        px[o + 1] = g;
        px[o + 2] = g;
        px[o + 3] = 255;
      }
    }
    this.ctx.putImageData(this.image, 0, 0);
  }

  private drawXa(xa: LoadedXa) {
    const f = xa.frame;
    const { columns, rows } = f.geometry;
    const img = new ImageData(columns, rows);
    for (let i = 0; i < f.gray.length; i++) {
      img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = f.gray[i];
      img.data[i * 4 + 3] = 255;
    }
    const tmp = document.createElement('canvas');
    tmp.width = columns;
    tmp.height = rows;
    context2d(tmp).putImageData(img, 0, 0);
    // Letterboxed like the overlay's viewBox (preserveAspectRatio meet), so marks and pixels agree.
    const ctx = this.ctx;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, FULL_SIZE, FULL_SIZE);
    const s = Math.min(FULL_SIZE / columns, FULL_SIZE / rows);
    ctx.drawImage(tmp, (FULL_SIZE - columns * s) / 2, (FULL_SIZE - rows * s) / 2, columns * s, rows * s);
    this.info.textContent =
      `${xa.name} · ${columns} x ${rows} · frame ${f.frameIndex + 1}/${f.numberOfFrames}` +
      `${f.verified ? '' : ' · geometry partly assumed'}`;
  }

  /**
   * Render and paint one DRR frame of `size` pixels for the current pose and return the wall time (ms)
   * from request to painted image: the benchmark's figure. CPU path unless the GPU path is active.
   */
  async timeFrame(size = FULL_SIZE): Promise<{ ms: number; renderer: Renderer }> {
    const t0 = performance.now();
    if (this.gl) {
      this.gl.render(this.geometry(FULL_SIZE));
      this.gl.finish();
      return { ms: performance.now() - t0, renderer: 'gpu' };
    }
    if (!this.pool) throw new Error('no volume');
    const frame = await this.pool.render(this.geometry(size));
    if (!frame) throw new Error('frame superseded');
    this.paint(frame.lineIntegrals, size);
    return { ms: performance.now() - t0, renderer: 'cpu' };
  }

  /** Grey levels (0..255, row-major, row 0 at the top) of the image shown, for tests. */
  shownGray(): Uint8Array {
    const src = this.gl && !this.gl.canvas.hidden ? this.gl.canvas : this.canvas;
    const c = document.createElement('canvas');
    c.width = src.width;
    c.height = src.height;
    const ctx = context2d(c);
    ctx.drawImage(src, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const out = new Uint8Array(c.width * c.height);
    for (let i = 0; i < out.length; i++) out[i] = d[i * 4];
    return out;
  }

  /** Projected (column, row) of a point in the frame shown. */
  project(p: ArrayLike<number>): [number, number] {
    const P = projectionMatrix(this.overlayGeometry());
    const q = projectPoint(P, p);
    return [q[0], q[1]];
  }

  /**
   * The frame shown, for the report (core's ReportFluoroFrame): the loaded XA frame with the geometry the
   * overlay uses and the motion correction when one applies (ok verdict), else the last virtual frame.
   */
  reportFrame(): ReportFluoroFrame | null {
    const xa = this.store.xa;
    if (xa && this.xaShown()) {
      const mc = this.store.motionCorrection;
      return {
        gray: Uint8Array.from(xa.frame.gray),
        geometry: this.overlayGeometry(),
        label: xa.simulatedMotion ? `virtual frame of simulated motion (${xa.name})` : `XA frame ${xa.name}`,
        ...(mc && mc.status === 'ok' ? { planningToCurrent: mc.planningToCurrent } : {}),
        ...(xa.frame.verified ? {} : { unverified: true }),
      };
    }
    const f = this.lastFrame;
    if (!f) return null;
    return { gray: Uint8Array.from(f.gray), geometry: f.geometry, label: 'virtual fluoroscopy (DRR)' };
  }

  /** The geometry the overlay is drawn for: the XA frame's when one is shown, else the DRR's. */
  overlayGeometry(): CarmGeometry {
    const xa = this.store.xa;
    if (!this.xaShown() || !xa) return this.geometry(FULL_SIZE);
    // The frame's own geometry; the table position (isocentre) is the panel's, which the user adjusts.
    return { ...xa.frame.geometry, isocenter: this.store.carm.isocenter };
  }

  /**
   * Orientation letters from core (the patient direction each image edge faces; the side letter L/R in
   * yellow, as vendors mark it), outlined in black so they read on any grey.
   */
  private drawMarkers(
    g: CarmGeometry,
    el: <K extends keyof SVGElementTagNameMap>(
      tag: K,
      attrs: Record<string, string | number>,
      parent?: Element,
    ) => SVGElementTagNameMap[K],
  ) {
    const m = orientationMarkers(g);
    const fs = Math.max(12, Math.round(Math.min(g.columns, g.rows) / 18));
    const grp = el('g', {
      class: 'orientation',
      'aria-label': `orientation ${anglesLabel(g.primaryDeg, g.secondaryDeg)}`,
    });
    const at = {
      left: [fs * 0.9, g.rows / 2],
      right: [g.columns - fs * 0.9, g.rows / 2],
      top: [g.columns / 2, fs * 1.1],
      bottom: [g.columns / 2, g.rows - fs * 2.1], // clear of the caption along the bottom
    } as const;
    for (const edge of ['left', 'right', 'top', 'bottom'] as const) {
      const letter = m.edges[edge];
      const side = letter === 'L' || letter === 'R';
      const t = el(
        'text',
        {
          x: at[edge][0],
          y: at[edge][1],
          'text-anchor': 'middle',
          'dominant-baseline': 'middle',
          'font-size': fs,
          'font-weight': 700,
          'font-family': 'sans-serif',
          fill: side ? '#ffdc00' : '#ffffff',
          stroke: '#000',
          'stroke-width': Math.max(2, fs / 6),
          'paint-order': 'stroke',
          class: `marker marker-${edge}${side ? ' side' : ''}`,
          'data-edge': edge,
          'data-letter': letter,
        },
        grp,
      );
      t.textContent = letter;
    }
  }

  drawOverlay(): void {
    this.svg.replaceChildren();
    if (!this.store.volume) return;
    let P: Float64Array;
    let g: CarmGeometry;
    try {
      g = this.overlayGeometry();
      P = projectionMatrix(g);
    } catch (err) {
      this.onError(err);
      return;
    }
    const el = <K extends keyof SVGElementTagNameMap>(
      tag: K,
      attrs: Record<string, string | number>,
      parent: Element = this.svg,
    ) => {
      const e = document.createElementNS(SVG_NS, tag);
      for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, String(v));
      parent.appendChild(e);
      return e;
    };
    this.svg.setAttribute('viewBox', `0 0 ${g.columns} ${g.rows}`);
    this.drawMarkers(g, el);
    // Core's overlay geometry: projected ends, the tool's silhouette at its diameter, the end-on ring.
    // Pixel (c, r) has its centre at (c + 0.5, r + 0.5) in the SVG's units.
    // "Correct for motion" (ok verdict) on a frame of the patient now: the plan moved by the correction,
    // the uncorrected plan drawn under it in grey dashes. The DRR shows the planning scan itself: no move.
    const mc = this.store.motionCorrection;
    const corrected = !!mc && mc.status === 'ok' && this.xaShown();
    this.svg.dataset.corrected = String(corrected);
    const paths = corrected ? movePaths(this.store.plan.paths, mc.planningToCurrent) : this.store.plan.paths;
    if (corrected) drawBeforeOverlay(overlayGeometry(P, this.store.plan.paths, g.columns, g.rows), el);
    const ov = overlayGeometry(P, paths, g.columns, g.rows);
    for (const o of ov) {
      const [a, b] = [o.entryPx, o.targetPx];
      if (![a[0], a[1], b[0], b[1]].every(Number.isFinite)) continue;
      const selected = o.id === this.store.selectedId;
      const grp = el('g', { class: `path${selected ? ' selected' : ''}`, 'data-path-id': o.id });
      const pts = o.outline.map((q) => `${q[0] + 0.5},${q[1] + 0.5}`).join(' ');
      if (o.outline.every((q) => Number.isFinite(q[0]) && Number.isFinite(q[1])))
        el('polygon', { points: pts, class: 'tool-outline' }, grp);
      el('line', { x1: a[0] + 0.5, y1: a[1] + 0.5, x2: b[0] + 0.5, y2: b[1] + 0.5, class: 'path-axis fluoro' }, grp);
      const ring = Math.max(3, o.ring.radiusPx);
      el(
        'circle',
        {
          cx: a[0] + 0.5,
          cy: a[1] + 0.5,
          r: ring + 2,
          class: `mark entry${o.endOn ? ' end-on' : ''}`,
          'data-end': 'entry',
          'data-col': a[0],
          'data-row': a[1],
        },
        grp,
      );
      el(
        'circle',
        {
          cx: b[0] + 0.5,
          cy: b[1] + 0.5,
          r: 2.5,
          class: 'mark target',
          'data-end': 'target',
          'data-col': b[0],
          'data-row': b[1],
        },
        grp,
      );
      const t = el('text', { x: a[0] + ring + 6, y: a[1] - ring - 4, class: 'path-label' }, grp);
      t.textContent = `${o.name}${o.endOn ? ' (end-on)' : ''}`;
    }
    // The placed instruments (verification scan) projected with the same matrix as the plan.
    for (const ins of this.store.instruments) {
      const a = projectPoint(P, ins.outerEnd),
        b = projectPoint(P, ins.tip);
      if (![a[0], a[1], b[0], b[1]].every(Number.isFinite)) continue;
      const grp = el('g', { class: `instrument ${ins.status}`, 'data-instrument-id': ins.id });
      el(
        'line',
        { x1: a[0] + 0.5, y1: a[1] + 0.5, x2: b[0] + 0.5, y2: b[1] + 0.5, class: 'instrument-body', 'stroke-width': 3 },
        grp,
      );
    }
  }
}
