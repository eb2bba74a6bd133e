/**
 * The case panel: the case's timeline (planning CBCT, earlier imaging registered, fluoroscopy frames, 3D
 * runs, the verification CBCT with its table's summary, the cement scans with volumes and verdicts), each
 * entry opening where the user left it; the cases of the store, each reopened as it was left (its files
 * come from the store, its PACS series from the PACS); the conflict notice when another page saved the
 * plan first (theirs vs mine, path by path: keep theirs, keep mine, or merge with a choice per path);
 * and the status bar's Cancel of the running long operation. Without the case store (static hosting) it
 * says the plan is kept in this browser.
 */
import type { PlanPath } from '@corridor/core';
import type { Shell } from '../shell.js';
import { byId } from '../dom.js';
import { escapeHtml } from '../html.js';
import { fmtPoint } from '../geometry.js';

const ICON: Record<string, string> = {
  planning: '▣',
  earlier: '⇄',
  fluoroscopy: '◐',
  run: '↻',
  verification: '✓',
  cement: '●',
};

const describePath = (p: PlanPath | null): string =>
  p
    ? `${escapeHtml(p.name)} (${escapeHtml(p.kind)} ${p.diameterMm} mm): entry ${fmtPoint(p.entry)}, target ${fmtPoint(p.target)}`
    : '<span class="muted">absent</span>';

export class CasePanel {
  private notice: HTMLElement;

  constructor(
    private root: HTMLElement,
    private shell: Shell,
  ) {
    const app = shell.app;
    this.notice = document.createElement('div');
    this.notice.id = 'case-conflict';
    this.notice.setAttribute('role', 'alertdialog');
    this.notice.hidden = true;
    document.body.appendChild(this.notice);
    app.onCase = () => this.render();
    const cancel = byId<HTMLButtonElement>('cancel-op');
    app.onRunning = () => {
      cancel.hidden = !app.running;
      if (app.running) cancel.title = `Stop: ${app.running.label}`;
    };
    cancel.addEventListener('click', () => app.cancelRunning());
    root.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-entry]');
      if (b?.dataset.entry) {
        const key = b.dataset.entry;
        shell.run(() => app.openTimelineEntry(key));
      }
    });
    root.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-open-case]');
      const id = b?.dataset.openCase;
      if (id) shell.run(() => app.openStoredCase(id));
      else if ((e.target as HTMLElement).closest('button[data-action=list-cases]')) shell.run(() => this.listCases());
      else if ((e.target as HTMLElement).closest('button[data-action=export-deid]'))
        shell.run(() => app.exportDeidentified('download'));
    });
    this.notice.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-keep]');
      const keep = b?.dataset.keep;
      if (keep === 'theirs' || keep === 'mine') shell.run(() => app.resolveConflict(keep));
      else if (keep === 'merge') shell.run(() => app.resolveConflict('merge', this.choices()));
    });
    this.render();
  }

  /** The side chosen for each path in the conflict table. */
  private choices(): Record<string, 'theirs' | 'mine'> {
    const out: Record<string, 'theirs' | 'mine'> = {};
    for (const r of this.notice.querySelectorAll<HTMLInputElement>('input[data-pick]:checked')) {
      const id = r.dataset.pick;
      if (id && (r.value === 'theirs' || r.value === 'mine')) out[id] = r.value;
    }
    return out;
  }

  private cases: { id: string; title: string | null; updatedAt: string; documents: number }[] = [];

  /** The store's cases, each with an Open (as it was left). */
  async listCases(): Promise<void> {
    this.cases = await this.shell.app.storedCases();
    this.render();
  }

  private casesHtml(): string {
    const rows = this.cases
      .map(
        (c) =>
          `<li data-case="${escapeHtml(c.id)}"><button data-open-case="${escapeHtml(c.id)}" title="Open this case as it was left">Open</button> ` +
          `${escapeHtml(c.title ?? c.id)} <span class="muted">${c.documents} document(s), ${escapeHtml(c.updatedAt.slice(0, 16).replace('T', ' '))}</span></li>`,
      )
      .join('');
    return (
      `<div class="row"><button data-action="list-cases" title="The cases kept in the case store">Cases…</button>` +
      (this.shell.app.session
        ? `<button data-action="export-deid" title="The case's DICOM files, de-identified (PS3.15 Basic Profile, UIDs consistent within the case)">Export de-identified</button>`
        : '') +
      `</div>` +
      (this.cases.length ? `<ul class="cases" data-testid="stored-cases">${rows}</ul>` : '')
    );
  }

  private render() {
    const s = this.shell.app.session;
    if (!s) {
      this.root.innerHTML = `<h2>Case</h2><p class="muted" data-testid="case-store">${
        this.shell.app.store.volume ? 'No case store: the plan is kept in this browser.' : ''
      }</p>${this.cases.length ? this.casesHtml() : ''}`;
      this.notice.hidden = true;
      return;
    }
    const items = s.timeline
      .map(
        (e) =>
          `<li class="${e.key === s.current ? 'current' : ''}" data-kind="${e.kind}">` +
          `<button data-entry="${escapeHtml(e.key)}" title="Open this step where it was left">` +
          `<span aria-hidden="true">${ICON[e.kind] ?? '·'}</span> ${escapeHtml(e.label)}</button>` +
          (e.summary ? `<div class="muted" data-testid="entry-summary">${escapeHtml(e.summary)}</div>` : '') +
          '</li>',
      )
      .join('');
    this.root.innerHTML =
      `<h2>Case <span class="muted" data-testid="case-id">${escapeHtml(s.caseId)}</span></h2>` +
      `<ol class="timeline" data-testid="timeline">${items}</ol>` +
      this.casesHtml();
    const c = s.conflict;
    this.notice.hidden = !c;
    if (!c) {
      this.notice.innerHTML = '';
      return;
    }
    const pick = (r: (typeof c.rows)[number], side: 'theirs' | 'mine') =>
      `<label><input type="radio" name="pick-${escapeHtml(r.id)}" data-pick="${escapeHtml(r.id)}" value="${side}"${
        r.pick === side ? ' checked' : ''
      }> ${side}${r[side] ? '' : ' (drop it)'}</label>`;
    const rows = c.rows
      .map(
        (r) =>
          `<tr data-path-id="${escapeHtml(r.id)}" class="${r.differs ? 'differs' : ''}"><td>${escapeHtml(r.id)}</td>` +
          `<td data-side="theirs">${describePath(r.theirs)}</td><td data-side="mine">${describePath(r.mine)}</td>` +
          `<td>${r.differs ? `${pick(r, 'theirs')} ${pick(r, 'mine')}` : '<span class="muted">same</span>'}</td></tr>`,
      )
      .join('');
    this.notice.innerHTML =
      `<h3>The plan was changed in another window</h3>` +
      `<p>Another page saved revision ${c.theirsRevision} of this case's plan while you were editing. Nothing ` +
      `was overwritten: keep one version, or merge them choosing a version for each path (a path added or ` +
      `changed on one side only comes from that side unless you choose otherwise). Every version stays in ` +
      `the case history.</p>` +
      `<table class="conflict-table"><thead><tr><th>Path</th><th>Theirs (revision ${c.theirsRevision})</th>` +
      `<th>Mine (this window)</th><th>Merge takes</th></tr></thead><tbody>${rows}</tbody></table>` +
      `<div class="row"><button data-keep="theirs">Keep theirs</button>` +
      `<button data-keep="mine">Keep mine</button>` +
      `<button data-keep="merge" title="Save the paths as chosen per row">Merge as chosen</button></div>`;
  }
}
