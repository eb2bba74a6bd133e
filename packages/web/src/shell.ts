/**
 * The page around the views: toolbar, status bar, messages (errors stay until dismissed), file
 * opening (buttons and drag and drop, DICOM folders included), series choice, keyboard shortcuts.
 */
import { UsageError, coordinateForms, formatCoordinateForms, parsePointLps, type NamedBytes } from '@corridor/core';
import { App, type AppUi, type MessageKind } from './app.js';
import { WINDOW_PRESETS } from './store.js';
import { PlaneView, type PlaneKind } from './views/plane-view.js';
import { FluoroView } from './views/fluoro-view.js';
import { View3d } from './views/view3d.js';
import { PlanPanel } from './ui/plan-panel.js';
import { CarmPanel } from './ui/carm-panel.js';
import { ProcedurePanel } from './ui/procedure-panel.js';
import { CasePanel } from './ui/case-panel.js';
import { PacsPanel, sidePanel } from './ui/pacs-panel.js';
import { ReportPanel } from './ui/report-panel.js';
import { loadXaFrame } from './xa.js';
import type { SeriesSummary } from './types.js';
import { fmt1 } from './geometry.js';
import { byId, find, readAll } from './dom.js';
import { escapeHtml } from './html.js';

/** How long an information notice stays, ms (errors and warnings stay until dismissed). */
const INFO_MS = 6000;

const SHORTCUTS: [string, string][] = [
  ['A', 'add a path: click entry, then target'],
  ['Esc', 'cancel adding'],
  ['P', 'automatic plan (S1, S2, both alar paths)'],
  ['Shift+P', 'plan the selected sacral path (or S1) with its seed at the crosshair'],
  ['Del', 'delete the selected path'],
  ['N / Shift+N', 'next / previous path'],
  ['E / G', "bull's-eye / progress view of the selected path"],
  ['← → / ↑ ↓', 'C-arm primary / secondary angle ±1° (Shift: ±5°)'],
  ['I', 'isocentre to the crosshair'],
  ['B / T', 'bone / soft-tissue window'],
  ['Ctrl+Z / Ctrl+Y', 'undo / redo'],
  ['Ctrl+S', 'save the plan (JSON)'],
  ['Ctrl+O', 'open images'],
  ['?', 'this help'],
  [
    'Mouse',
    'left: crosshair or drag a path end · Shift+left / middle: pan · right: window/level · ' +
      'wheel: slice (Ctrl: zoom) · double click: fit',
  ],
];

export class Shell {
  readonly app: App;
  readonly ui: AppUi;
  readonly views: PlaneView[] = [];
  readonly fluoro: FluoroView;
  readonly view3d: View3d;
  carmPanel!: CarmPanel;

  constructor() {
    this.ui = {
      message: (kind, text) => this.message(kind, text),
      status: (text, progress) => this.status(text, progress),
      chooseSeries: (s) => this.chooseSeries(s),
      openXa: (f) => this.openXa(f, false),
    };
    this.app = new App(this.ui);
    const params = new URLSearchParams(location.search);
    this.buildToolbar();
    const viewsEl = byId('views');
    const hooks = {
      isAddMode: () => !!this.app.addMode,
      onAddPoint: (p: [number, number, number]) => this.addPoint(p),
    };
    for (const k of ['axial', 'sagittal', 'coronal', 'along', 'across'] as PlaneKind[]) {
      const v = new PlaneView(k, this.app.store, hooks);
      this.views.push(v);
      viewsEl.appendChild(v.root);
    }
    this.view3d = new View3d(this.app.store);
    viewsEl.appendChild(this.view3d.root);
    // ?renderer=cpu forces the CPU path; ?renderer=gl-any accepts software WebGL (tests of the shader).
    this.fluoro = new FluoroView(this.app.store, {
      forceCpu: params.get('renderer') === 'cpu',
      allowSoftwareGl: params.get('renderer') === 'gl-any',
    });
    this.fluoro.onError = (e) => this.error(e);
    this.carmPanel = new CarmPanel(byId('fluoro-panel'), this, this.fluoro);
    new PlanPanel(byId('plan-panel'), this);
    new ProcedurePanel(byId('procedure-panel'), this);
    new CasePanel(byId('case-panel'), this);
    new PacsPanel(sidePanel('pacs-panel'), this);
    new ReportPanel(sidePanel('report-panel'), this);
    this.bindKeys();
    this.bindDrop();
    window.addEventListener('error', (e) => this.message('error', `Unexpected error: ${e.message}`));
    window.addEventListener('unhandledrejection', (e) => this.error(e.reason));
    this.buildCoordinates();
    this.app.store.on(['plan'], () => this.syncUndo());
  }

  /** Run an action (sync, or async: a returned promise); any error is shown to the user. */
  run(fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((e) => this.error(e));
    } catch (e) {
      this.error(e);
    }
  }

  error(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (err.name === 'CancelledError') return this.message('info', err.message);
    console.error(err);
    this.message('error', `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}`);
  }

  message(kind: MessageKind, text: string): void {
    const box = byId('messages');
    const m = document.createElement('div');
    m.className = `message ${kind}`;
    m.dataset.kind = kind;
    m.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    const body = document.createElement('div');
    body.className = 'message-text';
    body.textContent = text;
    // The whole text on hover, where a long file name is cut short.
    m.title = text;
    const close = document.createElement('button');
    close.textContent = '×';
    close.title = 'Dismiss';
    close.setAttribute('aria-label', 'Dismiss');
    close.dataset.action = 'dismiss';
    close.addEventListener('click', () => m.remove());
    m.append(body, close);
    // The same text twice (e.g. one failure reported by several views) is shown once.
    for (const old of box.querySelectorAll<HTMLElement>('.message'))
      if (old.dataset.kind === kind && old.title === text) old.remove();
    box.appendChild(m);
    // Errors and warnings stay until dismissed; information fades.
    if (kind === 'info') setTimeout(() => m.remove(), INFO_MS);
    while (box.children.length > 4) box.firstElementChild?.remove();
  }

  /**
   * The crosshair in the status bar in three forms (LPS mm, RAS mm as 3D Slicer shows it, voxel index)
   * and a field to type one (lps:x,y,z, ras:x,y,z, ijk:i,j,k; bare = LPS): core's coordinate forms, the
   * same reader as the CLI's --seed.
   */
  private buildCoordinates() {
    const st = this.app.store;
    const coords = byId('coords');
    const input = document.createElement('input');
    input.type = 'text';
    input.dataset.field = 'goto';
    input.placeholder = 'go to lps:x,y,z · ras:x,y,z · ijk:i,j,k';
    input.title =
      'Move the crosshair: LPS mm (lps:x,y,z or bare x,y,z), RAS mm as 3D Slicer shows it (ras:x,y,z), ' +
      "or the image's voxel index (ijk:i,j,k); Enter to go";
    input.setAttribute('aria-label', 'Go to a point');
    coords.after(input);
    input.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      this.run(() => {
        const v = st.volume;
        if (!v) throw new UsageError('no image is open', 'crosshair');
        st.setCrosshair(parsePointLps(input.value, v, 'crosshair'));
        input.value = '';
      });
    });
    st.on(['crosshair', 'volume'], () => {
      const v = st.volume;
      const c = st.crosshair;
      const lps = `crosshair ${fmt1(c[0])}, ${fmt1(c[1])}, ${fmt1(c[2])} mm (LPS)`;
      if (!v) {
        coords.textContent = lps;
        return;
      }
      const f = coordinateForms(v, c);
      const t = formatCoordinateForms(f);
      coords.textContent = `${lps} · ${t.ras.replace('ras:', 'RAS ')} mm · ${t.ijk.replace('ijk:', 'voxel ')}`;
      coords.dataset.lps = f.lps.join(',');
      coords.dataset.ras = f.ras.join(',');
      coords.dataset.ijk = f.ijk.join(',');
    });
  }

  status(text: string, progress?: { done: number; total: number } | null): void {
    byId('status').textContent = text;
    const p = document.getElementById('progress') as HTMLProgressElement;
    if (progress) {
      p.hidden = false;
      p.max = Math.max(1, progress.total);
      p.value = progress.done;
    } else p.hidden = true;
  }

  private buildToolbar() {
    const tb = byId('toolbar');
    tb.innerHTML = `
      <span class="brand">Corridor</span><span class="case-name" data-field="case"></span>
      <div class="group">
        <button data-action="phantom" title="Open the embedded phantom case">Phantom</button>
        <button
          data-action="open-images"
          title="Open a NIfTI / NRRD file or DICOM files (Ctrl+O); or drop them on the window"
        >Open images…<kbd>Ctrl+O</kbd></button>
        <button data-action="open-folder" title="Open a DICOM folder">Open folder…</button>
        <input type="file" data-field="images" multiple hidden>
        <input type="file" data-field="folder" webkitdirectory multiple hidden>
      </div>
      <div class="group">
        <button data-action="open-plan" title="Open a plan (plan.json or 3D Slicer .mrk.json)">Open plan…</button>
        <input type="file" data-field="plan" accept=".json" hidden>
        <button data-action="save-json" title="Save the plan as JSON (Ctrl+S)">Save plan<kbd>Ctrl+S</kbd></button>
        <button data-action="save-mrk" title="Save the plan as 3D Slicer markups (.mrk.json, LPS)"
          >Save .mrk.json</button>
      </div>
      <div class="group">
        <button data-action="undo" title="Undo (Ctrl+Z)" disabled>Undo</button>
        <button data-action="redo" title="Redo (Ctrl+Y)" disabled>Redo</button>
      </div>
      <div class="group">
        <span class="muted">Window</span>
        <button data-action="wl-bone" title="Bone window (B)">Bone<kbd>B</kbd></button>
        <button data-action="wl-soft" title="Soft-tissue window (T)">Soft tissue<kbd>T</kbd></button>
        <label>C <input type="number" data-field="wl-center" step="10"> <span class="unit">HU</span></label>
        <label>W <input type="number" data-field="wl-width" step="10" min="1"> <span class="unit">HU</span></label>
      </div>
      <button class="only-short" data-action="procedure"
        title="Verification, cement and 3D run (over the plan's half of the side panel)">Procedure</button>
      <button data-action="help" title="Keyboard shortcuts (?)">?</button>`;
    const q = <T extends HTMLElement>(s: string) => find<T>(tb, `[data-field=${s}]`);
    const st = this.app.store;
    tb.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest('button');
      if (!b) return;
      switch (b.dataset.action) {
        case 'phantom':
          return this.run(() => this.app.openPhantom());
        case 'open-images':
          return q<HTMLInputElement>('images').click();
        case 'open-folder':
          return q<HTMLInputElement>('folder').click();
        case 'open-plan':
          return q<HTMLInputElement>('plan').click();
        case 'save-json':
          return this.run(() => this.download('plan.json', this.app.planJsonText()));
        case 'save-mrk':
          return this.run(() => this.download('plan.mrk.json', this.app.planMarkupsText()));
        case 'undo':
          return st.undo();
        case 'redo':
          return st.redo();
        case 'wl-bone':
          return st.setWindow(WINDOW_PRESETS.bone);
        case 'wl-soft':
          return st.setWindow(WINDOW_PRESETS.soft);
        case 'help':
          return this.showHelp();
      }
    });
    for (const f of ['images', 'folder']) {
      q<HTMLInputElement>(f).addEventListener('change', (e) => {
        const input = e.target as HTMLInputElement;
        const files = [...(input.files ?? [])];
        input.value = '';
        if (files.length) this.run(async () => this.app.openFiles(await readAll(files)));
      });
    }
    q<HTMLInputElement>('plan').addEventListener('change', (e) => {
      const input = e.target as HTMLInputElement;
      const f = input.files?.[0];
      input.value = '';
      if (f) this.run(async () => this.app.openPlanText(f.name, await f.text()));
    });
    const c = q<HTMLInputElement>('wl-center'),
      w = q<HTMLInputElement>('wl-width');
    st.on(['window'], () => {
      c.value = String(Math.round(st.window.centerHu));
      w.value = String(Math.round(st.window.widthHu));
    });
    const apply = () => {
      const cv = Number(c.value),
        wv = Number(w.value);
      if (!Number.isFinite(cv) || !(wv >= 1)) {
        this.message(
          'error',
          `Window ${w.value} HU / level ${c.value} HU: the width must be at least 1 HU and both must be numbers.`,
        );
        return;
      }
      st.setWindow({ centerHu: cv, widthHu: wv });
    };
    c.addEventListener('change', apply);
    w.addEventListener('change', apply);
    st.on(['volume'], () => (q('case').textContent = st.caseInfo ? `· ${st.caseInfo.name}` : ''));
  }

  private syncUndo() {
    const st = this.app.store;
    find<HTMLButtonElement>(document, '[data-action=undo]').disabled = !st.canUndo;
    find<HTMLButtonElement>(document, '[data-action=redo]').disabled = !st.canRedo;
  }

  download(name: string, text: string): void {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    this.message('info', `Saved ${name} (${this.app.store.plan.paths.length} path(s)).`);
  }

  toggleAddMode(): void {
    this.app.addMode = this.app.addMode ? null : { entry: null };
    document.querySelector('[data-action=add]')?.classList.toggle('active', !!this.app.addMode);
    this.status(this.app.addMode ? 'Add path: click the entry point in any view' : 'Ready');
  }

  private addPoint(p: [number, number, number]) {
    const m = this.app.addMode;
    if (!m) return;
    if (!m.entry) {
      m.entry = p;
      this.status('Add path: now click the target point');
      return;
    }
    this.app.addPath(m.entry, p);
    this.toggleAddMode();
  }

  async loadXa(file: File): Promise<void> {
    await this.openXa({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) }, true);
  }

  /**
   * Show an XA/RF frame in the C-arm panel: a file opened (`save`: recorded as its fluoroscopy step, the
   * file kept in the case store), or one brought back from the case when it is reopened.
   */
  async openXa(file: NamedBytes, save: boolean): Promise<void> {
    const st = this.app.store;
    const xa = await loadXaFrame(file, this.fluoro.system, st.carm.isocenter);
    for (const n of xa.notes) this.message('warning', `${file.name}: ${n}`);
    st.xa = xa;
    this.fluoro.showXa = true;
    // The C-arm panel shows the frame's angles; the table position (isocentre) stays the panel's.
    st.setCarm({ primaryDeg: xa.frame.geometry.primaryDeg, secondaryDeg: xa.frame.geometry.secondaryDeg });
    st.emit('xa');
    const g = xa.frame.geometry;
    if (save)
      void this.app.saveFluoroFrame(
        file,
        `primary ${g.primaryDeg.toFixed(1)}°, secondary ${g.secondaryDeg.toFixed(1)}°`,
      );
  }

  private bindKeys() {
    const st = this.app.store;
    window.addEventListener('keydown', (e) => {
      const t = e.target as HTMLElement;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
      const ctrl = e.ctrlKey || e.metaKey;
      const k = e.key;
      const selected = st.selectedId;
      let handled = true;
      if (ctrl && (k === 'z' || k === 'Z')) {
        if (e.shiftKey) st.redo();
        else st.undo();
      } else if (ctrl && (k === 'y' || k === 'Y')) st.redo();
      else if (ctrl && (k === 's' || k === 'S')) this.run(() => this.download('plan.json', this.app.planJsonText()));
      else if (ctrl && (k === 'o' || k === 'O')) find<HTMLInputElement>(document, '[data-field=images]').click();
      else if (ctrl) handled = false;
      else if (k === 'a' || k === 'A') this.toggleAddMode();
      else if (k === 'Escape') {
        if (this.app.addMode) this.toggleAddMode();
      } else if (k === 'P' && e.shiftKey) {
        const id = st.selectedId;
        const at = id === 's1' || id === 's2' || id === 'alar-left' || id === 'alar-right' ? id : 's1';
        this.run(() => this.app.autoPlan(at));
      } else if (k === 'p' || k === 'P') this.run(() => this.app.autoPlan());
      else if (k === 'Delete' || k === 'Backspace') this.app.deleteSelected();
      else if (k === 'n' || k === 'N') {
        const ps = st.plan.paths;
        if (ps.length) {
          const i = ps.findIndex((p) => p.id === st.selectedId);
          st.select(ps[(i + (e.shiftKey ? -1 : 1) + ps.length) % ps.length].id);
        }
      } else if ((k === 'e' || k === 'E') && selected) this.run(() => this.carmPanel.goToView(selected, 'bullseye'));
      else if ((k === 'g' || k === 'G') && selected) this.run(() => this.carmPanel.goToView(selected, 'progress'));
      else if (k === 'i' || k === 'I') this.carmPanel.isoToCrosshair();
      else if (k === 'b' || k === 'B') st.setWindow(WINDOW_PRESETS.bone);
      else if (k === 't' || k === 'T') st.setWindow(WINDOW_PRESETS.soft);
      else if (k === '?') this.showHelp();
      else if (k.startsWith('Arrow')) {
        const d = e.shiftKey ? 5 : 1;
        const s = this.fluoro.system;
        const clamp = (v: number, lim: [number, number]) => Math.min(lim[1], Math.max(lim[0], v));
        if (k === 'ArrowLeft' || k === 'ArrowRight')
          st.setCarm({ primaryDeg: clamp(st.carm.primaryDeg + (k === 'ArrowRight' ? d : -d), s.primaryLimitsDeg) });
        else
          st.setCarm({ secondaryDeg: clamp(st.carm.secondaryDeg + (k === 'ArrowUp' ? d : -d), s.secondaryLimitsDeg) });
      } else handled = false;
      if (handled) e.preventDefault();
    });
  }

  private showHelp() {
    const d = document.getElementById('dialog') as HTMLDialogElement;
    const rows = SHORTCUTS.map(([k, v]) => `<tr><td><kbd>${k}</kbd></td><td>${v}</td></tr>`).join('');
    const units =
      "Units: positions in mm (DICOM LPS: x toward the patient's left, y posterior, z head), " +
      'angles in degrees, CT values in HU.';
    d.innerHTML = `<h2>Keyboard and mouse</h2><table class="help-keys">${rows}</table>
      <p class="muted">${units}</p>
      <form method="dialog"><button>Close</button></form>`;
    d.showModal();
  }

  private chooseSeries(series: SeriesSummary[]): Promise<number | null> {
    const d = document.getElementById('dialog') as HTMLDialogElement;
    const head = '<tr><th>Series</th><th>Modality</th><th>Voxels</th><th>Spacing</th></tr>';
    const rows = series
      .map(
        (s) =>
          `\n      <tr data-index="${s.index}"><td><button data-index="${s.index}"></button></td>` +
          `<td>${escapeHtml(s.modality || s.format)}</td><td>${s.dims.join(' × ')}</td>` +
          `<td>${s.spacingMm.map((x) => x.toFixed(2)).join(' × ')} mm</td></tr>`,
      )
      .join('');
    d.innerHTML = `<h2>Choose a series</h2><table><thead>${head}</thead><tbody>${rows}</tbody></table>
      <form method="dialog"><button value="cancel">Cancel</button></form>`;
    d.querySelectorAll<HTMLButtonElement>('button[data-index]').forEach(
      (b) => (b.textContent = series[Number(b.dataset.index)].description),
    );
    return new Promise((resolve) => {
      d.addEventListener('click', (e) => {
        const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-index]');
        if (b) {
          resolve(Number(b.dataset.index));
          d.close();
        }
      });
      d.addEventListener('close', () => resolve(null), { once: true });
      d.showModal();
    });
  }

  private bindDrop() {
    const zone = byId('dropzone');
    let depth = 0;
    window.addEventListener('dragenter', (e) => {
      e.preventDefault();
      depth++;
      zone.hidden = false;
    });
    window.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.hidden = true;
    });
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      zone.hidden = true;
      const items = [...(e.dataTransfer?.items ?? [])];
      this.run(async () => {
        const files = await filesFromDrop(items);
        if (!files.length) throw new Error('nothing to open in what was dropped');
        const plan = files.length === 1 && /\.json$/i.test(files[0].name);
        if (plan) this.app.openPlanText(files[0].name, await files[0].text());
        else await this.app.openFiles(await readAll(files));
      });
    });
  }
}

/** Every file in what was dropped, descending into folders (a DICOM series is usually a folder). */
async function filesFromDrop(items: DataTransferItem[]): Promise<File[]> {
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      out.push(await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries returns at most ~100 entries per call: read until it returns none.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  const entries = items.map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length) for (const e of entries) await walk(e);
  else
    for (const i of items) {
      const f = i.getAsFile();
      if (f) out.push(f);
    }
  return out;
}
