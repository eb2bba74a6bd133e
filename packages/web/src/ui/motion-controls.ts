/**
 * The C-arm panel's motion rows: "Correct for motion" on the frame shown (a loaded XA/RF frame, or the
 * DRR view as a virtual frame), its progress and cancel, the verdict and the depth uncertainty of one
 * view; and "Simulate patient motion", a virtual frame of the patient moved by a known motion (rehearsal).
 */
import { mat4FromRows, mat4TransformPoint } from '@corridor/core';
import type { Shell } from '../shell.js';
import { FULL_SIZE, type FluoroView } from '../views/fluoro-view.js';
import { MotionCorrector, drrGray, simulatedMotion, virtualXa } from '../motion.js';
import type { MotionCorrection } from '../store.js';
import { fmt1 } from '../geometry.js';
import { find } from '../dom.js';

export class MotionControls {
  readonly corrector: MotionCorrector;
  private resultEl: HTMLElement;

  constructor(
    private root: HTMLElement,
    private shell: Shell,
    private fluoro: FluoroView,
  ) {
    const st = shell.app.store;
    this.corrector = new MotionCorrector(st);
    const box = document.createElement('div');
    box.className = 'motion-controls';
    box.innerHTML = `
      <div class="row"><label title="2D/3D registration of the planning scan to the frame shown">Motion</label><button
          data-action="correct-motion"
          title="Register the planning scan to the frame shown (the XA/RF frame, else the DRR view) and move the overlay"
          >Correct for motion</button><button data-action="cancel-motion" hidden>Cancel</button><button
          data-action="clear-motion" disabled>Clear correction</button></div>
      <div class="row"><label title="Rehearsal: a virtual frame of the patient moved by a known motion">Simulate</label
          ><input type="number" data-field="sim-mm" value="6" step="0.5" aria-label="Simulated shift, mm"><span
          class="unit">mm</span><input type="number" data-field="sim-deg" value="2" step="0.5"
          aria-label="Simulated rotation, degrees"><span class="unit">°</span><button data-action="simulate-motion"
          >Simulate patient motion</button></div>
      <div class="motion-result" data-testid="motion-result"></div>`;
    root.appendChild(box);
    this.resultEl = find(box, '[data-testid=motion-result]');
    box.addEventListener('click', (e) => {
      const a = (e.target as HTMLElement).closest('button')?.dataset.action;
      if (a === 'correct-motion') shell.run(() => this.correct());
      else if (a === 'cancel-motion') this.corrector.cancel();
      else if (a === 'clear-motion') st.clearMotionCorrection();
      else if (a === 'simulate-motion') shell.run(() => this.simulate());
    });
    st.on(['motion'], () => this.show());
    this.show();
  }

  private setRunning(on: boolean) {
    find<HTMLButtonElement>(this.root, '[data-action=correct-motion]').disabled = on;
    find(this.root, '[data-action=cancel-motion]').hidden = !on;
    this.root.dataset.motion = on ? 'running' : (this.shell.app.store.motionCorrection?.status ?? 'none');
  }

  /** The frame shown, as register2d takes it: the XA/RF frame (at the panel's table position) or the DRR view. */
  private currentFrame() {
    const st = this.shell.app.store;
    if (st.xa && this.fluoro.showXa)
      return {
        gray: st.xa.frame.gray,
        geometry: this.fluoro.overlayGeometry(),
        name: st.xa.name,
        simulatedMotion: st.xa.simulatedMotion,
      };
    const f = this.fluoro.lastFrame;
    if (!f) throw new Error('Correct for motion: no frame shown yet');
    // The DRR view becomes a virtual frame: the correction is shown over it.
    const xa = virtualXa('virtual frame (DRR view)', drrGray(f.lineIntegrals, f.geometry), f.geometry);
    st.xa = xa;
    this.fluoro.showXa = true;
    st.emit('xa');
    return { gray: xa.frame.gray, geometry: f.geometry, name: xa.name };
  }

  async correct(): Promise<MotionCorrection | null> {
    const st = this.shell.app.store;
    const frame = this.currentFrame();
    this.setRunning(true);
    try {
      const mc = await this.corrector.correct(frame, (done, total, label) =>
        this.shell.ui.status(`Correct for motion: ${label}`, { done, total }),
      );
      if (!mc) {
        this.shell.ui.message('info', 'Motion correction cancelled: nothing changed.');
        return null;
      }
      st.motionCorrection = mc;
      st.emit('motion');
      if (mc.status === 'failed')
        this.shell.ui.message('warning', `Motion correction failed, not applied: ${mc.reasons.join(' ')}`);
      return mc;
    } finally {
      this.setRunning(false);
      this.shell.ui.status('Ready', null);
    }
  }

  async simulate(): Promise<void> {
    const st = this.shell.app.store;
    const mm = Number(find<HTMLInputElement>(this.root, '[data-field=sim-mm]').value);
    const deg = Number(find<HTMLInputElement>(this.root, '[data-field=sim-deg]').value);
    if (!Number.isFinite(mm) || !Number.isFinite(deg) || Math.abs(mm) > 30 || Math.abs(deg) > 15)
      throw new Error('Simulate patient motion: a shift of at most 30 mm and a rotation of at most 15°');
    const g = this.fluoro.geometry(FULL_SIZE);
    const motion = simulatedMotion(mm, deg, st.carm.isocenter);
    const gray = await this.corrector.simulate(g, motion);
    st.xa = virtualXa(`virtual frame: patient moved ${fmt1(mm)} mm, ${fmt1(deg)}°`, gray, g, motion);
    this.fluoro.showXa = true;
    st.emit('xa');
  }

  private show() {
    const st = this.shell.app.store;
    const mc = st.motionCorrection;
    find<HTMLButtonElement>(this.root, '[data-action=clear-motion]').disabled = !mc;
    this.root.dataset.motion = this.corrector.running ? 'running' : (mc?.status ?? 'none');
    const el = this.resultEl;
    el.className = `motion-result${mc ? ` ${mc.status}` : ''}`;
    if (!mc) {
      el.textContent = '';
      return;
    }
    if (mc.status === 'failed') {
      el.textContent = `Motion correction FAILED on ${mc.frameName} (not applied): ${mc.reasons.join(' ')}`;
      return;
    }
    // The motion at the isocentre and its rotation angle, as the user reads them.
    const m = mat4FromRows(mc.planningToCurrent);
    const c = st.carm.isocenter;
    const q = mat4TransformPoint([0, 0, 0], m, c);
    const shift = Math.hypot(q[0] - c[0], q[1] - c[1], q[2] - c[2]);
    const r = mc.planningToCurrent;
    const angle = (Math.acos(Math.min(1, Math.max(-1, (r[0][0] + r[1][1] + r[2][2] - 1) / 2))) * 180) / Math.PI;
    const parts = [
      `Corrected for motion on ${mc.frameName}: ${fmt1(shift)} mm at the isocentre, ${fmt1(angle)}°` +
        ` (gradient correlation ${mc.similarity.toFixed(2)}, ${fmt1(mc.ms / 1000)} s). Kept until the next 3D run.`,
    ];
    if (mc.singleView) parts.push(`Depth along the beam ±${fmt1(mc.depthUncertaintyMm)} mm: take a second view.`);
    if (mc.errorVsSimulatedMm !== undefined)
      parts.push(`Against the simulated motion: path ends within ${fmt1(mc.errorVsSimulatedMm)} mm.`);
    el.textContent = parts.join(' ');
  }
}
