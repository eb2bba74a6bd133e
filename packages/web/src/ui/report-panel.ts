/**
 * The report panel: "Report (PDF)" makes the procedure report of the open case. The key images (the plan
 * on the CBCT along each path, the plan over DRRs at the inlet and outlet, the plan over the fluoroscopy
 * frame shown, motion corrected when it was, and the cement against the nearest foramen) are drawn in
 * the case worker from the volumes it holds, by core's reportKeyImages as `corridor report` draws them;
 * they go with the plan, the verification and cement results and the planning image's DICOM attributes
 * in core's ReportRequest to the server's POST /api/report (node's makeReport: the PDF with pdf-lib and
 * the DICOM objects, the same function as `corridor report`), and the PDF downloads ("HTML" then
 * downloads the same report as one page). "Store to PACS"
 * stores the report's Encapsulated PDF and Comprehensive 3D SR to the PACS (STOW-RS through
 * /api/pacs/dicom-web), in the planning CT's study.
 */
import type { ProcedureReport, StoreResult } from '@corridor/core';
import { base64ToBytes, reportRequest } from '@corridor/core';
import type { Shell } from '../shell.js';
import { find } from '../dom.js';
import { escapeHtml } from '../html.js';
import { workstationPacs } from './pacs-panel.js';

/** The answer of POST /api/report. */
export interface MadeReportReply {
  report: ProcedureReport;
  notes: string[];
  /** The key images the PDF holds (id, title, caption, size), in order. */
  images: { id: string; title: string; caption: string; width: number; height: number }[];
  pdf: string;
  /** The same report as one self-contained HTML page (images inline). */
  html: string;
  dicom?: { pdf: string; sr: string; markups: string; frameOfReferenceFrom: string };
}

const fromBase64 = (s: string) => base64ToBytes(s, 'report reply');

function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

export class ReportPanel {
  /** The last report made (what "Store to PACS" sends). */
  last: MadeReportReply | null = null;

  constructor(
    private root: HTMLElement,
    private shell: Shell,
  ) {
    root.innerHTML = `
      <h2>Report</h2>
      <div class="row">
        <label>Procedure <input data-field="report-title" size="18" placeholder="sacroplasty"></label>
        <label>Operator <input data-field="report-operator" size="12"></label>
      </div>
      <div class="row">
        <button data-action="report-make" title="The procedure report (PDF) of the plan, verification and cement results"
          >Report (PDF)</button>
        <button data-action="report-html" disabled title="The last report as one HTML page (key images inline)"
          >HTML</button>
        <button data-action="report-store" disabled
          title="Store the report to the PACS: Encapsulated PDF and 3D SR, in the planning CT's study">Store to PACS</button>
      </div>
      <div data-testid="report-summary" class="muted"></div>`;
    root.addEventListener('click', (e) => {
      const a = (e.target as HTMLElement).closest('button')?.dataset.action;
      if (a === 'report-make') shell.run(() => this.make());
      else if (a === 'report-store') shell.run(() => this.storeToPacs());
      else if (a === 'report-html' && this.last)
        download(new Blob([this.last.html], { type: 'text/html' }), 'report.html');
    });
  }

  /** Core's ReportRequest of the open case, with the key images the case worker drew. */
  private async request() {
    const app = this.shell.app;
    const st = app.store;
    const plan = app.currentPlan();
    const system = this.shell.fluoro.system;
    const verification = st.verification?.report ?? null;
    const drawn = await app.reportImages({
      plan,
      verification,
      cement: st.cement,
      system,
      fluoroscopy: this.shell.fluoro.reportFrame(),
    });
    const field = (f: string) => find<HTMLInputElement>(this.root, `[data-field=${f}]`).value.trim();
    const req = reportRequest({
      plan,
      verification,
      cement: st.cement,
      image: (st.series[0]?.volume ?? st.volume)?.meta ?? {},
      procedure: {
        ...(field('report-title') ? { title: field('report-title') } : {}),
        ...(field('report-operator') ? { operator: field('report-operator') } : {}),
      },
      carm: system.id,
      pelvic: drawn.pelvic,
      images: drawn.images,
    });
    return { req, notes: drawn.notes };
  }

  async make(): Promise<MadeReportReply> {
    const st = this.shell.app.store;
    if (!st.volume || !st.plan.paths.length) throw new Error('Report: open a case and plan at least one path first');
    this.shell.ui.status('Making the report…', { done: 0, total: 1 });
    this.root.dataset.report = 'running';
    try {
      const { req, notes } = await this.request();
      this.shell.ui.status('Making the report…', { done: 0, total: 1 });
      const res = await fetch('/api/report', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(req),
      });
      if (!res.ok) {
        const text = await res.text();
        let msg = text;
        try {
          msg = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
        } catch {
          // not JSON: the text as it came
        }
        throw new Error(`Report: HTTP ${res.status}: ${msg}`);
      }
      const r = (await res.json()) as MadeReportReply;
      r.notes = [...notes, ...r.notes];
      this.last = r;
      const pdf = fromBase64(r.pdf);
      download(new Blob([pdf as BlobPart], { type: 'application/pdf' }), 'report.pdf');
      find<HTMLButtonElement>(this.root, '[data-action=report-html]').disabled = false;
      const rep = r.report;
      const summary = find(this.root, '[data-testid=report-summary]');
      summary.innerHTML =
        `${rep.paths.length} path(s), ${rep.alerts.length} alert(s), ${r.images.length} key image(s)` +
        (rep.verification ? `, verification ${rep.verification.allPass ? 'ALL PASS' : 'NOT ALL PASS'}` : '') +
        (rep.cement ? `, cement ${escapeHtml(rep.cement.verdict.toUpperCase())}` : '') +
        `. ${r.notes.map(escapeHtml).join('; ')}`;
      this.root.dataset.report = 'done';
      this.root.dataset.paths = String(rep.paths.length);
      this.root.dataset.images = r.images.map((i) => i.id).join(' ');
      this.root.dataset.verification = rep.verification ? String(rep.verification.allPass) : '';
      this.root.dataset.cement = rep.cement?.verdict ?? '';
      // Storing needs the PACS the server forwards to (the PACS panel found one).
      const store = find<HTMLButtonElement>(this.root, '[data-action=report-store]');
      const pacs = document.getElementById('pacs-panel')?.dataset.pacs === 'ready';
      store.disabled = !r.dicom || !pacs;
      if (!pacs) store.title = 'No PACS: this server was started without one (corridor start --pacs URL)';
      this.shell.ui.message('info', `Report made: report.pdf (${(pdf.length / 1024).toFixed(0)} KiB).`);
      return r;
    } catch (err) {
      this.root.dataset.report = 'failed';
      throw err;
    } finally {
      this.shell.ui.status('Ready', null);
    }
  }

  async storeToPacs(): Promise<StoreResult> {
    const d = this.last?.dicom;
    if (!d) throw new Error('Store to PACS: make the report first');
    this.root.dataset.stored = 'running';
    const r = await workstationPacs().store([fromBase64(d.pdf), fromBase64(d.sr)], {
      onProgress: (p) => this.shell.ui.status('Storing the report…', { done: p.instances, total: p.totalInstances }),
    });
    this.shell.ui.status('Ready', null);
    if (r.failed.length) {
      this.root.dataset.stored = 'failed';
      throw new Error(`Store to PACS: the PACS refused ${r.failed.length} of 2 objects`);
    }
    this.root.dataset.stored = String(r.stored.length);
    this.shell.ui.message('info', `Stored the report to the PACS: ${r.stored.length} DICOM object(s).`);
    return r;
  }
}
