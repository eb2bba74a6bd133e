/**
 * The open case in the case store: the plan saved as it changes (debounced, If-Match on the revision it
 * was made on), a conflict kept for the user to resolve when another page saved first (never a silent
 * overwrite), the procedure's results and series saved as documents, and the case's timeline built from
 * what the store holds, each entry with the view state the user left it in.
 */
import { parsePlan, planToJson, type Plan, type PlanPath, type Point3 } from '@corridor/core';
import { CaseClient, caseIdFor, type DocKind } from './case-client.js';

/** Where the user left a step: the panel, the series shown, the crosshair, the selected path. */
export interface ViewState {
  panel: 'plan' | 'procedure';
  series: string;
  crosshair: Point3;
  selectedId: string | null;
}

export type TimelineKind = 'planning' | 'earlier' | 'fluoroscopy' | 'run' | 'verification' | 'cement';

export interface TimelineEntry {
  /** `kind/name` of its document in the case. */
  key: string;
  kind: TimelineKind;
  label: string;
  /** One line: the verification table's summary, the cement volumes and verdicts, ... */
  summary: string;
  revision: number;
  doc: Record<string, unknown>;
}

/** Another page saved the plan first: both versions, path by path, until the user keeps one. */
export interface PlanConflict {
  theirs: Plan;
  theirsEtag: string;
  theirsRevision: number;
  mine: Plan;
  /** Per path id: present in theirs / mine, and whether they differ. */
  rows: { id: string; theirs: PlanPath | null; mine: PlanPath | null; differs: boolean }[];
}

const ORDER: TimelineKind[] = ['planning', 'earlier', 'fluoroscopy', 'run', 'verification', 'cement'];

export const PLAN_DOC = 'plan';

function samePath(a: PlanPath, b: PlanPath): boolean {
  return (
    JSON.stringify(planToJson({ schemaVersion: 1, volume: {}, paths: [a] }).paths) ===
    JSON.stringify(planToJson({ schemaVersion: 1, volume: {}, paths: [b] }).paths)
  );
}

export function conflictRows(theirs: Plan, mine: Plan): PlanConflict['rows'] {
  const ids = [...new Set([...theirs.paths.map((p) => p.id), ...mine.paths.map((p) => p.id)])];
  return ids.map((id) => {
    const t = theirs.paths.find((p) => p.id === id) ?? null;
    const m = mine.paths.find((p) => p.id === id) ?? null;
    return { id, theirs: t, mine: m, differs: !t || !m || !samePath(t, m) };
  });
}

function entryOf(kind: DocKind, name: string, revision: number, doc: Record<string, unknown>): TimelineEntry | null {
  const key = `${kind}/${name}`;
  const s = (x: unknown) => (typeof x === 'string' ? x : '');
  if (kind === 'series') {
    const role = s(doc.role) as TimelineKind;
    if (!ORDER.includes(role)) return null;
    return { key, kind: role, label: s(doc.label) || name, summary: s(doc.summary), revision, doc };
  }
  if (kind === 'registrations') {
    const r = doc.summary as { moving?: string; metricValue?: number; verdict?: { status?: string } } | undefined;
    return {
      key,
      kind: 'earlier',
      label: `Registered: ${r?.moving ?? name}`,
      summary: r ? `${r.verdict?.status ?? ''}, metric ${Number(r.metricValue).toFixed(3)}` : '',
      revision,
      doc,
    };
  }
  if (kind === 'verifications') {
    const rep = (doc.outcome as { report?: { allPass?: boolean; paths?: { status: string }[] } } | undefined)?.report;
    const paths = rep?.paths ?? [];
    const pass = paths.filter((p) => p.status === 'pass').length;
    return {
      key,
      kind: 'verification',
      label: `Verification CBCT: ${s(doc.scan) || name}`,
      summary: `${rep?.allPass ? 'ALL PATHS PASS' : 'NOT ALL PATHS PASS'}: ${pass} of ${paths.length} pass`,
      revision,
      doc,
    };
  }
  if (kind === 'cement') {
    const rep = doc.report as { verdict?: string; scans?: { totalMl: number; verdict: string }[] } | undefined;
    const scans = rep?.scans ?? [];
    return {
      key,
      kind: 'cement',
      label: `Cement scans: ${scans.length}`,
      summary:
        scans.map((x, i) => `${i + 1}: ${x.totalMl.toFixed(2)} ml ${x.verdict.toUpperCase()}`).join(' · ') +
        (rep?.verdict ? ` → ${rep.verdict.toUpperCase()}` : ''),
      revision,
      doc,
    };
  }
  return null;
}

export class CaseSession {
  private etags = new Map<string, string>();
  private saved = new Map<string, string>();
  private chain: Promise<unknown> = Promise.resolve();
  timeline: TimelineEntry[] = [];
  conflict: PlanConflict | null = null;
  /** The timeline entry the user is on (its view state is saved when they leave it). */
  current: string | null = null;

  private constructor(
    readonly client: CaseClient,
    readonly caseId: string,
    readonly onChange: () => void,
  ) {}

  /** Open (or create) the case of a series; the plan stored in it, or null when it has none yet. */
  static async open(
    client: CaseClient,
    caseKey: string,
    name: string,
    onChange: () => void,
  ): Promise<{ session: CaseSession; plan: Plan | null }> {
    const id = caseIdFor(caseKey, name);
    const { documents } = await client.openCase(id, name);
    const s = new CaseSession(client, id, onChange);
    let plan: Plan | null = null;
    const kinds: DocKind[] = ['series', 'plans', 'registrations', 'verifications', 'cement'];
    await Promise.all(
      kinds.flatMap((kind) =>
        (documents[kind] ?? []).map(async (h) => {
          const d = await client.get(id, kind, h.name);
          if (!d) return;
          s.etags.set(`${kind}/${h.name}`, d.etag);
          s.saved.set(`${kind}/${h.name}`, d.text);
          if (kind === 'plans' && h.name === PLAN_DOC) plan = parsePlan(d.text, `case ${id} plan`);
          else if (kind !== 'plans')
            s.upsertEntry(kind, h.name, d.revision, JSON.parse(d.text) as Record<string, unknown>);
        }),
      ),
    );
    return { session: s, plan };
  }

  private upsertEntry(kind: DocKind, name: string, revision: number, doc: Record<string, unknown>) {
    const e = entryOf(kind, name, revision, doc);
    if (!e) return;
    this.timeline = [...this.timeline.filter((x) => x.key !== e.key), e].sort(
      (a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind) || a.key.localeCompare(b.key),
    );
  }

  /** One save after another, in order (a save waits for the one before it: it needs its ETag). */
  private queue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Save the plan made on the revision last read; on 409 keep the conflict for the user (nothing saved). */
  savePlan(plan: Plan): Promise<'saved' | 'unchanged' | 'conflict'> {
    return this.queue(async () => {
      if (this.conflict) {
        this.conflict.mine = plan;
        this.conflict.rows = conflictRows(this.conflict.theirs, plan);
        this.onChange();
        return 'conflict';
      }
      const key = `plans/${PLAN_DOC}`;
      const text = JSON.stringify(planToJson(plan));
      if (this.saved.get(key) === text) return 'unchanged';
      const r = await this.client.put(this.caseId, 'plans', PLAN_DOC, text, this.etags.get(key) ?? null);
      if (r.ok) {
        this.etags.set(key, r.etag);
        this.saved.set(key, text);
        return 'saved';
      }
      const theirs = parsePlan(r.current.document, 'the plan saved by another page');
      this.conflict = {
        theirs,
        theirsEtag: r.current.etag,
        theirsRevision: r.current.revision,
        mine: plan,
        rows: conflictRows(theirs, plan),
      };
      this.onChange();
      return 'conflict';
    });
  }

  /** Resolve the conflict: keep theirs (returned, to show) or keep mine (saved on their revision). */
  resolve(keep: 'theirs' | 'mine'): Promise<Plan> {
    return this.queue(async () => {
      const c = this.conflict;
      if (!c) throw new Error('no conflict to resolve');
      const key = `plans/${PLAN_DOC}`;
      if (keep === 'theirs') {
        this.etags.set(key, c.theirsEtag);
        this.saved.set(key, JSON.stringify(planToJson(c.theirs)));
        this.conflict = null;
        this.onChange();
        return c.theirs;
      }
      const text = JSON.stringify(planToJson(c.mine));
      const r = await this.client.put(this.caseId, 'plans', PLAN_DOC, text, c.theirsEtag);
      if (!r.ok) {
        // Yet another save came in meanwhile: the conflict is now against that one.
        const theirs = parsePlan(r.current.document, 'the plan saved by another page');
        this.conflict = {
          ...c,
          theirs,
          theirsEtag: r.current.etag,
          theirsRevision: r.current.revision,
          rows: conflictRows(theirs, c.mine),
        };
        this.onChange();
        throw new Error(`the plan was saved again elsewhere (revision ${r.current.revision}): compare once more`);
      }
      this.etags.set(key, r.etag);
      this.saved.set(key, text);
      this.conflict = null;
      this.onChange();
      return c.mine;
    });
  }

  /**
   * Save a document of the procedure (a result, a series, a view state). Results are computed, not
   * edited: a 409 (another page saved this name) is saved over on the newer revision, which the history
   * keeps, and said in the returned note.
   */
  saveDoc(kind: Exclude<DocKind, 'plans'>, name: string, doc: Record<string, unknown>): Promise<string | null> {
    return this.queue(async () => {
      const key = `${kind}/${name}`;
      const text = JSON.stringify(doc);
      if (this.saved.get(key) === text) return null;
      let note: string | null = null;
      let r = await this.client.put(this.caseId, kind, name, text, this.etags.get(key) ?? null);
      if (!r.ok) {
        note = `${key} had been saved by another page (revision ${r.current.revision}); it stays in the case's history.`;
        r = await this.client.put(this.caseId, kind, name, text, r.current.etag);
        if (!r.ok) throw new Error(`${key}: saved again elsewhere meanwhile; not saved`);
      }
      this.etags.set(key, r.etag);
      this.saved.set(key, text);
      this.upsertEntry(kind, name, r.revision, doc);
      this.onChange();
      return note;
    });
  }

  entry(key: string): TimelineEntry | undefined {
    return this.timeline.find((e) => e.key === key);
  }

  /** Wait for every save queued so far. */
  flush(): Promise<unknown> {
    return this.chain;
  }
}
