/**
 * The procedure report as data: the plan, the verification and cement reports and the C-arm views in, one
 * structured model out, which the node package renders as HTML and PDF and stores as DICOM (and the
 * workstation and the case server can call the same). Pure: no file, no clock (the caller gives the time).
 */
import { UsageError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import type { Plan, PlanPath } from '../plan/model.js';
import type { PathViews, CarmView } from '../carm/views.js';
import type { PelvicViews } from '../carm/pelvic-views.js';
import type { VerificationReport, PathVerification } from '../verify/verify.js';
import type { CementReport, CementVerdict } from '../cement/cement.js';

export const REPORT_SCHEMA_VERSION = 1;

export interface ReportPatient {
  name?: string;
  id?: string;
  birthDate?: string;
  sex?: string;
}

export interface ReportProcedure {
  /** Default 'Percutaneous sacral fixation and sacroplasty'. */
  title?: string;
  /** YYYY-MM-DD, or any text the caller wants shown. */
  date?: string;
  operator?: string;
  institution?: string;
}

export interface ReportInput {
  plan: Plan;
  verification?: VerificationReport;
  cement?: CementReport;
  /** C-arm views of each path (core's pathViews), and the pelvic inlet/outlet (pelvicViews) when known. */
  views?: { carm: string; carmName?: string; paths: readonly PathViews[]; pelvic?: PelvicViews | null };
  patient?: ReportPatient;
  procedure?: ReportProcedure;
  /** ISO 8601 time the report was made (the caller's clock). */
  generatedAt: string;
  /** Names of the input files, shown in the report's sources. */
  sources?: { plan?: string; verification?: string; cement?: string; image?: string };
}

export interface ReportAngles {
  label: string;
  primaryDeg: number;
  secondaryDeg: number;
  /** LAO/RAO and CRAN/CAUD, one decimal. */
  text: string;
  reachable: boolean;
  isocenter: Point3;
}

export interface ReportAchieved {
  status: 'pass' | 'fail' | 'missing';
  /** Instrument found: its outer end and tip (LPS mm, plan frame). */
  outerEnd?: Point3;
  tip?: Point3;
  /** Where the instrument's axis crosses the skin-side entry plane (verify's entryAt). */
  entryAt?: Point3;
  instrumentLengthMm?: number;
  entryOffsetMm?: number;
  tipOffsetMm?: number;
  angleDeg?: number;
  depthDifferenceMm?: number;
  lateralAtTargetMm?: number;
  reasons: string[];
}

export interface ReportPath {
  id: string;
  name: string;
  kind: PlanPath['kind'];
  diameterMm: number;
  entry: Point3;
  target: Point3;
  lengthMm: number;
  /** Unit vector entry -> target. */
  direction: Point3;
  marginMm?: number;
  views: ReportAngles[];
  achieved?: ReportAchieved;
}

export interface ReportCementSite {
  pathId: string;
  name: string;
  volumeMl: number;
  growthMl: number;
}

export interface ReportCementScan {
  index: number;
  source: string;
  verdict: CementVerdict;
  totalMl: number;
  sites: ReportCementSite[];
  leaks: { name: string; volumeMl: number; site: string; at: Point3 }[];
  /** Nearest critical structure per family (foramen, canal, ...), null beyond reach. */
  nearest: { structure: string; name: string; distanceMm: number | null; cementAt: Point3 | null; at: Point3 | null }[];
  reasons: string[];
}

export interface ReportAlert {
  severity: 'stop' | 'warning' | 'info';
  source: 'plan' | 'verification' | 'cement' | 'views';
  text: string;
}

export interface ProcedureReport {
  schemaVersion: number;
  kind: 'corridor-procedure-report';
  title: string;
  generatedAt: string;
  patient: ReportPatient;
  procedure: { title: string; date?: string; operator?: string; institution?: string };
  planImage: { file?: string; seriesInstanceUid?: string };
  paths: ReportPath[];
  /** Pelvic views (inlet, outlet) when known. */
  pelvicViews: ReportAngles[];
  carm?: { id: string; name?: string };
  verification?: { tolerance: { mm: number; deg: number }; allPass: boolean; unplanned: number; notes: string[] };
  cement?: { verdict: CementVerdict; warningMm: number; scans: ReportCementScan[]; notes: string[] };
  alerts: ReportAlert[];
  sources: NonNullable<ReportInput['sources']>;
}

const f1 = (x: number) => x.toFixed(1);

/** "LAO 12.0, CRAN 30.5" from signed primary (LAO +) and secondary (CRAN +) angles. */
export function anglesText(primaryDeg: number, secondaryDeg: number): string {
  return (
    `${primaryDeg >= 0 ? 'LAO' : 'RAO'} ${f1(Math.abs(primaryDeg))}, ` +
    `${secondaryDeg >= 0 ? 'CRAN' : 'CAUD'} ${f1(Math.abs(secondaryDeg))}`
  );
}

function angles(label: string, v: CarmView): ReportAngles {
  return {
    label,
    primaryDeg: v.primaryDeg,
    secondaryDeg: v.secondaryDeg,
    text: anglesText(v.primaryDeg, v.secondaryDeg),
    reachable: v.reachable,
    isocenter: [v.isocenter[0], v.isocenter[1], v.isocenter[2]],
  };
}

function achievedOf(v: PathVerification): ReportAchieved {
  const a: ReportAchieved = { status: v.status, reasons: [...v.reasons] };
  if (v.instrument) {
    a.outerEnd = [...v.instrument.outerEnd];
    a.tip = [...v.instrument.tip];
    a.instrumentLengthMm = v.instrument.lengthMm;
  }
  if (v.deviation) {
    a.entryAt = [...v.deviation.entryAt];
    a.entryOffsetMm = v.deviation.entryOffsetMm;
    a.tipOffsetMm = v.deviation.tipOffsetMm;
    a.angleDeg = v.deviation.angleDeg;
    a.depthDifferenceMm = v.deviation.depthDifferenceMm;
    a.lateralAtTargetMm = v.deviation.lateralAtTargetMm;
  }
  return a;
}

/**
 * Throws UsageError when the reports do not belong to the plan: a verified path or a cement site the plan
 * does not have. Called by buildProcedureReport; callers may call it first, before loading any image.
 */
export function checkReportInputs(input: Pick<ReportInput, 'plan' | 'verification' | 'cement' | 'sources'>): void {
  const { plan, verification, cement } = input;
  if (plan.paths.length === 0) throw new UsageError('the plan has no paths to report', input.sources?.plan);
  const ids = new Set(plan.paths.map((p) => p.id));
  for (const v of verification?.paths ?? []) {
    if (!ids.has(v.pathId)) {
      throw new UsageError(
        `the verification report checks path "${v.pathId}", which the plan does not have`,
        input.sources?.verification,
      );
    }
  }
  for (const s of cement?.scans ?? [])
    for (const site of s.sites)
      if (!ids.has(site.pathId))
        throw new UsageError(
          `the cement report has an injection site "${site.pathId}", which the plan does not have`,
          input.sources?.cement,
        );
}

/** Build the report model. Throws UsageError when the inputs do not belong together (unknown path ids). */
export function buildProcedureReport(input: ReportInput): ProcedureReport {
  const { plan, verification, cement } = input;
  checkReportInputs(input);
  const alerts: ReportAlert[] = [];
  const viewsById = new Map((input.views?.paths ?? []).map((v) => [v.id, v]));
  const verById = new Map((verification?.paths ?? []).map((v) => [v.pathId, v]));
  const paths: ReportPath[] = plan.paths.map((p) => {
    const d: Point3 = [p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]];
    const len = Math.hypot(d[0], d[1], d[2]);
    const out: ReportPath = {
      id: p.id,
      name: p.name,
      kind: p.kind,
      diameterMm: p.diameterMm,
      entry: [...p.entry],
      target: [...p.target],
      lengthMm: len,
      direction: [d[0] / len, d[1] / len, d[2] / len],
      views: [],
    };
    if (p.marginMm !== undefined) out.marginMm = p.marginMm;
    const w = viewsById.get(p.id);
    if (w) {
      out.views.push(angles("bull's-eye", w.bullseye), angles('progress', w.progress));
      for (const [label, v] of [
        ["bull's-eye", w.bullseye],
        ['progress', w.progress],
      ] as const) {
        if (!v.reachable)
          alerts.push({
            severity: 'warning',
            source: 'views',
            text: `${p.name}: the ${label} view (${anglesText(v.primaryDeg, v.secondaryDeg)}) is beyond the C-arm's limits`,
          });
      }
    }
    const ver = verById.get(p.id);
    if (ver) {
      out.achieved = achievedOf(ver);
      if (ver.status !== 'pass') {
        const why = ver.reasons.length ? `: ${ver.reasons.join('; ')}` : '';
        alerts.push({ severity: 'stop', source: 'verification', text: `${p.name} ${ver.status.toUpperCase()}${why}` });
      }
    } else if (verification) {
      alerts.push({ severity: 'warning', source: 'verification', text: `${p.name}: not in the verification report` });
    }
    return out;
  });
  const pelvic = input.views?.pelvic;
  const pelvicViews = pelvic ? [angles('inlet', pelvic.inlet), angles('outlet', pelvic.outlet)] : [];
  const report: ProcedureReport = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'corridor-procedure-report',
    title: 'Procedure report',
    generatedAt: input.generatedAt,
    patient: { ...(input.patient ?? {}) },
    procedure: {
      title: input.procedure?.title ?? 'Percutaneous sacral fixation and sacroplasty',
      ...(input.procedure?.date ? { date: input.procedure.date } : {}),
      ...(input.procedure?.operator ? { operator: input.procedure.operator } : {}),
      ...(input.procedure?.institution ? { institution: input.procedure.institution } : {}),
    },
    planImage: {
      ...(plan.volume.file ? { file: plan.volume.file } : {}),
      ...(plan.volume.seriesInstanceUid ? { seriesInstanceUid: plan.volume.seriesInstanceUid } : {}),
    },
    paths,
    pelvicViews,
    alerts,
    sources: { ...(input.sources ?? {}) },
  };
  if (input.views)
    report.carm = { id: input.views.carm, ...(input.views.carmName ? { name: input.views.carmName } : {}) };
  if (verification) {
    report.verification = {
      tolerance: { ...verification.tolerance },
      allPass: verification.allPass,
      unplanned: verification.unplanned.length,
      notes: [...verification.notes],
    };
    for (const u of verification.unplanned)
      alerts.push({
        severity: 'warning',
        source: 'verification',
        text: `unplanned instrument ${u.id}: ${f1(u.lengthMm)} mm, tip at (${u.tip.map(f1).join(', ')})`,
      });
  }
  if (cement) {
    const scans: ReportCementScan[] = cement.scans.map((s) => {
      const nearest = new Map<string, ReportCementScan['nearest'][number]>();
      for (const d of s.distances) {
        const cur = nearest.get(d.structure);
        if (!cur || (d.distanceMm !== null && (cur.distanceMm === null || d.distanceMm < cur.distanceMm)))
          nearest.set(d.structure, {
            structure: d.structure,
            name: d.name,
            distanceMm: d.distanceMm,
            cementAt: d.cementAt ? [...d.cementAt] : null,
            at: d.at ? [...d.at] : null,
          });
      }
      return {
        index: s.index,
        source: s.source,
        verdict: s.verdict,
        totalMl: s.totalMl,
        sites: s.sites.map((x) => ({ pathId: x.pathId, name: x.name, volumeMl: x.volumeMl, growthMl: x.growthMl })),
        leaks: s.leaks.map((l) => ({ name: l.name, volumeMl: l.volumeMl, site: l.site, at: [...l.at] })),
        nearest: [...nearest.values()],
        reasons: s.reasons.map((r) => `${r.verdict.toUpperCase()}: ${r.reason}`),
      };
    });
    report.cement = { verdict: cement.verdict, warningMm: cement.warningMm, scans, notes: [...cement.notes] };
    const last = cement.scans[cement.scans.length - 1];
    if (last && last.verdict !== 'continue') {
      alerts.push({
        severity: last.verdict === 'stop' ? 'stop' : 'warning',
        source: 'cement',
        text:
          `cement scan ${last.index + 1}: ${last.verdict.toUpperCase()}` +
          (last.reasons.length ? ` (${last.reasons.map((r) => r.reason).join('; ')})` : ''),
      });
    }
    for (const s of cement.scans)
      for (const l of s.leaks)
        alerts.push({
          severity: 'stop',
          source: 'cement',
          text: `cement scan ${s.index + 1}: ${l.volumeMl.toFixed(2)} ml leaked into ${l.name} from ${l.site}`,
        });
  }
  // Stop first, then warnings, then the rest; in input order within each.
  const rank = { stop: 0, warning: 1, info: 2 } as const;
  report.alerts = alerts
    .map((a, i) => ({ a, i }))
    .sort((x, y) => rank[x.a.severity] - rank[y.a.severity] || x.i - y.i)
    .map((x) => x.a);
  return report;
}
