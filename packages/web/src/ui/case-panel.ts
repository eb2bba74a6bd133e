/**
 * The case panel: the case's timeline (planning CBCT, earlier imaging registered, fluoroscopy frames, 3D
 * runs, the verification CBCT with its table's summary, the cement scans with volumes and verdicts), each
 * entry opening where the user left it; the conflict notice when another page saved the plan first
 * (theirs vs mine, path by path; keep theirs or keep mine); and the status bar's Cancel of the running
 * long operation. Without the case store (static hosting) it says the plan is kept in this browser.
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
    this.notice.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-keep]');
      const keep = b?.dataset.keep;
      if (keep === 'theirs' || keep === 'mine') shell.run(() => app.resolveConflict(keep));
    });
    this.render();
  }

  private render() {
    const s = this.shell.app.session;
    if (!s) {
      this.root.innerHTML = `<h2>Case</h2><p class="muted" data-testid="case-store">${
        this.shell.app.store.volume ? 'No case store: the plan is kept in this browser.' : ''
      }</p>`;
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
      `<ol class="timeline" data-testid="timeline">${items}</ol>`;
    const c = s.conflict;
    this.notice.hidden = !c;
    if (!c) {
      this.notice.innerHTML = '';
      return;
    }
    const rows = c.rows
      .map(
        (r) =>
          `<tr data-path-id="${escapeHtml(r.id)}" class="${r.differs ? 'differs' : ''}"><td>${escapeHtml(r.id)}</td>` +
          `<td data-side="theirs">${describePath(r.theirs)}</td><td data-side="mine">${describePath(r.mine)}</td></tr>`,
      )
      .join('');
    this.notice.innerHTML =
      `<h3>The plan was changed in another window</h3>` +
      `<p>Another page saved revision ${c.theirsRevision} of this case's plan while you were editing. Nothing ` +
      `was overwritten: choose which version to keep (the other stays in the case history).</p>` +
      `<table class="conflict-table"><thead><tr><th>Path</th><th>Theirs (revision ${c.theirsRevision})</th>` +
      `<th>Mine (this window)</th></tr></thead><tbody>${rows}</tbody></table>` +
      `<div class="row"><button data-keep="theirs">Keep theirs</button>` +
      `<button data-keep="mine">Keep mine</button></div>`;
  }
}
