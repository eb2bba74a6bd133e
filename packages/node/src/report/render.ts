/**
 * The procedure report (core's ProcedureReport model) rendered as a self-contained HTML page and as a PDF
 * (pdf-lib, pure JavaScript, with DejaVu Sans Condensed embedded as a subset from the dejavu-fonts-ttf
 * package through @pdf-lib/fontkit: any viewer shows the same glyphs, Unicode text included; nothing is
 * fetched). Key images come as PNG bytes. The same tables in both: patient and procedure, alerts, planned
 * paths, achieved geometry, views, cement, key images, sources.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
// pdf-lib and fontkit (about 3 MB of JavaScript) load on the first PDF, not with every command and server.
import type { PDFDocument, PDFFont, PDFPage, rgb as pdfRgb } from 'pdf-lib';
import type { EncodedKeyImage, ProcedureReport, ReportAngles, ReportPath } from '@corridor/core';

/** A key image as PNG (core's EncodedKeyImage). */
export type RenderedImage = EncodedKeyImage;

const f1 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
const f2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(2));
const pt = (p: readonly number[] | undefined | null) => (p ? `(${p.map((x) => x.toFixed(1)).join(', ')})` : '-');

interface Table {
  title: string;
  head: string[];
  rows: string[][];
  /** Lines under the table (reasons, notes). */
  notes?: string[];
}

function patientRows(r: ProcedureReport): string[][] {
  const p = r.patient;
  const rows: string[][] = [
    ['Patient', p.name || '(not given)'],
    ['Patient ID', p.id || '(not given)'],
  ];
  if (p.birthDate) rows.push(['Birth date', p.birthDate]);
  if (p.sex) rows.push(['Sex', p.sex]);
  rows.push(['Procedure', r.procedure.title]);
  if (r.procedure.date) rows.push(['Date', r.procedure.date]);
  if (r.procedure.operator) rows.push(['Operator', r.procedure.operator]);
  if (r.procedure.institution) rows.push(['Institution', r.procedure.institution]);
  rows.push(['Planning image', r.planImage.file ?? r.planImage.seriesInstanceUid ?? '(not recorded in the plan)']);
  if (r.carm) rows.push(['C-arm', r.carm.name ?? r.carm.id]);
  rows.push(['Report made', r.generatedAt]);
  return rows;
}

function viewText(v: ReportAngles): string {
  return `${v.text}${v.reachable ? '' : ' (NOT REACHABLE)'}`;
}

/** The report's tables, shared by the HTML and the PDF. */
export function reportTables(r: ProcedureReport): Table[] {
  const tables: Table[] = [];
  tables.push({
    title: 'Planned paths',
    head: ['path', 'tool', 'diameter mm', 'length mm', 'entry LPS mm', 'target LPS mm', 'margin mm'],
    rows: r.paths.map((p) => [
      `${p.name} [${p.id}]`,
      p.kind,
      f2(p.diameterMm),
      f1(p.lengthMm),
      pt(p.entry),
      pt(p.target),
      f1(p.marginMm),
    ]),
  });
  if (r.verification) {
    const v = r.verification;
    const verified = r.paths.filter(
      (p): p is ReportPath & { achieved: NonNullable<ReportPath['achieved']> } => !!p.achieved,
    );
    tables.push({
      title: `Achieved geometry (tolerance ${v.tolerance.mm} mm, ${v.tolerance.deg} deg): ${v.allPass ? 'ALL PASS' : 'NOT ALL PASS'}`,
      head: ['path', 'result', 'entry off mm', 'tip off mm', 'angle deg', 'depth mm', 'lateral mm', 'tip LPS mm'],
      rows: verified.map((p) => [
        `${p.name} [${p.id}]`,
        p.achieved.status.toUpperCase(),
        f1(p.achieved.entryOffsetMm),
        f1(p.achieved.tipOffsetMm),
        f1(p.achieved.angleDeg),
        f1(p.achieved.depthDifferenceMm),
        f1(p.achieved.lateralAtTargetMm),
        pt(p.achieved.tip),
      ]),
      notes: [
        ...verified.flatMap((p) => p.achieved.reasons.map((x) => `${p.name}: ${x}`)),
        ...(v.unplanned ? [`${v.unplanned} unplanned instrument(s) found`] : []),
        ...v.notes,
      ],
    });
  }
  const viewRows = r.paths
    .filter((p) => p.views.length)
    .map((p) => [
      `${p.name} [${p.id}]`,
      ...["bull's-eye", 'progress'].map((l) => {
        const v = p.views.find((x) => x.label === l);
        return v ? viewText(v) : '-';
      }),
    ]);
  for (const v of r.pelvicViews) viewRows.push([`pelvis ${v.label}`, viewText(v), '-']);
  if (viewRows.length)
    tables.push({ title: 'C-arm views used', head: ['path / view', "bull's-eye", 'progress'], rows: viewRows });
  if (r.cement) {
    const c = r.cement;
    tables.push({
      title: `Cement (warning distance ${c.warningMm} mm): latest verdict ${c.verdict.toUpperCase()}`,
      head: ['scan', 'verdict', 'total ml', 'per site ml (growth)', 'leaks', 'nearest structures'],
      rows: c.scans.map((s) => [
        `${s.index + 1} ${s.source}`,
        s.verdict.toUpperCase(),
        f2(s.totalMl),
        s.sites.map((x) => `${x.name} ${f2(x.volumeMl)} (+${f2(x.growthMl)})`).join('; ') || '-',
        s.leaks.map((l) => `${l.name} ${f2(l.volumeMl)} ml`).join('; ') || 'none',
        s.nearest.map((n) => `${n.name} ${n.distanceMm === null ? 'far' : `${f1(n.distanceMm)} mm`}`).join('; ') || '-',
      ]),
      notes: [...c.scans.flatMap((s) => s.reasons.map((x) => `scan ${s.index + 1}: ${x}`)), ...c.notes],
    });
  }
  const src = Object.entries(r.sources).filter(([, v]) => v);
  if (src.length) tables.push({ title: 'Sources', head: ['input', 'file'], rows: src.map(([k, v]) => [k, String(v)]) });
  return tables;
}

// --- HTML ------------------------------------------------------------------------------------------------

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** The report as one HTML page (images inline as data: URIs, no external resources). */
export function renderReportHtml(r: ProcedureReport, images: readonly RenderedImage[]): string {
  const table = (t: Table) =>
    `<h2>${esc(t.title)}</h2>\n<table><thead><tr>${t.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${t.rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>` +
    (t.notes?.length ? `<ul class="notes">${t.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '');
  const alerts = r.alerts.length
    ? `<ul class="alerts">${r.alerts.map((a) => `<li class="${a.severity}"><b>${a.severity.toUpperCase()}</b> ${esc(a.text)}</li>`).join('')}</ul>`
    : '<p>No alerts.</p>';
  const figs = images
    .map(
      (im) =>
        `<figure><img alt="${esc(im.image.title)}" width="${im.image.width}" height="${im.image.height}" ` +
        `src="data:image/png;base64,${Buffer.from(im.png).toString('base64')}">` +
        `<figcaption><b>${esc(im.image.title)}</b>. ${esc(im.image.caption)}</figcaption></figure>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.patient.name ? `${r.title}: ${r.patient.name}` : r.title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#111}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 6px;text-align:left}
th{background:#eee}.alerts li.stop{color:#b00}.alerts li.warning{color:#a60}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:400px}figure img{max-width:100%;height:auto}
</style></head><body>
<h1>${esc(r.title)}</h1>
<table>${patientRows(r)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('')}</table>
<h2>Alerts</h2>
${alerts}
${reportTables(r).map(table).join('\n')}
<h2>Key images</h2>
${figs || '<p>No key images (no image given).</p>'}
<p class="footer">Corridor ${esc(r.kind)} schema ${r.schemaVersion}. Coordinates are DICOM LPS millimetres.</p>
</body></html>
`;
}

// --- PDF -------------------------------------------------------------------------------------------------

/** Text without control characters (tabs become spaces; newlines stay, the layout breaks lines there). */
export function pdfSafe(s: string): string {
  return s.replace(/\t/g, ' ').replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '');
}

const require = createRequire(import.meta.url);
let fontBytes: Promise<[Uint8Array, Uint8Array]> | undefined;

/** DejaVu Sans Condensed, regular and bold, read once from the dejavu-fonts-ttf package. */
function reportFonts(): Promise<[Uint8Array, Uint8Array]> {
  fontBytes ??= Promise.all(
    ['DejaVuSansCondensed.ttf', 'DejaVuSansCondensed-Bold.ttf'].map(
      async (f) => new Uint8Array(await readFile(require.resolve(`dejavu-fonts-ttf/ttf/${f}`))),
    ),
  ) as Promise<[Uint8Array, Uint8Array]>;
  return fontBytes;
}

const A4: [number, number] = [595.28, 841.89];
const MARGIN = 42;

class Layout {
  page!: PDFPage;
  y = 0;
  constructor(
    private doc: PDFDocument,
    readonly font: PDFFont,
    readonly bold: PDFFont,
    private rgb: typeof pdfRgb,
  ) {
    this.newPage();
  }
  get width(): number {
    return A4[0] - 2 * MARGIN;
  }
  newPage(): void {
    this.page = this.doc.addPage(A4);
    this.y = A4[1] - MARGIN;
  }
  need(h: number): void {
    if (this.y - h < MARGIN) this.newPage();
  }
  /** Lines of `text` at `size` that fit `width`. */
  wrap(text: string, size: number, width: number, font = this.font): string[] {
    const out: string[] = [];
    for (const para of pdfSafe(text).split('\n')) {
      let line = '';
      for (const word of para.split(/\s+/)) {
        const tryLine = line ? `${line} ${word}` : word;
        if (font.widthOfTextAtSize(tryLine, size) <= width || !line) line = tryLine;
        else {
          out.push(line);
          line = word;
        }
      }
      out.push(line);
    }
    return out;
  }
  text(text: string, size = 10, opts: { bold?: boolean; color?: [number, number, number]; indent?: number } = {}) {
    const font = opts.bold ? this.bold : this.font;
    const indent = opts.indent ?? 0;
    for (const line of this.wrap(text, size, this.width - indent, font)) {
      this.need(size * 1.3);
      this.y -= size * 1.3;
      this.page.drawText(line, {
        x: MARGIN + indent,
        y: this.y + size * 0.25,
        size,
        font,
        color: this.rgb(...(opts.color ?? [0, 0, 0])),
      });
    }
  }
  gap(h: number): void {
    this.y -= h;
  }
  table(t: Table): void {
    const size = 7.5;
    this.need(40);
    this.gap(6);
    this.text(t.title, 11, { bold: true });
    this.gap(2);
    // Column widths from the widest cell (header included), scaled to the page.
    const n = t.head.length;
    const natural = t.head.map(
      (h, i) =>
        Math.max(
          this.bold.widthOfTextAtSize(pdfSafe(h), size),
          ...t.rows.map((r) => this.font.widthOfTextAtSize(pdfSafe(r[i] ?? ''), size)),
        ) + 6,
    );
    const total = natural.reduce((a, b) => a + b, 0);
    const widths = total <= this.width ? natural : natural.map((w) => Math.max(30, (w / total) * this.width));
    const drawRow = (cells: string[], font: PDFFont, shade: boolean) => {
      const lines = cells.map((c, i) => this.wrap(c, size, widths[i] - 6, font));
      const h = Math.max(...lines.map((l) => l.length)) * size * 1.25 + 3;
      this.need(h);
      if (shade)
        this.page.drawRectangle({
          x: MARGIN,
          y: this.y - h,
          width: widths.reduce((a, b) => a + b, 0),
          height: h,
          color: this.rgb(0.92, 0.92, 0.92),
        });
      let x = MARGIN;
      for (let i = 0; i < n; i++) {
        lines[i].forEach((l, k) =>
          this.page.drawText(l, { x: x + 3, y: this.y - (k + 1) * size * 1.25, size, font, color: this.rgb(0, 0, 0) }),
        );
        x += widths[i];
      }
      this.y -= h;
      this.page.drawLine({
        start: { x: MARGIN, y: this.y },
        end: { x: MARGIN + widths.reduce((a, b) => a + b, 0), y: this.y },
        thickness: 0.3,
        color: this.rgb(0.6, 0.6, 0.6),
      });
    };
    drawRow(t.head, this.bold, true);
    for (const r of t.rows) drawRow(r, this.font, false);
    for (const note of t.notes ?? []) this.text(`- ${note}`, 8, { indent: 6 });
  }
}

/** The report as a PDF (A4); its creation and modification dates are the report's time. */
export async function renderReportPdf(r: ProcedureReport, images: readonly RenderedImage[]): Promise<Uint8Array> {
  const [{ PDFDocument, rgb }, { default: fontkit }] = await Promise.all([
    import('pdf-lib'),
    import('@pdf-lib/fontkit'),
  ]);
  const doc = await PDFDocument.create();
  const made = new Date(r.generatedAt);
  const when = Number.isFinite(made.getTime()) ? made : new Date(0);
  doc.setTitle(pdfSafe(r.patient.name ? `${r.title}: ${r.patient.name}` : r.title));
  doc.setSubject(pdfSafe(r.procedure.title));
  doc.setCreator('Corridor');
  doc.setProducer('Corridor (pdf-lib)');
  doc.setCreationDate(when);
  doc.setModificationDate(when);
  doc.registerFontkit(fontkit);
  const [regular, bold] = await reportFonts();
  const L = new Layout(
    doc,
    await doc.embedFont(regular, { subset: true }),
    await doc.embedFont(bold, { subset: true }),
    rgb,
  );
  L.text(r.title, 18, { bold: true });
  L.gap(4);
  for (const [k, v] of patientRows(r)) L.text(`${k}: ${v}`, 9.5);
  L.gap(6);
  L.text('Alerts', 11, { bold: true });
  if (!r.alerts.length) L.text('No alerts.', 9);
  for (const a of r.alerts)
    L.text(`${a.severity.toUpperCase()}: ${a.text}`, 9, {
      color: a.severity === 'stop' ? [0.7, 0, 0] : a.severity === 'warning' ? [0.6, 0.35, 0] : [0, 0, 0],
    });
  for (const t of reportTables(r)) L.table(t);
  if (images.length) {
    L.newPage();
    L.text('Key images', 11, { bold: true });
    const colW = (L.width - 12) / 2;
    let col = 0;
    let rowTop = L.y;
    let rowBottom = L.y;
    for (const im of images) {
      const png = await doc.embedPng(im.png);
      const scale = colW / im.image.width;
      const h = im.image.height * scale;
      const caption = L.wrap(`${im.image.title}. ${im.image.caption}`, 8, colW);
      const block = h + caption.length * 10 + 14;
      if (col === 0) {
        if (L.y - block < MARGIN) L.newPage();
        rowTop = L.y;
        rowBottom = L.y;
      }
      const x = MARGIN + col * (colW + 12);
      L.page.drawImage(png, { x, y: rowTop - 6 - h, width: colW, height: h });
      caption.forEach((line, k) =>
        L.page.drawText(line, { x, y: rowTop - 6 - h - 10 * (k + 1), size: 8, font: L.font, color: rgb(0, 0, 0) }),
      );
      rowBottom = Math.min(rowBottom, rowTop - block);
      col = 1 - col;
      if (col === 0) L.y = rowBottom;
    }
    L.y = rowBottom;
  }
  L.gap(8);
  L.text(`Corridor ${r.kind}, schema ${r.schemaVersion}. Coordinates are DICOM LPS millimetres.`, 7.5, {
    color: [0.3, 0.3, 0.3],
  });
  return doc.save({ useObjectStreams: false });
}
