/**
 * The procedure panel: the checks that close the procedure and the case's series.
 * - Verification: load the verification scan; core's report per path (pass / fail, entry and tip
 *   offsets, angle, depth, lateral deviation, what the shaft runs through and where), each with a jump
 *   to where; "Register to planning scan" (core's registerRigid) when the scan lies in another frame.
 * - Cement: the baseline, then each cement scan as it comes; the volume per site and the distance of the
 *   front to each foramen over the scans, and the latest scan's verdict as an alarm banner above the views.
 * - Acquire 3D run (core's simulateCbct in a worker, with progress and cancel) and the series shown.
 * Every number is core's; cells keep the full value in data-value for the tests.
 */
import type { Point3 } from '@corridor/core';
import type { Shell } from '../shell.js';
import type { ScanRole } from '../app.js';
import type { ScanFrame } from '../worker/procedure.js';
import type { ReconOptions } from '../worker/recon-options.js';
import { fmt1, fmtPoint } from '../geometry.js';
import { byId, find, readAll } from '../dom.js';
import { escapeHtml } from '../html.js';

const num = (testid: string, x: number | null | undefined, unit: string, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x)
    ? `<td class="num" data-testid="${testid}">–</td>`
    : `<td class="num" data-testid="${testid}" data-value="${x}">${x.toFixed(digits)}${unit}</td>`;

/** A button that moves the views to a point (data-at = x,y,z LPS mm). */
const jump = (p: Point3, label: string, pathId?: string | null): string =>
  `<button class="jump" data-action="jump" data-at="${p.join(',')}"${pathId ? ` data-path="${escapeHtml(pathId)}"` : ''}
    title="Move the views to ${fmtPoint(p)} (LPS)">${escapeHtml(label)}</button>`;

const VERDICT_TEXT: Record<string, string> = {
  continue: 'CONTINUE',
  caution: 'CAUTION',
  stop: 'STOP INJECTION',
};
const VERDICT_ICON: Record<string, string> = { continue: '✓', caution: '⚠', stop: '✖' };

export class ProcedurePanel {
  constructor(
    private root: HTMLElement,
    private shell: Shell,
  ) {
    root.innerHTML = `
      <h2>Procedure <button class="only-short" data-action="close-procedure" title="Back to the plan">×</button></h2>
      <h3>Verification</h3>
      <div class="row">
        <button data-action="load-verification" title="Load the scan taken after the pins and trocars were placed"
          >Load verification scan…</button>
        <input type="file" data-field="verification-file" multiple hidden>
        <label title="How the verification scan reaches the plan's frame">Frame <select data-field="scan-frame">
          <option value="auto">auto: register when its frame differs</option>
          <option value="same">same frame as the plan</option>
          <option value="register">register to the planning scan</option></select></label>
      </div>
      <div class="row">
        <button data-action="register" title="Rigid registration (mutual information) of the loaded scan to the planning scan"
          >Register to planning scan</button>
        <button data-action="verify" title="Verify the loaded scan against the plan again">Verify again</button>
      </div>
      <div data-testid="registration" class="muted"></div>
      <div data-testid="verification"></div>
      <h3>Cement</h3>
      <div class="row">
        <button data-action="load-cement-baseline" title="The scan before any cement, the trocars in place"
          >Load baseline…</button>
        <input type="file" data-field="cement-baseline-file" multiple hidden>
        <button data-action="load-cement" title="A scan during the injection (on the baseline's grid)"
          >Add cement scan…</button>
        <input type="file" data-field="cement-file" multiple hidden>
      </div>
      <div data-testid="cement"></div>
      <h3>3D run</h3>
      <div class="row">
        <label title="Views over the 200° short scan">Views <input type="number" data-field="run-views" value="251" min="2" max="2000"></label>
        <label title="Reconstruction voxel">Voxel <input type="number" data-field="run-voxel" value="1" min="0.3" max="10" step="0.1"> <span class="unit">mm</span></label>
        <label title="Detector binning">Binning <input type="number" data-field="run-binning" value="4" min="1" max="16"></label>
        <label title="Quanta per detector pixel behind the patient (0 = no noise)">Dose <input type="number" data-field="run-dose" value="5000" min="0" step="500"></label>
        <label>Seed <input type="number" data-field="run-seed" value="1" min="0"></label>
      </div>
      <div class="row">
        <button data-action="acquire" title="Simulate a C-arm CT run (DynaCT-style) of the planning scan and open it as a series"
          >Acquire 3D run</button>
        <button data-action="cancel-run" disabled>Cancel</button>
        <progress data-testid="run-progress" max="1" value="0" hidden></progress>
        <span data-testid="run-phase" class="muted"></span>
      </div>
      <div class="row"><label>Series shown <select data-field="series"></select></label></div>`;
    const app = shell.app;
    const st = app.store;
    // Short windows keep the side panel for the C-arm and the plan: there the procedure panel lies over
    // the plan's half while open (toolbar "Procedure", or when a scan or a run comes in).
    const open = (yes: boolean) => {
      if (yes) document.body.dataset.procedure = 'open';
      else delete document.body.dataset.procedure;
    };
    const files: [string, string, ScanRole][] = [
      ['load-verification', 'verification-file', 'verification'],
      ['load-cement-baseline', 'cement-baseline-file', 'cement-baseline'],
      ['load-cement', 'cement-file', 'cement'],
    ];
    for (const [, field, role] of files) {
      find<HTMLInputElement>(root, `[data-field=${field}]`).addEventListener('change', (e) => {
        const input = e.target as HTMLInputElement;
        const list = [...(input.files ?? [])];
        input.value = '';
        if (list.length) shell.run(async () => app.loadScan(await readAll(list), role));
      });
    }
    const frame = find<HTMLSelectElement>(root, '[data-field=scan-frame]');
    frame.addEventListener('change', () => (app.scanFrame = frame.value as ScanFrame));
    const series = find<HTMLSelectElement>(root, '[data-field=series]');
    series.addEventListener('change', () => shell.run(() => app.showSeries(series.value)));
    root.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest('button');
      if (!b) return;
      const a = b.dataset.action;
      const f = files.find((x) => x[0] === a);
      if (f) return find<HTMLInputElement>(root, `[data-field=${f[1]}]`).click();
      if (a === 'close-procedure') open(false);
      else if (a === 'register') shell.run(() => app.registerScan());
      else if (a === 'verify') shell.run(() => app.verify());
      else if (a === 'jump') {
        const p = (b.dataset.at ?? '').split(',').map(Number) as Point3;
        app.jumpTo(p, b.dataset.path ?? null);
      } else if (a === 'acquire') shell.run(() => app.acquire3dRun(this.runOptions()));
      else if (a === 'cancel-run') app.cancel3dRun();
    });
    find(document, '[data-action=procedure]').addEventListener('click', () =>
      open(document.body.dataset.procedure !== 'open'),
    );
    byId('cement-banner').addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-action=jump]');
      if (b) app.jumpTo((b.dataset.at ?? '').split(',').map(Number) as Point3);
    });
    st.on(['procedure'], () => {
      if (st.verificationScan || st.cementBaseline || st.registration) open(true);
      this.renderVerification();
      this.renderCement();
    });
    st.on(['series', 'volume'], () => {
      series.innerHTML = st.series
        .map((s) => `<option value="${escapeHtml(s.id)}">${escapeHtml(s.name)}</option>`)
        .join('');
      series.value = st.shownSeries;
      root.dataset.series = String(st.series.length);
    });
    app.onReconProgress = () => {
      if (app.reconRunning) open(true);
      this.renderRun();
    };
  }

  private runOptions(): ReconOptions {
    const v = (f: string) => Number(find<HTMLInputElement>(this.root, `[data-field=${f}]`).value);
    return {
      views: v('run-views'),
      voxelMm: v('run-voxel'),
      binning: v('run-binning'),
      dose: v('run-dose'),
      seed: v('run-seed'),
    };
  }

  private renderRun() {
    const app = this.shell.app;
    const p = app.reconProgress;
    const bar = find<HTMLProgressElement>(this.root, '[data-testid=run-progress]');
    const phase = find(this.root, '[data-testid=run-phase]');
    find<HTMLButtonElement>(this.root, '[data-action=cancel-run]').disabled = !app.reconRunning;
    find<HTMLButtonElement>(this.root, '[data-action=acquire]').disabled = app.reconRunning;
    bar.hidden = !p;
    if (p) {
      bar.max = Math.max(1, p.total);
      bar.value = p.done;
      phase.textContent = `${p.phase} ${Math.round((100 * p.done) / Math.max(1, p.total))}%`;
      this.root.dataset.runProgress = String(p.done / Math.max(1, p.total));
    } else {
      phase.textContent = '';
      delete this.root.dataset.runProgress;
    }
  }

  private renderVerification() {
    const st = this.shell.app.store;
    const reg = st.registration;
    const regEl = find(this.root, '[data-testid=registration]');
    regEl.innerHTML = reg
      ? `Registered ${escapeHtml(reg.moving)} to the planning scan: rotation ${reg.rotationDeg.map(fmt1).join(', ')}°, ` +
        `translation ${reg.translationMm.map(fmt1).join(', ')} mm, ${reg.metric === 'mi' ? 'MI' : 'NC'} ` +
        `${reg.metricValue.toFixed(3)}, overlap ${Math.round(100 * reg.overlapFraction)}%, ${reg.seconds.toFixed(1)} s ` +
        `(<span data-testid="registration-verdict">${reg.verdict.status}</span>)`
      : '';
    regEl.dataset.verdict = reg?.verdict.status ?? '';
    const el = find(this.root, '[data-testid=verification]');
    const out = st.verification;
    if (!out) {
      el.innerHTML = st.verificationScan ? `<p class="muted">${escapeHtml(st.verificationScan)}: not verified</p>` : '';
      return;
    }
    const r = out.report;
    const rows = r.paths
      .map((p) => {
        const d = p.deviation;
        const ins = p.instrument;
        const cls = p.status === 'pass' ? 'ok' : 'bad';
        const hits = (ins?.structures ?? [])
          .map((h) =>
            jump(
              h.at,
              `${h.structure === 'outside bone' ? 'outside bone' : h.name} ${fmt1(h.fromTipMm)}–${fmt1(h.toTipMm)} mm from tip`,
              p.pathId,
            ),
          )
          .join(' ');
        return (
          `<tr data-path-id="${escapeHtml(p.pathId)}" data-status="${p.status}">` +
          `<td>${escapeHtml(p.name || p.pathId)}</td><td class="${cls}" data-testid="status"><b>${p.status.toUpperCase()}</b></td>` +
          num('entry', d?.entryOffsetMm, '') +
          num('tip', d?.tipOffsetMm, '') +
          num('angle', d?.angleDeg, '°') +
          num('depth', d?.depthDifferenceMm, '') +
          num('lateral', d?.lateralAtTargetMm, '') +
          `<td data-testid="flags">${hits || (ins ? '<span class="muted">clear</span>' : '')}` +
          `${ins ? ' ' + jump(ins.tip, 'tip', p.pathId) : ''}</td></tr>` +
          (p.reasons.length
            ? `<tr class="reasons"><td colspan="8" class="muted">${p.reasons.map(escapeHtml).join('; ')}</td></tr>`
            : '')
        );
      })
      .join('');
    const unplanned = r.unplanned
      .map(
        (u) =>
          `<tr data-unplanned="${escapeHtml(u.id)}"><td>${escapeHtml(u.id)}</td><td class="warn"><b>UNPLANNED</b></td>` +
          `<td colspan="5" class="muted">${fmt1(u.lengthMm)} mm, no planned path</td><td>` +
          u.structures.map((h) => jump(h.at, h.name)).join(' ') +
          ` ${jump(u.tip, 'tip')}</td></tr>`,
      )
      .join('');
    el.innerHTML =
      `<p class="${r.allPass ? 'ok' : 'bad'}" data-testid="verify-summary"><b>${r.allPass ? 'ALL PATHS PASS' : 'NOT ALL PATHS PASS'}</b>` +
      ` · tolerance ${r.tolerance.mm} mm, ${r.tolerance.deg}° · ${escapeHtml(out.frameNote)}</p>` +
      `<table class="verify-table"><thead><tr><th>Path</th><th>Status</th><th class="num" title="Entry offset">Entry mm</th>` +
      `<th class="num" title="Tip offset">Tip mm</th><th class="num">Angle</th><th class="num" title="Depth difference (+ deeper)">Depth mm</th>` +
      `<th class="num" title="Lateral deviation at the target">Lateral mm</th><th>Along the shaft</th></tr></thead>` +
      `<tbody>${rows}${unplanned}</tbody></table>` +
      r.notes.map((n) => `<p class="muted">${escapeHtml(n)}</p>`).join('');
    el.dataset.allPass = String(r.allPass);
  }

  private renderCement() {
    const st = this.shell.app.store;
    const el = find(this.root, '[data-testid=cement]');
    const banner = byId('cement-banner');
    const r = st.cement;
    if (!r) {
      el.innerHTML = st.cementBaseline
        ? `<p class="muted">Baseline ${escapeHtml(st.cementBaseline)}: add the cement scans as they come.</p>`
        : '';
      banner.hidden = true;
      delete banner.dataset.verdict;
      return;
    }
    const sites = r.scans[0]?.sites.map((s) => s.pathId) ?? [];
    const head =
      '<tr><th>Scan</th><th>Verdict</th><th class="num">Total ml</th>' +
      sites.map((s) => `<th class="num">${escapeHtml(s)} ml</th>`).join('') +
      '</tr>';
    const rows = r.scans
      .map(
        (s) =>
          `<tr data-scan="${s.index}"><td title="${escapeHtml(s.source)}">${s.index + 1}</td>` +
          `<td class="${s.verdict === 'stop' ? 'bad' : s.verdict === 'caution' ? 'warn' : 'ok'}" data-testid="scan-verdict">${s.verdict.toUpperCase()}</td>` +
          num('total-ml', s.totalMl, '', 2) +
          s.sites
            .map(
              (x) =>
                `<td class="num" data-testid="site-ml" data-site="${escapeHtml(x.pathId)}" data-value="${x.volumeMl}" data-growth="${x.growthMl}">` +
                `${x.volumeMl.toFixed(2)} <span class="muted">(${x.growthMl >= 0 ? '+' : ''}${x.growthMl.toFixed(2)})</span></td>`,
            )
            .join('') +
          '</tr>',
      )
      .join('');
    // Distance of the front to each structure, scan by scan.
    const names: string[] = [];
    for (const s of r.scans) for (const d of s.distances) if (!names.includes(d.name)) names.push(d.name);
    const drow = (name: string) =>
      `<tr data-structure="${escapeHtml(name)}"><td>${escapeHtml(name)}</td>` +
      r.scans
        .map((s) => {
          const d = s.distances.find((x) => x.name === name);
          const mm = d?.distanceMm ?? null;
          const cls = mm !== null && mm < r.warningMm ? 'bad' : '';
          return mm === null
            ? `<td class="num muted" data-testid="distance" data-scan="${s.index}">&gt; 20</td>`
            : `<td class="num ${cls}" data-testid="distance" data-scan="${s.index}" data-value="${mm}">${mm.toFixed(1)}</td>`;
        })
        .join('') +
      '</tr>';
    el.innerHTML =
      `<table class="cement-table"><thead>${head}</thead><tbody>${rows}</tbody></table>` +
      `<table class="cement-distances"><thead><tr><th>Front to (mm)</th>${r.scans.map((s) => `<th class="num">${s.index + 1}</th>`).join('')}</tr></thead>` +
      `<tbody>${names.map(drow).join('')}</tbody></table>` +
      r.notes.map((n) => `<p class="muted">${escapeHtml(n)}</p>`).join('');
    const last = r.scans[r.scans.length - 1];
    banner.hidden = false;
    banner.dataset.verdict = r.verdict;
    banner.className = `alarm alarm-${r.verdict}`;
    banner.setAttribute('role', r.verdict === 'continue' ? 'status' : 'alert');
    const reasons = last.reasons.length
      ? last.reasons
          .map((x) => `<li>${x.verdict.toUpperCase()}: ${escapeHtml(x.reason)} ${jump(x.at, 'show')}</li>`)
          .join('')
      : `<li>no leak; front farther than ${r.warningMm} mm from every foramen and the canal</li>`;
    banner.innerHTML =
      `<div class="alarm-head"><span class="alarm-icon" aria-hidden="true">${VERDICT_ICON[r.verdict]}</span>` +
      `<span class="alarm-text" data-testid="verdict">${VERDICT_TEXT[r.verdict]}</span>` +
      `<span class="alarm-sub">cement scan ${last.index + 1} of ${r.scans.length}: ${last.totalMl.toFixed(2)} ml new cement</span></div>` +
      `<ul>${reasons}</ul>`;
  }
}
