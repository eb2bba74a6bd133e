/**
 * The PACS panel: search the PACS the server forwards to (QIDO-RS through /api/pacs/dicom-web, core's
 * DicomWebClient over the browser's fetch), list its studies and their series, retrieve a series
 * (WADO-RS, streamed: a progress bar of the instances received, Cancel closes the connection) and open
 * it as the case's volume through the workstation's own DICOM loading (App.openFiles). A segmentation
 * (DICOM SEG) in the same study comes with it, as when files are dropped together. Where the server has
 * no PACS (503) the panel says so and its controls stay disabled.
 */
import {
  CancelledError,
  DicomWebClient,
  jsonString,
  jsonStrings,
  type DicomJson,
  type FetchInit,
  type FetchLike,
} from '@corridor/core';
import type { NamedBytes } from '@corridor/core';
import type { Shell } from '../shell.js';
import { find } from '../dom.js';
import { escapeHtml } from '../html.js';

export const PACS_ROOT = '/api/pacs/dicom-web';

/** The client the workstation uses: the server's DICOMweb forward, the page's fetch (bound to window). */
export function workstationPacs(): DicomWebClient {
  const f = ((url: string, init?: FetchInit) => fetch(url, init as RequestInit)) as unknown as FetchLike;
  return new DicomWebClient({ url: PACS_ROOT, fetch: f });
}

const count = (ds: DicomJson, tag: string): number | undefined => {
  const s = jsonString(ds, tag);
  return s === undefined || s === '' ? undefined : Number(s);
};

export class PacsPanel {
  private readonly client = workstationPacs();
  private abort: AbortController | null = null;
  private study = '';
  private pacsUrl = '';

  constructor(
    private root: HTMLElement,
    private shell: Shell,
  ) {
    root.dataset.pacs = 'checking';
    root.innerHTML = `
      <h2>PACS</h2>
      <p data-testid="pacs-note" class="muted"></p>
      <div class="row">
        <label title="Patient ID (wildcards * and ?)">Patient ID <input data-field="pacs-patient-id" size="12"></label>
        <label title="Patient's name (wildcards * and ?)">Name <input data-field="pacs-patient-name" size="12"></label>
        <button data-action="pacs-search" disabled>Search</button>
      </div>
      <div data-testid="pacs-studies"></div>
      <div data-testid="pacs-series"></div>
      <div class="row">
        <progress data-testid="pacs-progress" max="1" value="0" hidden></progress>
        <span data-testid="pacs-phase" class="muted"></span>
        <button data-action="pacs-cancel" hidden>Cancel</button>
      </div>`;
    root.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest('button');
      if (!b) return;
      const a = b.dataset.action;
      if (a === 'pacs-search') shell.run(() => this.search());
      else if (a === 'pacs-study') shell.run(() => this.listSeries(b.dataset.study ?? ''));
      else if (a === 'pacs-open') shell.run(() => this.open(b.dataset.series ?? '', Number(b.dataset.count) || 0));
      else if (a === 'pacs-cancel') this.abort?.abort();
    });
    find(root, '[data-field=pacs-patient-id]').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') shell.run(() => this.search());
    });
    void this.probe();
  }

  /**
   * Whether the server forwards to a PACS (/api/health says, so a server without one logs no failed
   * request in the console), then whether that PACS answers a search.
   */
  private async probe() {
    const note = find(this.root, '[data-testid=pacs-note]');
    let status = 0;
    try {
      const health = (await (await fetch('/api/health')).json()) as { pacs?: boolean; pacsUrl?: string };
      this.pacsUrl = health.pacsUrl ?? '';
      status = health.pacs
        ? (await fetch(`${PACS_ROOT}/studies?limit=1`, { headers: { Accept: 'application/dicom+json' } })).status
        : 503;
    } catch {
      status = 0;
    }
    const ok = status >= 200 && status < 300;
    this.root.dataset.pacs = ok ? 'ready' : status === 503 ? 'none' : 'unreachable';
    find<HTMLButtonElement>(this.root, '[data-action=pacs-search]').disabled = !ok;
    note.textContent = ok
      ? 'Search the PACS, then open a series as the case.'
      : status === 503
        ? 'No PACS: this server was started without one (corridor start --pacs URL).'
        : `The PACS does not answer (HTTP ${status || 'no answer'}); search is off.`;
  }

  async search(): Promise<void> {
    const v = (f: string) => find<HTMLInputElement>(this.root, `[data-field=${f}]`).value.trim();
    const q: Record<string, string | string[]> = {
      includefield: ['NumberOfStudyRelatedInstances', 'ModalitiesInStudy', 'StudyDescription'],
      limit: '100',
    };
    if (v('pacs-patient-id')) q.PatientID = v('pacs-patient-id');
    if (v('pacs-patient-name')) q.PatientName = v('pacs-patient-name');
    const studies = await this.client.searchStudies(q);
    const el = find(this.root, '[data-testid=pacs-studies]');
    find(this.root, '[data-testid=pacs-series]').innerHTML = '';
    el.dataset.count = String(studies.length);
    el.innerHTML = studies.length
      ? `<table><tr><th>patient</th><th>ID</th><th>date</th><th>study</th><th>modalities</th><th>images</th><th></th></tr>${studies
          .map((s) => {
            const uid = jsonString(s, '0020000D') ?? '';
            return `<tr data-study="${escapeHtml(uid)}"><td>${escapeHtml(jsonString(s, '00100010') ?? '')}</td>
              <td>${escapeHtml(jsonString(s, '00100020') ?? '')}</td><td>${escapeHtml(jsonString(s, '00080020') ?? '')}</td>
              <td>${escapeHtml(jsonString(s, '00081030') ?? '')}</td><td>${escapeHtml(jsonStrings(s, '00080061').join(', '))}</td>
              <td class="num">${count(s, '00201208') ?? '–'}</td>
              <td><button data-action="pacs-study" data-study="${escapeHtml(uid)}">Series</button></td></tr>`;
          })
          .join('')}</table>`
      : '<p class="muted">No study matches.</p>';
  }

  async listSeries(study: string): Promise<void> {
    this.study = study;
    const series = await this.client.searchSeries(study, {
      includefield: ['NumberOfSeriesRelatedInstances', 'SeriesDescription'],
    });
    const el = find(this.root, '[data-testid=pacs-series]');
    el.dataset.count = String(series.length);
    el.innerHTML = `<table><tr><th>modality</th><th>#</th><th>series</th><th>images</th><th></th></tr>${series
      .map((s) => {
        const uid = jsonString(s, '0020000E') ?? '';
        const modality = jsonString(s, '00080060') ?? '';
        const n = count(s, '00201209');
        const openable = modality !== 'SEG' && modality !== 'SR' && modality !== 'DOC';
        return `<tr data-series="${escapeHtml(uid)}" data-modality="${escapeHtml(modality)}"><td>${escapeHtml(modality)}</td>
          <td>${escapeHtml(jsonString(s, '00200011') ?? '')}</td><td>${escapeHtml(jsonString(s, '0008103E') ?? '')}</td>
          <td class="num">${n ?? '–'}</td><td>${
            openable
              ? `<button data-action="pacs-open" data-series="${escapeHtml(uid)}" data-count="${n ?? ''}">Open</button>`
              : ''
          }</td></tr>`;
      })
      .join('')}</table>`;
    el.dataset.segs = series
      .filter((s) => jsonString(s, '00080060') === 'SEG')
      .map((s) => jsonString(s, '0020000E') ?? '')
      .join(' ');
  }

  /** Retrieve one series (and the study's segmentations), then open it as the case. */
  async open(series: string, total: number): Promise<void> {
    if (this.abort) return;
    const ac = new AbortController();
    this.abort = ac;
    const bar = find<HTMLProgressElement>(this.root, '[data-testid=pacs-progress]');
    const phase = find(this.root, '[data-testid=pacs-phase]');
    const cancel = find<HTMLButtonElement>(this.root, '[data-action=pacs-cancel]');
    const segs = (find(this.root, '[data-testid=pacs-series]').dataset.segs ?? '').split(' ').filter(Boolean);
    const files: NamedBytes[] = [];
    bar.hidden = false;
    cancel.hidden = false;
    bar.max = Math.max(1, total);
    bar.value = 0;
    this.root.dataset.retrieve = 'running';
    const show = (n: number) => {
      bar.value = n;
      phase.textContent = `retrieving ${n}${total ? ` of ${total}` : ''} images`;
      this.shell.ui.status('Retrieving from the PACS…', { done: n, total: Math.max(total, n, 1) });
    };
    try {
      await this.client.retrieveSeries(this.study, series, {
        signal: ac.signal,
        ...(total ? { totalInstances: total } : {}),
        // A part may be a view on the chunk it came in: each gets its own buffer (transferred to the worker).
        onInstance: (bytes, i) => void files.push({ name: `pacs-${i}.dcm`, bytes: bytes.slice() }),
        onProgress: (p) => show(p.instances),
      });
      for (const seg of segs)
        await this.client.retrieveSeries(this.study, seg, {
          signal: ac.signal,
          onInstance: (bytes, i) => void files.push({ name: `pacs-seg-${i}.dcm`, bytes: bytes.slice() }),
        });
      this.root.dataset.retrieve = 'done';
      phase.textContent = `retrieved ${files.length} file(s)`;
    } catch (err) {
      if (err instanceof CancelledError || ac.signal.aborted) {
        this.root.dataset.retrieve = 'cancelled';
        phase.textContent = 'retrieval cancelled: nothing opened';
        this.shell.ui.message('info', 'PACS retrieval cancelled: nothing opened.');
        return;
      }
      this.root.dataset.retrieve = 'failed';
      throw err;
    } finally {
      this.abort = null;
      bar.hidden = true;
      cancel.hidden = true;
      this.shell.ui.status('Ready', null);
    }
    // The case names the series in the PACS (fetched again when the case is reopened), not copies of it.
    await this.shell.app.openFiles(files, {
      pacs: {
        studyInstanceUid: this.study,
        seriesInstanceUid: series,
        ...(segs.length ? { segmentations: segs } : {}),
        ...(this.pacsUrl && /^https?:\/\/\S+$/.test(this.pacsUrl) ? { url: this.pacsUrl } : {}),
      },
    });
  }
}

/**
 * A section of its own at the end of the procedure panel (made here: the page's markup stays as it is).
 * Inside it, not beside it, so short windows keep their two-part side bar: there these sections show
 * with the procedure panel (toolbar "Procedure"), in tall windows always.
 */
export function sidePanel(id: string): HTMLElement {
  const el = document.createElement('section');
  el.id = id;
  el.className = 'subpanel';
  (document.getElementById('procedure-panel') ?? document.getElementById('side'))?.appendChild(el);
  return el;
}
