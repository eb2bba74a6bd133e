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

/** Another page saved the plan first: both versions, path by path, until the user keeps one or merges. */
export interface PlanConflict {
  theirs: Plan;
  theirsEtag: string;
  theirsRevision: number;
  mine: Plan;
  /** The plan both were made from (the revision this page last read), when it had read one. */
  base: Plan | null;
  /**
   * Per path id: present in theirs / mine, whether they differ, and the side a merge takes by default: a
   * path added (or changed) on one side only comes from that side; one changed on both, mine.
   */
  rows: { id: string; theirs: PlanPath | null; mine: PlanPath | null; differs: boolean; pick: 'theirs' | 'mine' }[];
}

/** For each path id, which version a merge takes. */
export type MergeChoices = Record<string, 'theirs' | 'mine'>;

/**
 * Merge two versions path by path: each path id from the side chosen for it (a side without that path
 * drops it), theirs' order first, then the paths only mine has. The plan's other fields are mine (this page's).
 */
export function mergePlans(theirs: Plan, mine: Plan, rows: PlanConflict['rows'], choices: MergeChoices = {}): Plan {
  const pick = (id: string) => choices[id] ?? rows.find((r) => r.id === id)?.pick ?? 'mine';
  const out: PlanPath[] = [];
  for (const r of rows) {
    const p = pick(r.id) === 'theirs' ? r.theirs : r.mine;
    if (p) out.push(p);
  }
  return { ...mine, paths: out };
}

const ORDER: TimelineKind[] = ['planning', 'earlier', 'fluoroscopy', 'run', 'verification', 'cement'];

export const PLAN_DOC = 'plan';

function samePath(a: PlanPath, b: PlanPath): boolean {
  return (
    JSON.stringify(planToJson({ schemaVersion: 1, volume: {}, paths: [a] }).paths) ===
    JSON.stringify(planToJson({ schemaVersion: 1, volume: {}, paths: [b] }).paths)
  );
}

export function conflictRows(theirs: Plan, mine: Plan, base: Plan | null = null): PlanConflict['rows'] {
  const ids = [...new Set([...theirs.paths.map((p) => p.id), ...mine.paths.map((p) => p.id)])];
  const same = (a: PlanPath | null, b: PlanPath | null) => (!a || !b ? a === b : samePath(a, b));
  return ids.map((id) => {
    const t = theirs.paths.find((p) => p.id === id) ?? null;
    const m = mine.paths.find((p) => p.id === id) ?? null;
    const b = base ? (base.paths.find((p) => p.id === id) ?? null) : undefined;
    const differs = !same(t, m);
    // Only one side moved away from the base (or, without one, only one side has the path): that side.
    let pick: 'theirs' | 'mine' = 'mine';
    if (differs) {
      if (b !== undefined) pick = same(m, b) ? 'theirs' : 'mine';
      else pick = m ? 'mine' : 'theirs';
    }
    return { id, theirs: t, mine: m, differs, pick };
  });
}

function entryOf(kind: DocKind, name: string, revision: number, doc: Record<string, unknown>): TimelineEntry | null {
  const key = `${kind}/${name}`;
  const s = (x: unknown) => (typeof x === 'string' ? x : '');
  if (kind === 'series') {
    const role = s(doc.role) as TimelineKind;
    if (!ORDER.includes(role)) return null;
    const mc = doc.motion as { status?: string; frameName?: string } | null | undefined;
    const motion = mc ? `motion correction ${mc.status === 'ok' ? 'applied' : 'FAILED (not applied)'}` : '';
    const summary = [s(doc.summary), motion].filter(Boolean).join(' · ');
    return { key, kind: role, label: s(doc.label) || name, summary, revision, doc };
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
    caseId?: string,
  ): Promise<{ session: CaseSession; plan: Plan | null }> {
    const id = caseId ?? caseIdFor(caseKey, name);
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
        this.conflict.rows = conflictRows(this.conflict.theirs, plan, this.conflict.base);
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
      const baseText = this.saved.get(key);
      const base = baseText ? parsePlan(baseText, 'the plan this page read') : null;
      this.conflict = {
        theirs,
        theirsEtag: r.current.etag,
        theirsRevision: r.current.revision,
        mine: plan,
        base,
        rows: conflictRows(theirs, plan, base),
      };
      this.onChange();
      return 'conflict';
    });
  }

  /**
   * Resolve the conflict: keep theirs (returned, to show), keep mine (saved on their revision), or merge
   * path by path (`choices` per path id, else each row's default), saved on their revision and returned.
   */
  resolve(keep: 'theirs' | 'mine' | 'merge', choices: MergeChoices = {}): Promise<Plan> {
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
      const result = keep === 'mine' ? c.mine : mergePlans(c.theirs, c.mine, c.rows, choices);
      const text = JSON.stringify(planToJson(result));
      const r = await this.client.put(this.caseId, 'plans', PLAN_DOC, text, c.theirsEtag);
      if (!r.ok) {
        // Yet another save came in meanwhile: the conflict is now against that one.
        const theirs = parsePlan(r.current.document, 'the plan saved by another page');
        this.conflict = {
          ...c,
          base: c.theirs,
          theirs,
          theirsEtag: r.current.etag,
          theirsRevision: r.current.revision,
          mine: result,
          rows: conflictRows(theirs, result, c.theirs),
        };
        this.onChange();
        throw new Error(`the plan was saved again elsewhere (revision ${r.current.revision}): compare once more`);
      }
      this.etags.set(key, r.etag);
      this.saved.set(key, text);
      this.conflict = null;
      this.onChange();
      return result;
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

  /** A document of the case as last read or saved here (`kind/name`), parsed. */
  doc(key: string): Record<string, unknown> | undefined {
    const t = this.saved.get(key);
    return t === undefined ? undefined : (JSON.parse(t) as Record<string, unknown>);
  }

  entry(key: string): TimelineEntry | undefined {
    return this.timeline.find((e) => e.key === key);
  }

  /** Wait for every save queued so far. */
  flush(): Promise<unknown> {
    return this.chain;
  }
}
