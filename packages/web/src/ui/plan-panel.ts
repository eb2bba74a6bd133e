/**
 * The plan panel: the paths with their safety figures (from core's analysis), the selected path's
 * tool and name, its clearance along the path, and each breach as a warning that jumps to it.
 */
import {
  BONE_MASK_PRESETS,
  BONE_MASK_PRESET_NAMES,
  GAUGE_OUTER_DIAMETER_MM,
  MAX_TOOL_DIAMETER_MM,
  TOOL_KINDS,
  DEFAULT_TOOLS,
  clearanceBand,
  pathLengthMm,
  type BoneMaskPresetName,
  type ClearanceBand,
  type ToolKind,
} from '@corridor/core';
import type { Shell } from '../shell.js';
import { fmt1, fmtPoint } from '../geometry.js';
import { clearanceColor } from './colors.js';
import { context2d, find } from '../dom.js';
import { escapeHtml } from '../html.js';

/**
 * A number cell of the analysis table: shown to 0.1 mm, with the full value in data-value-mm (what the e2e
 * tests compare with core's analysis; String(number) round-trips exactly).
 */
const mmCell = (testid: string, mm: number | null, cls = ''): string =>
  `<td class="num ${cls}" data-testid="${testid}" data-value-mm="${mm}">${fmt1(mm ?? NaN)} mm</td>`;

const TIP_TITLE =
  "Where the tool's tip ends against the nearest boundary of bone (the cortex or a critical structure): " +
  "core's tip clearance, the clearance radius at the target minus the tool's radius. Inside = the tip's " +
  'surface stays this far short of it; beyond = the tip reaches this far past it, as a trans-sacral ' +
  "screw's tip does through the far cortex. The fit verdict leaves the cortex zone at each end out.";

/** The tip's signed clearance said in words: "2.1 mm inside bone" or "4.4 mm beyond the bone boundary". */
const tipCell = (mm: number): string => {
  const words = !Number.isFinite(mm)
    ? '–'
    : mm >= 0
      ? `${fmt1(mm)} mm inside bone`
      : `${fmt1(-mm)} mm beyond the bone boundary`;
  return `<td class="num" data-testid="tip-clearance" data-value-mm="${mm}" title="${TIP_TITLE}">${words}</td>`;
};

/** CSS class of a minimum clearance, by core's clearance band. */
const BAND_CLASS: Record<ClearanceBand, string> = {
  outside: 'muted',
  breach: 'bad',
  margin: 'warn',
  near: 'ok',
  room: 'ok',
};

export class PlanPanel {
  private list: HTMLElement;
  private editor: HTMLElement;
  private reportEl: HTMLElement;

  constructor(
    private root: HTMLElement,
    private app: Shell,
  ) {
    const planAtTitle =
      'Plan one path with its seed at the crosshair: ' +
      'put the crosshair in the S1 or S2 body (or the ala) first (Shift+P)';
    const boneMaskOptions = BONE_MASK_PRESET_NAMES.map(
      (n) => `<option value="${n}" title="${BONE_MASK_PRESETS[n].description}">${BONE_MASK_PRESETS[n].label}</option>`,
    ).join('');
    root.innerHTML = `
      <h2>Plan</h2>
      <div class="row">
        <button data-action="auto" title="Plan S1, S2 and both alar paths automatically (P)"
          >Auto plan<kbd>P</kbd></button>
        <button data-action="add" title="Add a path: click its entry, then its target, in any view (A)"
          >Add path<kbd>A</kbd></button>
        <button data-action="delete" title="Delete the selected path (Del)">Delete<kbd>Del</kbd></button>
        <span title="${planAtTitle}"><select data-field="plan-at"><option value="s1">S1</option><option
            value="s2">S2</option><option value="alar-left">Alar left</option><option
            value="alar-right">Alar right</option></select><button data-action="plan-at"
            >Plan at crosshair<kbd>Shift+P</kbd></button></span>
        <label title="Required clearance between the tool's surface and any critical structure">Margin <input
            type="number" data-field="margin" min="0" max="10" step="0.5" value="1"> <span
            class="unit">mm</span></label>
      </div>
      <div class="row" data-testid="bone-mask-row" hidden>
        <label
          title="This case has no segmentation: bone is found from the CT's intensities, with these settings"
          >Bone from intensities
          <select data-field="bone-mask">${boneMaskOptions}</select></label>
      </div>
      <table class="path-list"><thead><tr><th>Path</th><th>Tool</th><th class="num">Length</th><th
          class="num">Min clearance</th><th></th></tr></thead><tbody></tbody></table>
      <div class="editor"></div>
      <div class="report" data-testid="report"></div>`;
    this.list = find(root, 'tbody');
    this.editor = find(root, '.editor');
    this.reportEl = find(root, '.report');
    find(root, '[data-field=margin]').addEventListener('change', (e) => {
      const v = Number((e.target as HTMLInputElement).value);
      if (!(v >= 0 && v <= 10)) {
        app.ui.message('error', `Margin ${(e.target as HTMLInputElement).value} mm is not between 0 and 10 mm.`);
        return;
      }
      app.app.setMargin(v);
    });
    const mask = find<HTMLSelectElement>(root, '[data-field=bone-mask]');
    mask.addEventListener('change', () => app.app.setBoneMask(mask.value as BoneMaskPresetName));
    app.app.store.on('volume', () => {
      const st = app.app.store;
      find(root, '[data-testid=bone-mask-row]').hidden = !st.caseInfo || st.caseInfo.hasLabels;
      mask.value = st.boneMask;
    });
    root.addEventListener('click', (e) => {
      const t = (e.target as HTMLElement).closest('button');
      if (!t) return;
      const a = t.dataset.action;
      if (a === 'auto') app.run(() => app.app.autoPlan());
      else if (a === 'plan-at') {
        const at = find<HTMLSelectElement>(root, '[data-field=plan-at]').value as 's1';
        app.run(() => app.app.autoPlan(at));
      } else if (a === 'add') app.toggleAddMode();
      else if (a === 'delete') app.app.deleteSelected();
    });
    const st = app.app.store;
    st.on(['plan', 'selection', 'reports'], () => this.render());
    this.render();
  }

  private render() {
    const st = this.app.app.store;
    this.list.replaceChildren();
    for (const p of st.plan.paths) {
      const rep = st.reports.get(p.id);
      const tr = document.createElement('tr');
      tr.dataset.pathId = p.id;
      if (p.id === st.selectedId) tr.classList.add('selected');
      const clear = rep ? rep.analysis.minClearanceMm : NaN;
      const cls = !rep
        ? 'muted'
        : rep.analysis.breaches.length
          ? 'bad'
          : BAND_CLASS[clearanceBand(clear ?? NaN, rep.analysis.marginMm)];
      const lengthMm = fmt1(pathLengthMm(p));
      const state = !rep
        ? ''
        : rep.analysis.breaches.length
          ? `<span class="bad" title="breach">⚠ ${rep.analysis.breaches.length}</span>`
          : rep.analysis.fits
            ? '<span class="ok">fits</span>'
            : '<span class="warn">tight</span>';
      const tool = `${escapeHtml(p.kind)} ${fmt1(p.diameterMm)} mm`;
      tr.innerHTML = `<td></td><td>${tool}</td><td class="num">${lengthMm} mm</td>
        <td class="num ${cls}" data-testid="min-clearance">${rep ? `${fmt1(clear ?? NaN)} mm` : '…'}</td>
        <td>${state}</td>`;
      find(tr, 'td').textContent = p.name;
      tr.addEventListener('click', () => st.select(p.id));
      this.list.appendChild(tr);
    }
    this.renderEditor();
    this.renderReport();
  }

  private renderEditor() {
    const st = this.app.app.store;
    const p = st.selected;
    this.editor.replaceChildren();
    if (!p) {
      const hint = st.plan.paths.length
        ? 'Select a path.'
        : 'No paths yet: Auto plan, or Add path and click entry then target in a view.';
      this.editor.innerHTML = `<p class="muted">${hint}</p>`;
      return;
    }
    const kinds = TOOL_KINDS.map((k) => `<option value="${k}">${k}</option>`).join('');
    this.editor.innerHTML = `
      <div class="row"><label>Name</label><input data-field="name" style="flex:1"></div>
      <div class="row"><label>Tool</label><select data-field="kind">${kinds}</select>
        <input type="number" data-field="diameter" min="0.3" max="${MAX_TOOL_DIAMETER_MM}"
          step="0.1"> <span class="unit">mm</span>
        <select data-field="gauge" title="Needle gauge"><option value="">gauge…</option>${Object.entries(
          GAUGE_OUTER_DIAMETER_MM,
        )
          .map(([g, d]) => `<option value="${g}">${g} G (${d.toFixed(2)} mm)</option>`)
          .join('')}</select></div>
      <div class="row"><label>Entry</label><span class="coord">${fmtPoint(p.entry)}</span><button
          data-go="entry">Go</button></div>
      <div class="row"><label>Target</label><span class="coord">${fmtPoint(p.target)}</span><button
          data-go="target">Go</button></div>`;
    const name = find<HTMLInputElement>(this.editor, '[data-field=name]');
    name.value = p.name;
    name.addEventListener('change', () => st.updatePath(p.id, { name: name.value.trim() || p.id }));
    const kind = find<HTMLSelectElement>(this.editor, '[data-field=kind]');
    kind.value = p.kind;
    kind.addEventListener('change', () => {
      const k = kind.value as ToolKind;
      st.updatePath(p.id, { kind: k, diameterMm: DEFAULT_TOOLS[k].diameterMm });
    });
    const dia = find<HTMLInputElement>(this.editor, '[data-field=diameter]');
    dia.value = p.diameterMm.toFixed(2);
    dia.addEventListener('change', () => {
      const d = Number(dia.value);
      if (!(d > 0 && d <= MAX_TOOL_DIAMETER_MM)) {
        const msg = `Diameter ${dia.value} mm must be a number above 0 and at most ${MAX_TOOL_DIAMETER_MM} mm.`;
        this.app.ui.message('error', msg);
        dia.value = p.diameterMm.toFixed(2);
        return;
      }
      st.updatePath(p.id, { diameterMm: d });
    });
    const gauge = find<HTMLSelectElement>(this.editor, '[data-field=gauge]');
    gauge.addEventListener('change', () => {
      const d = GAUGE_OUTER_DIAMETER_MM[Number(gauge.value)];
      if (d) st.updatePath(p.id, { diameterMm: d });
    });
    this.editor.querySelectorAll<HTMLButtonElement>('[data-go]').forEach((b) =>
      b.addEventListener('click', () => {
        const end = b.dataset.go as 'entry' | 'target';
        st.setCrosshair(p[end]);
        st.pathDepthMm = end === 'entry' ? 0 : pathLengthMm(p);
        st.emit('pathDepth');
      }),
    );
  }

  private renderReport() {
    const st = this.app.app.store;
    const p = st.selected;
    this.reportEl.replaceChildren();
    if (!p) return;
    const rep = st.reports.get(p.id);
    if (!rep) {
      this.reportEl.innerHTML = `<p class="muted">${st.analyzing ? 'Analysing…' : 'No analysis yet.'}</p>`;
      return;
    }
    const a = rep.analysis;
    const stale = !this.app.app.analysisCurrent;
    const minClass = BAND_CLASS[clearanceBand(a.minClearanceMm ?? NaN, a.marginMm)];
    const verdict = a.fits
      ? `fits with a ${fmt1(a.marginMm)} mm margin`
      : a.breaches.length
        ? 'BREACH: does not fit'
        : `does not fit: clearance below the ${fmt1(a.marginMm)} mm margin`;
    const profileTitle =
      'Clearance along the path from entry (left) to target (right): red = cuts into a structure, ' +
      'orange = inside the margin, yellow = within 2 mm of it, green = room, grey = outside bone';
    this.reportEl.innerHTML = `
      <table data-testid="analysis" data-path-id="${escapeHtml(p.id)}" data-min-clearance-mm="${a.minClearanceMm}"
        class="${stale ? 'muted' : ''}">
        <tr><th>Length</th>${mmCell('length', a.lengthMm)}
          <th>In bone</th>${mmCell('in-bone', a.inBoneMm)}</tr>
        <tr><th>Bone to bone</th>${mmCell('bone-to-bone', a.boneToBoneMm)}
          <th>Widest tool</th>${mmCell('widest-tool', a.maxDiameterMm)}</tr>
        <tr><th>Min clearance</th>${mmCell('selected-min-clearance', a.minClearanceMm, minClass)}
          <th title="${TIP_TITLE}">Tip</th>${tipCell(a.tipClearanceMm)}</tr>
        <tr><th>Verdict</th><td colspan="3" data-testid="verdict" data-fits="${a.fits}"
          class="${a.fits ? 'ok' : 'bad'}">${verdict}</td></tr>
      </table>
      <div class="row"><label>Clearance</label><canvas class="profile" width="360" height="18"
        title="${profileTitle}"></canvas></div>`;
    this.drawProfile(find<HTMLCanvasElement>(this.reportEl, 'canvas'), rep.profile.clearanceMm, a.marginMm);
    for (const b of a.breaches) {
      const btn = document.createElement('button');
      btn.className = 'breach';
      btn.dataset.testid = 'breach';
      btn.textContent =
        `⚠ ${b.structure}: ${fmt1(b.depthMm)} mm deep, ` +
        `${fmt1(b.fromMm)}–${fmt1(b.toMm)} mm from the entry (click to go there)`;
      btn.addEventListener('click', () => {
        st.setCrosshair(b.at);
        st.pathDepthMm = (b.fromMm + b.toMm) / 2;
        st.emit('pathDepth');
      });
      this.reportEl.appendChild(btn);
    }
    for (const n of a.notes) {
      const d = document.createElement('div');
      d.className = 'muted';
      d.textContent = n;
      this.reportEl.appendChild(d);
    }
  }

  private drawProfile(c: HTMLCanvasElement, values: (number | null)[], marginMm: number) {
    const ctx = context2d(c);
    ctx.clearRect(0, 0, c.width, c.height);
    const n = values.length;
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = clearanceColor(values[i], marginMm);
      ctx.fillRect(Math.floor((i / n) * c.width), 0, Math.ceil(c.width / n) + 1, c.height);
    }
  }
}
