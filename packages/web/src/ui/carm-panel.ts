/**
 * The C-arm panel: primary and secondary angles (sliders and typed values, degrees), the system preset,
 * each path's bull's-eye and progress views (core's carm module), and loading a real XA/RF frame.
 */
import { CARM_PRESETS, bullseyeView, carmPreset, progressView, type CarmView } from '@corridor/core';
import type { Shell } from '../shell.js';
import type { FluoroView } from '../views/fluoro-view.js';
import { fmt1, fmtPoint } from '../geometry.js';
import { find } from '../dom.js';
import { escapeHtml } from '../html.js';
import { MotionControls } from './motion-controls.js';

export class CarmPanel {
  private primary: { range: HTMLInputElement; num: HTMLInputElement };
  private secondary: { range: HTMLInputElement; num: HTMLInputElement };
  private viewsEl: HTMLElement;
  private isoEl: HTMLElement;
  readonly motion: MotionControls;

  constructor(
    private root: HTMLElement,
    private shell: Shell,
    private fluoro: FluoroView,
  ) {
    const st = shell.app.store;
    const sys = fluoro.system;
    root.innerHTML = `
      <h2>C-arm</h2>
      <div class="fluoro-slot"></div>
      <div class="row"><label>Image</label><label
          title="Core's fluoroscopy model on full frames: quantum noise and edge enhancement (slower on a CPU)"
          ><input type="checkbox" data-field="realistic"> quantum noise and edge enhancement</label></div>
      <div class="row"><label>System</label><select data-field="preset">${Object.values(CARM_PRESETS)
        .map((p) => `<option value="${p.id}">${p.name}</option>`)
        .join('')}</select></div>
      <div class="row"><label title="Primary angle: LAO positive, RAO negative">Primary</label><input
          type="range" data-field="primary-range" step="0.5"><input
          type="number" data-field="primary" step="0.5" aria-label="Primary angle, degrees"><span
          class="unit">° <span data-field="primary-name"></span></span></div>
      <div class="row"><label title="Secondary angle: cranial positive, caudal negative">Secondary</label><input
          type="range" data-field="secondary-range" step="0.5"><input
          type="number" data-field="secondary" step="0.5" aria-label="Secondary angle, degrees"><span
          class="unit">° <span data-field="secondary-name"></span></span></div>
      <div class="row"><label>Isocentre</label><span data-field="iso"></span><button
          data-action="iso-crosshair" title="Move the table so the crosshair is at the isocentre (I)"
          >to crosshair<kbd>I</kbd></button><button data-action="ap" title="AP view (0°, 0°)">AP</button><button
          data-action="lat" title="Lateral (LAO 90°)">Lateral</button><button data-action="inlet"
          title="This patient's inlet view: S1 and S2 anterior cortex superimposed (cranial tilt)">Inlet</button
          ><button data-action="outlet"
          title="This patient's outlet view: the sacrum face-on, foramina as rings (caudal tilt)">Outlet</button></div>
      <table class="views-table"><thead><tr><th>Path</th><th>Bull's-eye <kbd>E</kbd></th><th
          >Progress <kbd>G</kbd></th></tr></thead><tbody></tbody></table>
      <div class="row"><label>XA/RF frame</label><input type="file" data-field="xa" accept=".dcm,application/dicom,*/*"
          ><button data-action="toggle-xa" disabled>Show DRR</button></div>`;
    find(root, '.fluoro-slot').appendChild(fluoro.root);
    this.motion = new MotionControls(root, shell, fluoro);
    const q = <T extends HTMLElement>(s: string) => find<T>(root, `[data-field=${s}]`);
    this.primary = { range: q('primary-range'), num: q('primary') };
    this.secondary = { range: q('secondary-range'), num: q('secondary') };
    this.viewsEl = find(root, '.views-table tbody');
    this.isoEl = q('iso');
    this.setLimits();
    const bind = (pair: { range: HTMLInputElement; num: HTMLInputElement }, key: 'primaryDeg' | 'secondaryDeg') => {
      // Slider: live (coarse frames while it moves); typed value: applied on Enter/blur, checked against the limits.
      pair.range.addEventListener('input', () => st.setCarm({ [key]: Number(pair.range.value) }));
      pair.range.addEventListener('change', () => this.fluoro.update(false));
      pair.num.addEventListener('change', () => {
        const v = Number(pair.num.value);
        const lim = key === 'primaryDeg' ? this.fluoro.system.primaryLimitsDeg : this.fluoro.system.secondaryLimitsDeg;
        if (!Number.isFinite(v) || v < lim[0] || v > lim[1]) {
          shell.ui.message(
            'error',
            `${key === 'primaryDeg' ? 'Primary' : 'Secondary'} angle ${pair.num.value}° ` +
              `is outside this C-arm's range ${lim[0]}° to ${lim[1]}°.`,
          );
          pair.num.value = String(st.carm[key]);
          return;
        }
        st.setCarm({ [key]: v });
        this.fluoro.update(false);
      });
    };
    bind(this.primary, 'primaryDeg');
    bind(this.secondary, 'secondaryDeg');
    q<HTMLInputElement>('realistic').addEventListener('change', (e) => {
      this.fluoro.realistic = (e.target as HTMLInputElement).checked;
      this.fluoro.update(false);
    });
    q<HTMLSelectElement>('preset').value = sys.id;
    q<HTMLSelectElement>('preset').addEventListener('change', (e) => {
      this.fluoro.system = carmPreset((e.target as HTMLSelectElement).value);
      this.setLimits();
      this.fluoro.update(false);
      this.renderViews();
    });
    root.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest('button');
      if (!b) return;
      const a = b.dataset.action;
      if (a === 'iso-crosshair') this.isoToCrosshair();
      else if (a === 'ap') this.go({ primaryDeg: 0, secondaryDeg: 0 });
      else if (a === 'lat') this.go({ primaryDeg: 90, secondaryDeg: 0 });
      else if (a === 'inlet' || a === 'outlet') shell.run(() => this.goToPelvicView(a));
      else if (a === 'toggle-xa') {
        this.fluoro.showXa = !this.fluoro.showXa;
        b.textContent = this.fluoro.showXa ? 'Show DRR' : 'Show XA';
        this.fluoro.update(false);
      } else if ((a === 'bullseye' || a === 'progress') && b.dataset.pathId) this.goToView(b.dataset.pathId, a);
    });
    q<HTMLInputElement>('xa').addEventListener('change', (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (f) shell.run(() => shell.loadXa(f));
    });
    st.on(['carm'], () => this.sync());
    st.on(['plan', 'selection'], () => this.renderViews());
    st.on(['xa'], () => {
      const b = find<HTMLButtonElement>(root, '[data-action=toggle-xa]');
      b.disabled = !st.xa;
      b.textContent = this.fluoro.showXa ? 'Show DRR' : 'Show XA';
    });
    this.sync();
    this.renderViews();
  }

  private setLimits() {
    const s = this.fluoro.system;
    for (const [pair, lim] of [
      [this.primary, s.primaryLimitsDeg],
      [this.secondary, s.secondaryLimitsDeg],
    ] as const) {
      pair.range.min = pair.num.min = String(lim[0]);
      pair.range.max = pair.num.max = String(lim[1]);
    }
  }

  private sync() {
    const c = this.shell.app.store.carm;
    this.primary.range.value = String(c.primaryDeg);
    this.secondary.range.value = String(c.secondaryDeg);
    if (document.activeElement !== this.primary.num) this.primary.num.value = c.primaryDeg.toFixed(1);
    if (document.activeElement !== this.secondary.num) this.secondary.num.value = c.secondaryDeg.toFixed(1);
    const primaryName = c.primaryDeg > 0 ? 'LAO' : c.primaryDeg < 0 ? 'RAO' : '';
    const secondaryName = c.secondaryDeg > 0 ? 'CRAN' : c.secondaryDeg < 0 ? 'CAUD' : '';
    find(this.root, '[data-field=primary-name]').textContent = primaryName;
    find(this.root, '[data-field=secondary-name]').textContent = secondaryName;
    this.isoEl.textContent = fmtPoint(c.isocenter);
  }

  go(pose: { primaryDeg?: number; secondaryDeg?: number; isocenter?: [number, number, number] }): void {
    this.shell.app.store.setCarm(pose);
    this.fluoro.update(false);
  }

  isoToCrosshair(): void {
    this.go({ isocenter: [...this.shell.app.store.crosshair] as [number, number, number] });
  }

  /** Move the C-arm to a path's bull's-eye or progress view (core computes the angles and table position). */
  goToView(pathId: string, which: 'bullseye' | 'progress'): CarmView | null {
    const st = this.shell.app.store;
    const p = st.plan.paths.find((x) => x.id === pathId);
    if (!p) return null;
    const v = which === 'bullseye' ? bullseyeView(p, this.fluoro.system) : progressView(p, this.fluoro.system);
    if (!v.reachable) {
      const alt = v.alternative;
      const view = which === 'bullseye' ? "bull's-eye" : 'progress';
      const nearest = alt
        ? `; nearest reachable: ${fmt1(alt.primaryDeg)}°, ${fmt1(alt.secondaryDeg)}° (${fmt1(alt.errorDeg)}° off)`
        : '';
      this.shell.ui.message(
        'warning',
        `${p.name}: the ${view} view (${fmt1(v.primaryDeg)}°, ${fmt1(v.secondaryDeg)}°) ` +
          `is beyond this C-arm's limits${nearest}. Showing it anyway.`,
      );
    }
    st.select(p.id);
    this.go({ primaryDeg: v.primaryDeg, secondaryDeg: v.secondaryDeg, isocenter: v.isocenter });
    this.root.dataset.lastView = `${which}:${p.id}`;
    return v;
  }

  /** Move the C-arm to the patient's inlet or outlet view (core's pelvicViews, run in the case worker). */
  async goToPelvicView(which: 'inlet' | 'outlet'): Promise<CarmView> {
    const r = await this.shell.app.pelvicViews(this.fluoro.system);
    const v = r[which];
    const name = which === 'inlet' ? 'Inlet' : 'Outlet';
    if (!v.reachable) {
      const alt = v.alternative;
      const nearest = alt
        ? `; nearest reachable: ${fmt1(alt.primaryDeg)}°, ${fmt1(alt.secondaryDeg)}° (${fmt1(alt.errorDeg)}° off)`
        : '';
      this.shell.ui.message(
        'warning',
        `${name} view (${fmt1(v.primaryDeg)}°, ${fmt1(v.secondaryDeg)}°) is beyond this C-arm's limits${nearest}. ` +
          'Showing it anyway.',
      );
    }
    for (const n of r.notes) this.shell.ui.message('warning', `${name} view: ${n}`);
    this.go({ primaryDeg: v.primaryDeg, secondaryDeg: v.secondaryDeg, isocenter: v.isocenter });
    this.root.dataset.lastView = which;
    return v;
  }

  private renderViews() {
    const st = this.shell.app.store;
    this.viewsEl.replaceChildren();
    for (const p of st.plan.paths) {
      const tr = document.createElement('tr');
      tr.innerHTML =
        `<td></td><td><button data-action="bullseye" data-path-id="${escapeHtml(p.id)}">Bull's-eye</button></td>` +
        `<td><button data-action="progress" data-path-id="${escapeHtml(p.id)}">Progress</button></td>`;
      find(tr, 'td').textContent = p.name;
      if (p.id === st.selectedId) tr.classList.add('selected');
      this.viewsEl.appendChild(tr);
    }
  }
}
