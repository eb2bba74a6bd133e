/**
 * The workstation controller: opens cases, keeps the plan analysed and saved, and wires the views and
 * panels to the store. Every computation is a core call (here or in the case worker).
 */
import {
  CEMENT_WARNING_MM,
  CancelledError,
  DEFAULT_TOOLS,
  VERIFY_TOLERANCE_DEG,
  VERIFY_TOLERANCE_MM,
  createVolume,
  PLAN_SCHEMA_VERSION,
  SAME_GEOMETRY_TOLERANCE_MM,
  UsageError,
  mat4MaxAbsDiff,
  mergePlanPaths,
  nearestVoxelCentre,
  parsePlan,
  planToJson,
  readNifti,
  writeNifti,
  planToSlicerMarkups,
  slicerMarkupsToPlan,
  type BoneMaskPresetName,
  type CarmSystem,
  type NamedBytes,
  type PelvicViews,
  type Plan,
  type PlanPath,
  type Point3,
  type VerificationReport,
  type Volume,
} from '@corridor/core';
import { WorkerClient } from './rpc.js';
import { CaseClient, getBlobs, putBlobs, safeName, type BlobRef } from './case-client.js';
import { CaseSession, type ViewState } from './case-session.js';
import type { MotionCorrection } from './store.js';
import { Store, freshId } from './store.js';
import type {
  AutoPlanResult,
  CaseInfo,
  PathReport,
  ReportImagesReply,
  ReportImagesRequest,
  SeriesSummary,
} from './types.js';
import { volumeFromMessage, volumeToMessage, type VolumeMessage } from './volume-message.js';
import type { ShownInstrument } from './store.js';
import type { CementOutcome, RegistrationSummary, ScanFrame, VerifyOutcome } from './worker/procedure.js';
import type { ReconOptions, ReconReply } from './worker/recon.worker.js';
import { volumeCenter } from './geometry.js';

export type MessageKind = 'error' | 'warning' | 'info';

export interface AppUi {
  message(kind: MessageKind, text: string): void;
  status(text: string, progress?: { done: number; total: number } | null): void;
  chooseSeries(series: SeriesSummary[]): Promise<number | null>;
  /** Show an XA/RF frame kept in the case in the C-arm panel, as opening its file does (not saved again). */
  openXa?(file: NamedBytes): Promise<void>;
}

/**
 * A single 2D image (one slice: a radiograph, a mammogram, a lone DICOM image or a one-slice NIfTI) has
 * no volume to plan in or to project: it is refused before the open case is replaced, with one message.
 * (A real fluoroscopy frame is opened in the C-arm panel's XA/RF field instead.)
 */
export function refuseFlatImage(s: SeriesSummary, openCase: string | null): void {
  if (s.dims.filter((d) => d > 1).length === 3) return;
  const what = [s.description, s.modality].filter(Boolean).join(', ') || s.format;
  throw new UsageError(
    `${what} is a single 2D image (${s.dims.join(' × ')} voxels), not a 3D image to plan on; ` +
      (openCase ? `${openCase} stays open` : 'nothing was opened') +
      '. A fluoroscopy frame goes in the C-arm panel (XA/RF frame).',
  );
}

/** A scan of the procedure loaded into the open case. */
export type ScanRole = 'verification' | 'cement-baseline' | 'cement';

const ROLE_NAMES: Record<ScanRole, string> = {
  verification: 'verification scan',
  'cement-baseline': 'cement baseline',
  cement: 'cement scan',
};

/** The instruments of a verification report, to draw beside the planned paths. */
export function instrumentsOf(r: VerificationReport): ShownInstrument[] {
  const out: ShownInstrument[] = [];
  for (const p of r.paths) {
    const i = p.instrument;
    if (!i) continue;
    out.push({
      id: i.id,
      pathId: p.pathId,
      status: p.status === 'pass' ? 'pass' : 'fail',
      outerEnd: i.outerEnd,
      tip: i.tip,
      diameterMm: i.apparentDiameterMm,
    });
  }
  for (const i of r.unplanned)
    out.push({
      id: i.id,
      pathId: null,
      status: 'unplanned',
      outerEnd: i.outerEnd,
      tip: i.tip,
      diameterMm: i.apparentDiameterMm,
    });
  return out;
}

/** The cement mask's crop as a volume of its own (same patient frame as the baseline). */
export function cementMaskVolume(m: NonNullable<CementOutcome['mask']>): Volume {
  const a = m.indexToPatient;
  const [i, j, k] = m.origin;
  const M = Float64Array.from(a);
  for (let r = 0; r < 3; r++) M[4 * r + 3] = a[4 * r] * i + a[4 * r + 1] * j + a[4 * r + 2] * k + a[4 * r + 3];
  return createVolume({ data: m.data, dims: m.dims, indexToPatient: M, meta: { source: 'cement' } });
}

/** Default voxel of the interactive phantom, mm: coarse enough to generate and plan in seconds. */
export const PHANTOM_VOXEL_MM = 1.5;

export class App {
  readonly store = new Store();
  private caseWorker: WorkerClient;
  private planVersion = 0;
  private analyzedVersion = -1;
  private analysisTimer = 0;
  private analysisRunning = false;
  private saveTimer = 0;
  caseKey = '';
  /** Time from opening a case to its first image, ms (for the benchmark). */
  timings: Record<string, number> = {};
  addMode: { entry: Point3 | null } | null = null;
  autoPlanNotes: string[] = [];
  /** The case server's API when the page was served by `corridor start` (null: static hosting). */
  private caseClient: Promise<CaseClient | null>;
  /** The open case in the case store (null without the API, or until it is opened). */
  session: CaseSession | null = null;
  /** Opening the case in the store (a save waits for it). */
  private attached: Promise<void> = Promise.resolve();
  /** Called when the case's timeline or its conflict changes. */
  onCase: () => void = () => undefined;
  /** The long operation running in the case worker, which Cancel stops (null when none). */
  running: { label: string; cancel: () => void } | null = null;
  onRunning: () => void = () => undefined;
  /** How to open the current case again in a fresh case worker (after a cancel). */
  private reopen: (() => Promise<void>) | null = null;
  /** Where the planning series came from, as its series document says (saved when the case is attached). */
  private planningSource: Record<string, unknown> = {};
  /** The case id the next attach must use (a case reopened from the store's list), else derived. */
  private forcedCaseId: string | null = null;
  /** The fluoroscopy saves in flight, one after another (saveFluoroFrame, saveMotion). */
  private fluoroSaves: Promise<void> = Promise.resolve();
  /** The fluoroscopy entry the motion correction is saved in. */
  private motionKey: string | null = null;
  /** Set while a correction is being restored from the case (not saved again). */
  private restoringMotion = false;

  constructor(private ui: AppUi) {
    this.caseWorker = this.newCaseWorker();
    this.caseClient = CaseClient.detect();
    this.store.on('plan', () => {
      this.planVersion++;
      this.scheduleAnalysis();
      this.scheduleSave();
    });
    this.store.on('motion', () => {
      if (!this.restoringMotion) void this.saveMotion(this.store.motionCorrection);
    });
  }

  /** Whether the page has a case store behind it (files are then kept in the case). */
  private async hasStore(): Promise<boolean> {
    return (await this.caseClient) !== null;
  }

  private newCaseWorker(): WorkerClient {
    return new WorkerClient(
      new Worker(new URL('./worker/case.worker.ts', import.meta.url), { type: 'module' }),
      'case',
    );
  }

  /**
   * A long operation in the case worker, with progress in the status bar and a Cancel: cancelling ends
   * the worker (its loops are synchronous: nothing else stops them) and starts a fresh one, into which
   * the open case is loaded again; the operation ends in a CancelledError and changes nothing.
   */
  private busy<T>(label: string, p: Promise<T>): Promise<T> {
    document.body.dataset.state = 'busy';
    this.ui.status(label, { done: 0, total: 1 });
    let cancelled = false;
    const stop = new Promise<never>((_, reject) => {
      this.running = {
        label,
        cancel: () => {
          if (cancelled) return;
          cancelled = true;
          reject(new CancelledError(`${label.replace(/…$/, '')}: cancelled`));
          this.caseWorker.terminate();
          this.caseWorker = this.newCaseWorker();
          const again = this.reopen;
          const st = this.store;
          if (again && st.volume)
            void again().catch((e: unknown) =>
              this.ui.message('error', `The case could not be loaded again after the cancel: ${String(e)}`),
            );
          else if (st.volume)
            this.ui.message(
              'warning',
              `${st.caseInfo?.name ?? 'The case'} must be opened again to be analysed: its images were in the stopped worker.`,
            );
          if (st.volume && (st.verificationScan || st.cementBaseline))
            this.ui.message('warning', 'Load the verification or cement scans again to check them anew.');
        },
      };
      this.onRunning();
    });
    stop.catch(() => undefined);
    return Promise.race([p, stop]).finally(() => {
      this.running = null;
      this.onRunning();
      document.body.dataset.state = 'ready';
      this.ui.status(cancelled ? 'Cancelled' : 'Ready', null);
      if (cancelled) document.body.dataset.cancelled = label;
    });
  }

  /** Stop the running long operation (loading, automatic planning, verify, cement, registration). */
  cancelRunning(): void {
    this.running?.cancel();
  }

  private progress = (done: number, total: number, label: string) => this.ui.status(label, { done, total });

  async openPhantom(voxelMm = PHANTOM_VOXEL_MM): Promise<void> {
    const t0 = performance.now();
    const r = await this.busy(
      'Generating the phantom…',
      this.caseWorker.call<{ volume: VolumeMessage; info: CaseInfo }>('openPhantom', [voxelMm], [], this.progress),
    );
    this.timings.phantomGenerateMs = performance.now() - t0;
    this.reopen = async () => {
      await this.caseWorker.call('openPhantom', [voxelMm], []);
    };
    this.showCase(r.volume, r.info, t0, { files: [r.info.name], phantom: { voxelMm } });
  }

  /**
   * Open image files as the case. With a case store the files are kept in the case (stored when it is
   * attached); `opts.pacs` (a series retrieved from the PACS) is kept as a reference instead, and
   * `opts.index` chooses the series without asking (a case reopened from the store).
   */
  async openFiles(files: NamedBytes[], opts: { pacs?: Record<string, unknown>; index?: number } = {}): Promise<void> {
    const t0 = performance.now();
    const keep = !opts.pacs && (await this.hasStore());
    const found = await this.busy(
      `Reading ${files.length} file(s)…`,
      this.caseWorker.call<{ series: SeriesSummary[]; skipped: { name: string; reason: string }[] }>(
        'openFiles',
        [files, keep],
        files.map((f) => f.bytes.buffer),
        this.progress,
      ),
    );
    if (found.skipped.length)
      this.ui.message(
        'warning',
        `${found.skipped.length} file(s) skipped:\n${found.skipped
          .slice(0, 5)
          .map((s) => `${s.name}: ${s.reason}`)
          .join('\n')}`,
      );
    let index = opts.index ?? 0;
    if (opts.index === undefined && found.series.length > 1) {
      const chosen = await this.ui.chooseSeries(found.series);
      if (chosen === null) return;
      index = chosen;
    }
    if (!found.series[index]) throw new UsageError(`the files hold no series ${index + 1}`);
    refuseFlatImage(found.series[index], this.store.caseInfo?.name ?? null);
    for (const w of found.series[index].warnings) this.ui.message('warning', w);
    const r = await this.busy(
      'Opening the series…',
      this.caseWorker.call<{ volume: VolumeMessage; info: CaseInfo }>('chooseSeries', [index], [], this.progress),
    );
    // The files went to the worker (transferred): after a cancel the case is opened again from them.
    this.reopen = null;
    this.showCase(
      r.volume,
      r.info,
      t0,
      opts.pacs ? { pacs: opts.pacs } : keep ? { keptFiles: true, index } : { files: files.map((f) => f.name) },
    );
  }

  /**
   * "Export de-identified": the case's DICOM objects (the files kept in its series) de-identified by the
   * server (PS3.15 Basic Profile, UIDs replaced consistently within the case), downloaded as one
   * multipart/related file, or sent to the PACS the server forwards to.
   */
  async exportDeidentified(to: 'download' | 'pacs'): Promise<void> {
    await this.attached;
    const s = this.session;
    if (!s) throw new UsageError('no case store behind this page: nothing to export from');
    const r = await fetch(`/api/cases/${encodeURIComponent(s.caseId)}/export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ deidentify: true, to }),
    });
    if (!r.ok) {
      const j = (await r.json().catch(() => ({}))) as { error?: { message?: string } };
      throw new UsageError(`export refused (${r.status}): ${j.error?.message ?? r.statusText}`, s.caseId);
    }
    if (to === 'pacs') {
      const j = (await r.json()) as { instances: number; stored: number; skipped: unknown[] };
      this.ui.message('info', `Exported ${j.stored} of ${j.instances} de-identified instance(s) to the PACS.`);
      return;
    }
    const blob = await r.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${s.caseId}-deidentified.multipart`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    this.ui.message('info', `Exported the case de-identified (${(blob.size / 1e6).toFixed(1)} MB, multipart/related).`);
  }

  /** The cases in the store (empty without one). */
  async storedCases(): Promise<{ id: string; title: string | null; updatedAt: string; documents: number }[]> {
    const c = await this.caseClient;
    return c ? c.listCases() : [];
  }

  /**
   * Open a case of the store as it was left, without opening any file: its planning series (the files
   * kept in the case, the PACS series it names fetched again, or the phantom), then its plan, scans,
   * 3D runs and results (attachCase).
   */
  async openStoredCase(id: string): Promise<void> {
    const c = await this.caseClient;
    if (!c) throw new UsageError('no case store behind this page', id);
    const d = await c.get(id, 'series', 'planning');
    if (!d) throw new UsageError('the case has no planning series to open', id);
    const doc = JSON.parse(d.text) as {
      blobs?: BlobRef[];
      index?: number;
      phantom?: { voxelMm: number };
      pacs?: { studyInstanceUid: string; seriesInstanceUid: string; segmentations?: string[] };
    };
    this.forcedCaseId = id;
    try {
      if (doc.phantom) await this.openPhantom(doc.phantom.voxelMm);
      else if (doc.blobs) {
        const files = await this.busy(
          `Reading the case's ${doc.blobs.length} file(s) from the store…`,
          getBlobs(doc.blobs, '/api', (done, total) =>
            this.ui.status('Reading the case from the store…', { done, total }),
          ),
        );
        await this.openFiles(files, { index: doc.index ?? 0 });
      } else if (doc.pacs) {
        const files = await this.busy('Retrieving the case from the PACS…', this.retrievePacs(doc.pacs));
        await this.openFiles(files, { pacs: doc.pacs, index: 0 });
      } else throw new UsageError('the planning series names neither files kept in the case nor a PACS series', id);
    } finally {
      this.forcedCaseId = null;
    }
  }

  /** A PACS series (and the study's segmentations) retrieved again through the server (WADO-RS). */
  private async retrievePacs(ref: {
    studyInstanceUid: string;
    seriesInstanceUid: string;
    segmentations?: string[];
  }): Promise<NamedBytes[]> {
    const { workstationPacs } = await import('./ui/pacs-panel.js');
    const client = workstationPacs();
    const files: NamedBytes[] = [];
    await client.retrieveSeries(ref.studyInstanceUid, ref.seriesInstanceUid, {
      onInstance: (bytes, i) => void files.push({ name: `pacs-${i}.dcm`, bytes: bytes.slice() }),
      onProgress: (p) => this.ui.status('Retrieving from the PACS…', { done: p.instances, total: p.instances + 1 }),
    });
    for (const seg of ref.segmentations ?? [])
      await client.retrieveSeries(ref.studyInstanceUid, seg, {
        onInstance: (bytes, i) => void files.push({ name: `pacs-seg-${i}.dcm`, bytes: bytes.slice() }),
      });
    return files;
  }

  private showCase(msg: VolumeMessage, info: CaseInfo, t0: number, source: Record<string, unknown>) {
    this.planningSource = source;
    this.motionKey = null;
    this.scanSeries = { verification: null, cement: [] };
    const v = volumeFromMessage(msg);
    const st = this.store;
    st.volume = v;
    st.caseInfo = info;
    // On a voxel centre: each of the three slice views then shows an acquired slice, not a blend of two.
    st.crosshair = nearestVoxelCentre(v, info.suggestedCrosshair ?? volumeCenter(v));
    st.carm = { primaryDeg: 0, secondaryDeg: 0, isocenter: info.suggestedCrosshair ?? volumeCenter(v) };
    st.xa = null;
    st.clearMotionCorrection();
    st.series = [{ id: 'planning', name: `${info.name} (planning)`, volume: v }];
    st.shownSeries = 'planning';
    st.verification = null;
    st.verificationScan = null;
    st.instruments = [];
    st.registration = null;
    st.cementBaseline = null;
    st.cementScans = [];
    st.cement = null;
    st.cementOverlay = null;
    this.caseKey = `corridor.plan.${info.name}.${v.dims.join('x')}.${v.spacing.map((s) => s.toFixed(3)).join('x')}`;
    st.resetPlan({
      schemaVersion: PLAN_SCHEMA_VERSION,
      volume: { file: info.name, indexToPatient: v.indexToPatient },
      paths: [],
    });
    this.session = null;
    this.onCase();
    this.attached = this.attachCase(info.name, this.caseKey, this.forcedCaseId);
    st.emit('volume', 'crosshair', 'window', 'carm', 'xa', 'procedure', 'series');
    // A segmentation set aside (another grid, unknown labels) is said, never dropped without a word.
    for (const w of info.warnings) this.ui.message('warning', w);
    // First image: the views draw on the next animation frame.
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        this.timings.firstImageMs = performance.now() - t0;
        document.body.dataset.firstImageMs = this.timings.firstImageMs.toFixed(0);
        document.body.dataset.case = info.name;
      }),
    );
  }

  // --- plan persistence: the case store when served by `corridor start`, else this browser ---

  /** Open the case in the store (created on first open) and restore its plan; else the browser's copy. */
  private async attachCase(name: string, key: string, forced: string | null): Promise<void> {
    const client = await this.caseClient;
    if (key !== this.caseKey) return; // another case was opened meanwhile
    if (!client) {
      const saved = this.restorePlan();
      if (saved) {
        this.store.resetPlan(saved);
        this.ui.message('info', `Restored the plan saved in this browser for ${name} (${saved.paths.length} path(s)).`);
      }
      return;
    }
    try {
      const { session, plan } = await CaseSession.open(client, key, name, () => this.onCase(), forced ?? undefined);
      if (key !== this.caseKey) return;
      this.session = session;
      document.body.dataset.caseId = session.caseId;
      if (plan) {
        this.store.resetPlan({ ...plan, volume: this.currentPlan().volume });
        this.ui.message(
          'info',
          `Restored the plan of case ${session.caseId} from the case store (${plan.paths.length} path(s)).`,
        );
      }
      // The planning series' files are kept in the case (stored once: the worker lets go of them after).
      const source = { ...this.planningSource };
      if (source.keptFiles) {
        delete source.keptFiles;
        source.blobs = await this.caseWorker.call<BlobRef[]>('storeFiles', ['opened'], [], this.progress);
      }
      const had = session.doc('series/planning');
      // Directly on the session: saveCaseDoc waits for this very function to end.
      if (!had || (source.blobs && !had.blobs) || (source.pacs && !had.pacs))
        await session.saveDoc('series', 'planning', {
          ...source,
          role: 'planning',
          label: `Planning CBCT: ${name}`,
          summary: this.store.volume ? `${this.store.volume.dims.join(' × ')} voxels` : '',
          view: had?.view ?? this.viewState('plan'),
        });
      session.current ??= 'series/planning';
      this.onCase();
      try {
        await this.restoreSteps(session);
      } catch (err) {
        this.ui.message(
          'warning',
          `Some steps of case ${session.caseId} could not be restored (their results are shown; open their ` +
            `scans again to check them anew): ${(err as Error).message}`,
        );
      }
      document.body.dataset.caseRestored = session.caseId;
    } catch (err) {
      this.ui.message(
        'error',
        `The case store could not open this case; the plan is not being saved: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Bring back what the case holds beyond its plan, without the user opening a file: the verification and
   * cement scans (into the case worker, so they can be checked again) with their results, the 3D runs as
   * series, and the motion correction of the fluoroscopy step.
   */
  private async restoreSteps(s: CaseSession): Promise<void> {
    const st = this.store;
    const filesOf = async (series: unknown): Promise<NamedBytes[] | null> => {
      const d = typeof series === 'string' ? s.doc(`series/${series}`) : undefined;
      const blobs = d?.blobs as BlobRef[] | undefined;
      return blobs ? getBlobs(blobs) : null;
    };
    const load = async (files: NamedBytes[], role: ScanRole) =>
      this.caseWorker.call<{ summary: SeriesSummary }>(
        'loadScan',
        [files, role, false],
        files.map((f) => f.bytes.buffer),
      );
    const restored: string[] = [];
    const v = s.doc('verifications/verification');
    if (v) {
      if (typeof v.scanSeries === 'string') this.scanSeries.verification = v.scanSeries;
      const files = await filesOf(v.scanSeries);
      if (files) {
        await load(files, 'verification');
        restored.push('the verification scan');
      }
      const outcome = v.outcome as VerifyOutcome | undefined;
      if (outcome) {
        st.verification = outcome;
        st.verificationScan = typeof v.scan === 'string' ? v.scan : null;
        st.instruments = instrumentsOf(outcome.report);
        if (outcome.registration) st.registration = outcome.registration;
      }
    }
    const c = s.doc('cement/cement');
    if (c) {
      if (typeof c.baselineSeries === 'string')
        this.scanSeries.cement = [c.baselineSeries, ...((c.scanSeries as string[] | undefined) ?? [])];
      const base = await filesOf(c.baselineSeries);
      let all = false;
      if (base) {
        await load(base, 'cement-baseline');
        const scans = Array.isArray(c.scanSeries) ? (c.scanSeries as unknown[]) : [];
        let n = 0;
        for (const x of scans) {
          const f = await filesOf(x);
          if (f) {
            await load(f, 'cement');
            n++;
          }
        }
        all = scans.length > 0 && n === scans.length;
        restored.push(`the cement baseline and ${n} cement scan(s)`);
      }
      st.cementBaseline = typeof c.baseline === 'string' ? c.baseline : null;
      st.cementScans = Array.isArray(c.scans) ? (c.scans as string[]) : [];
      st.cement = (c.report as CementOutcome['report'] | undefined) ?? null;
      // The overlay is not kept in the store (a mask the size of the scan): the same analysis of the scans
      // just put back in the worker draws it again; the report shown stays the one saved.
      if (all && st.plan.paths.length) {
        const out = await this.caseWorker.call<CementOutcome>(
          'cement',
          [st.plan.paths, this.cementWarningMm],
          [],
          this.progress,
        );
        st.cementOverlay = out.mask ? cementMaskVolume(out.mask) : null;
      }
    }
    const planning = st.series[0];
    for (const e of s.timeline) {
      if (e.kind !== 'run' || !planning) continue;
      const id = e.key.split('/')[1];
      const blobs = e.doc.blobs as BlobRef[] | undefined;
      if (!blobs || st.series.some((x) => x.id === id)) continue;
      const [f] = await getBlobs(blobs);
      const vol = readNifti(f.bytes, f.name).volume;
      st.series = [
        ...st.series,
        { id, name: `${e.label}: ${typeof e.doc.description === 'string' ? e.doc.description : f.name}`, volume: vol },
      ];
      restored.push(e.label);
    }
    // The fluoroscopy step with a correction, else one with a kept frame: its frame shown, its correction.
    const fluoro =
      [...s.timeline].reverse().find((e) => e.kind === 'fluoroscopy' && e.doc.motion) ??
      [...s.timeline].reverse().find((e) => e.kind === 'fluoroscopy' && e.doc.blobs);
    if (fluoro) {
      if (await this.restoreFrame(fluoro.doc)) restored.push(fluoro.label);
      if (fluoro.doc.motion) this.restoreMotion(fluoro.key, fluoro.doc.motion as MotionCorrection);
    }
    st.emit('procedure', 'series');
    if (restored.length) this.ui.message('info', `Restored from the case store: ${restored.join(', ')}.`);
  }

  /** The XA/RF frame kept in a fluoroscopy step shown again in the C-arm panel; whether there was one. */
  private async restoreFrame(doc: Record<string, unknown>): Promise<boolean> {
    const blobs = doc.blobs as BlobRef[] | undefined;
    if (!blobs?.length || !this.ui.openXa) return false;
    const [f] = await getBlobs(blobs.slice(0, 1));
    await this.ui.openXa(f);
    return true;
  }

  /**
   * A loaded XA/RF frame recorded as its fluoroscopy step, its file kept in the case (a blob) so that
   * reopening the case shows the frame again.
   */
  saveFluoroFrame(file: NamedBytes, summary: string): Promise<void> {
    // One fluoroscopy save at a time: the frame's upload and a correction made meanwhile write one document,
    // and the later must start from the earlier's, or it drops the frame or the correction.
    const run = this.fluoroSaves.then(() => this.saveFluoroFrameNow(file, summary));
    this.fluoroSaves = run.catch(() => undefined);
    return run;
  }

  private async saveFluoroFrameNow(file: NamedBytes, summary: string): Promise<void> {
    const caseKey = this.caseKey;
    const doc: Record<string, unknown> = {
      files: [file.name],
      role: 'fluoroscopy',
      label: `Fluoroscopy: ${file.name}`,
      summary,
      view: this.viewState(),
    };
    // A series names its files by exactly one of these: kept in the store, else the file's name.
    if (await this.hasStore())
      try {
        doc.blobs = await putBlobs([file]);
        delete doc.files;
      } catch (err) {
        this.ui.message('error', `Could not keep ${file.name} in the case store: ${(err as Error).message}`);
      }
    if (caseKey !== this.caseKey) return;
    // A correction already saved in this step (the frame opened again) stays.
    const prior = this.session?.entry(`series/fluoro-${safeName(file.name)}`)?.doc;
    if (prior && 'motion' in prior) doc.motion = prior.motion;
    await this.saveCaseDoc('series', `fluoro-${safeName(file.name)}`, doc);
  }

  private restoreMotion(key: string, mc: MotionCorrection | null) {
    this.motionKey = key;
    this.restoringMotion = true;
    try {
      this.store.motionCorrection = mc;
      this.store.emit('motion');
    } finally {
      this.restoringMotion = false;
    }
  }

  /**
   * "Correct for motion" saved in the fluoroscopy step of its frame (made when the frame was not loaded
   * from a file: a virtual frame), so that reopening the case restores it; a cleared one is saved cleared.
   */
  private async saveMotion(mc: MotionCorrection | null): Promise<void> {
    // Which step, decided now: a case opened meanwhile (its correction cleared) must not change it.
    const key = mc ? `series/fluoro-${safeName(mc.frameName)}` : this.motionKey;
    const caseKey = this.caseKey;
    if (!key) return;
    this.motionKey = key;
    await this.attached;
    // After the frame's own save (saveFluoroFrame), from the document it left.
    const run = this.fluoroSaves.then(async () => {
      const s = this.session;
      if (!s || caseKey !== this.caseKey) return;
      const e = s.entry(key);
      const name = mc?.frameName ?? key.slice('series/fluoro-'.length);
      await this.saveCaseDoc('series', key.split('/')[1], {
        ...(e?.doc ?? { files: [name], role: 'fluoroscopy', label: `Fluoroscopy: ${name}`, summary: '' }),
        motion: mc,
        view: this.viewState(),
      });
    });
    this.fluoroSaves = run.catch(() => undefined);
    await run;
  }

  /** Where the user is now: the panel, the series, the crosshair, the selected path. */
  viewState(panel?: ViewState['panel']): ViewState {
    const st = this.store;
    return {
      panel: panel ?? (document.body.dataset.procedure === 'open' ? 'procedure' : 'plan'),
      series: st.shownSeries,
      crosshair: [...st.crosshair],
      selectedId: st.selectedId,
    };
  }

  /** Save a document of the case (nothing without the case store); a note (a replaced version) is said. */
  async saveCaseDoc(
    kind: 'series' | 'registrations' | 'verifications' | 'cement',
    name: string,
    doc: Record<string, unknown>,
  ): Promise<void> {
    await this.attached;
    const s = this.session;
    if (!s) return;
    try {
      const note = await s.saveDoc(kind, name, doc);
      if (note) this.ui.message('warning', note);
    } catch (err) {
      this.ui.message('error', `Could not save ${kind}/${name} in the case store: ${(err as Error).message}`);
    }
  }

  /**
   * Open a timeline entry where the user left it: the view state of the entry left is saved first, then
   * the entry's series, panel, crosshair and selection come back, and its results are shown again.
   */
  async openTimelineEntry(key: string): Promise<void> {
    const s = this.session;
    if (!s) return;
    const e = s.entry(key);
    if (!e) throw new UsageError(`no timeline entry ${key}`);
    const left = s.current ? s.entry(s.current) : undefined;
    if (left && left.key !== key) {
      const [kind, name] = left.key.split('/') as ['series' | 'registrations' | 'verifications' | 'cement', string];
      await this.saveCaseDoc(kind, name, { ...left.doc, view: this.viewState() });
    }
    s.current = key;
    const st = this.store;
    if (e.kind === 'verification') {
      const outcome = e.doc.outcome as VerifyOutcome | undefined;
      if (outcome) {
        st.verification = outcome;
        st.verificationScan = typeof e.doc.scan === 'string' ? e.doc.scan : null;
        st.instruments = instrumentsOf(outcome.report);
      }
    } else if (e.kind === 'cement') {
      const rep = e.doc.report as CementOutcome['report'] | undefined;
      if (rep) {
        st.cement = rep;
        st.cementBaseline = typeof e.doc.baseline === 'string' ? e.doc.baseline : st.cementBaseline;
      }
    } else if (e.kind === 'earlier') {
      const r = e.doc.summary as RegistrationSummary | undefined;
      if (r) st.registration = r;
    } else if (e.kind === 'fluoroscopy') {
      const name = (e.doc.blobs as BlobRef[] | undefined)?.[0]?.name;
      if (name !== undefined && st.xa?.name !== name) await this.restoreFrame(e.doc);
      if (e.doc.motion !== undefined) this.restoreMotion(key, e.doc.motion as MotionCorrection | null);
    }
    const view = e.doc.view as ViewState | undefined;
    const panel =
      view?.panel ?? (e.kind === 'verification' || e.kind === 'cement' || e.kind === 'earlier' ? 'procedure' : 'plan');
    if (panel === 'procedure') document.body.dataset.procedure = 'open';
    else delete document.body.dataset.procedure;
    const series = view?.series ?? (e.kind === 'run' ? key.split('/')[1] : 'planning');
    if (st.series.some((x) => x.id === series) && series !== st.shownSeries) this.showSeries(series);
    if (view?.selectedId && st.plan.paths.some((p) => p.id === view.selectedId)) st.select(view.selectedId);
    if (view?.crosshair) st.setCrosshair(view.crosshair);
    document.body.dataset.timelineEntry = key;
    st.emit('procedure');
    this.onCase();
  }

  /**
   * Resolve a plan conflict with another page: keep theirs (shown here), keep mine (saved over theirs), or
   * merge path by path (`choices`: theirs or mine per path id; paths added on one side are kept).
   */
  async resolveConflict(
    keep: 'theirs' | 'mine' | 'merge',
    choices: Record<string, 'theirs' | 'mine'> = {},
  ): Promise<void> {
    const s = this.session;
    if (!s?.conflict) return;
    const plan = await s.resolve(keep, choices);
    if (keep !== 'mine') this.store.setPaths(plan.paths);
    this.ui.message(
      'info',
      keep === 'theirs'
        ? 'Kept the plan saved by the other page.'
        : keep === 'mine'
          ? 'Kept this plan; the other version stays in the case history.'
          : `Merged the two plans path by path (${plan.paths.length} path(s)); both versions stay in the case history.`,
    );
  }

  private restorePlan(): Plan | null {
    const text = localStorage.getItem(this.caseKey);
    if (!text) return null;
    try {
      return parsePlan(text, 'saved plan');
    } catch (err) {
      this.ui.message(
        'error',
        `The plan saved in this browser could not be read and was not restored: ${(err as Error).message}`,
      );
      return null;
    }
  }

  private scheduleSave() {
    clearTimeout(this.saveTimer);
    this.saveTimer = window.setTimeout(() => this.saveNow(), 200);
  }

  saveNow(): void {
    clearTimeout(this.saveTimer);
    if (!this.caseKey) return;
    const key = this.caseKey;
    void this.attached.then(async () => {
      if (key !== this.caseKey) return;
      if (this.session) {
        try {
          const r = await this.session.savePlan(this.currentPlan());
          if (r === 'saved') document.body.dataset.planSaved = String(Date.now());
        } catch (err) {
          this.ui.message('error', `Could not save the plan in the case store: ${(err as Error).message}`);
        }
      } else if (!(await this.caseClient)) this.saveLocal();
    });
  }

  private saveLocal(): void {
    try {
      localStorage.setItem(this.caseKey, JSON.stringify(planToJson(this.currentPlan())));
    } catch (err) {
      this.ui.message('error', `Could not keep the plan in this browser: ${(err as Error).message}`);
    }
  }

  currentPlan(): Plan {
    // The plan lies in the planning scan's frame, whichever series the views show.
    const v = this.store.series[0]?.volume ?? this.store.volume;
    return {
      ...this.store.plan,
      volume: { file: this.store.caseInfo?.name, ...(v ? { indexToPatient: v.indexToPatient } : {}) },
    };
  }

  planJsonText(): string {
    return JSON.stringify(planToJson(this.currentPlan()), null, 2) + '\n';
  }

  planMarkupsText(): string {
    return JSON.stringify(planToSlicerMarkups(this.currentPlan()), null, 2) + '\n';
  }

  /** Open a plan (plan.json or Slicer .mrk.json) for the open case. */
  openPlanText(name: string, text: string): void {
    let plan: Plan;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(`${name}: not valid JSON: ${(err as Error).message}`);
    }
    const isMarkups = /\.mrk\.json$/i.test(name) || (typeof doc === 'object' && doc !== null && 'markups' in doc);
    if (isMarkups) {
      const r = slicerMarkupsToPlan(doc, name, { kind: 'guidepin', diameterMm: DEFAULT_TOOLS.guidepin.diameterMm });
      plan = r.plan;
      if (r.skipped.length)
        this.ui.message('warning', `${name}: skipped markups that are not lines: ${r.skipped.join(', ')}`);
    } else {
      plan = parsePlan(doc, name);
    }
    const v = this.store.volume;
    const grid = plan.volume.indexToPatient;
    if (v && grid && mat4MaxAbsDiff(grid, v.indexToPatient) > SAME_GEOMETRY_TOLERANCE_MM) {
      this.ui.message(
        'warning',
        `${name} was made on an image with another geometry (indexToPatient differs): check the paths before use.`,
      );
    }
    this.store.setPaths(plan.paths);
    this.store.select(plan.paths[0]?.id ?? null);
    this.ui.message('info', `Opened ${name}: ${plan.paths.length} path(s).`);
  }

  // --- editing ---

  addPath(entry: Point3, target: Point3): void {
    const st = this.store;
    const tool = st.selected ? { kind: st.selected.kind, diameterMm: st.selected.diameterMm } : DEFAULT_TOOLS.guidepin;
    const id = freshId(st.plan.paths);
    const p: PlanPath = {
      id,
      name: `Path ${id.split('-')[1]}`,
      kind: tool.kind,
      diameterMm: tool.diameterMm,
      entry,
      target,
    };
    st.setPaths([...st.plan.paths, p]);
    st.select(id);
  }

  deleteSelected(): void {
    const st = this.store;
    if (!st.selectedId) return;
    st.setPaths(st.plan.paths.filter((p) => p.id !== st.selectedId));
  }

  /**
   * Core's automatic planners: all four sacral paths from the segmentation's seeds, or (at) one path
   * seeded at the crosshair, which the physician places in the S1/S2 body or the ala.
   */
  async autoPlan(at?: 's1' | 's2' | 'alar-left' | 'alar-right'): Promise<void> {
    const st = this.store;
    const r = await this.busy(
      'Planning automatically…',
      this.caseWorker.call<AutoPlanResult>(
        'autoPlan',
        [
          {
            marginMm: st.marginMm,
            screw: DEFAULT_TOOLS.screw,
            alar: DEFAULT_TOOLS.trocar,
            boneMask: st.boneMask,
            ...(at ? { only: [at], seeds: { [at]: [...st.crosshair] } } : {}),
          },
        ],
        [],
        this.progress,
      ),
    );
    // Automatic paths replace paths of the same id in place and keep the others (and their analyses).
    st.setPaths(mergePlanPaths(st.plan, r.paths, undefined, 'plan').paths);
    this.applyReports(r.reports, this.planVersion, true);
    st.select(r.paths[0]?.id ?? null);
    this.autoPlanNotes = r.notes;
    this.ui.message('info', `Automatic plan: ${r.paths.map((p) => p.name).join(', ')}.`);
  }

  /** Core's inlet and outlet views of the open case (computed in the case worker, which has the labels). */
  pelvicViews(system: CarmSystem): Promise<PelvicViews> {
    return this.caseWorker.call<PelvicViews>('pelvicViews', [this.store.plan.paths, system], []);
  }

  /** The report's key images, drawn in the case worker from the volumes it holds (core's reportKeyImages). */
  reportImages(req: ReportImagesRequest): Promise<ReportImagesReply> {
    return this.caseWorker.call<ReportImagesReply>('reportImages', [req], [], this.progress);
  }

  // --- analysis ---

  private scheduleAnalysis() {
    clearTimeout(this.analysisTimer);
    this.store.analyzing = true;
    document.body.dataset.analysis = 'pending';
    this.analysisTimer = window.setTimeout(() => void this.runAnalysis(), 120);
  }

  private async runAnalysis() {
    if (this.analysisRunning) return; // the running one re-checks the version when it ends
    const version = this.planVersion;
    if (this.analyzedVersion === version) {
      this.store.analyzing = false;
      document.body.dataset.analysis = 'done';
      return;
    }
    const paths = this.store.plan.paths;
    if (!this.store.volume) return;
    this.analysisRunning = true;
    try {
      const reports = await this.caseWorker.call<PathReport[]>(
        'analyze',
        [paths, this.store.marginMm, this.store.boneMask],
        [],
        this.progress,
      );
      this.applyReports(reports, version);
    } catch (err) {
      this.ui.message('error', `Path analysis failed: ${(err as Error).name}: ${(err as Error).message}`);
      this.analyzedVersion = version;
    } finally {
      this.analysisRunning = false;
      if (this.analyzedVersion !== this.planVersion) void this.runAnalysis();
      else {
        this.store.analyzing = false;
        document.body.dataset.analysis = 'done';
        this.store.emit('reports');
        this.ui.status('Ready', null);
      }
    }
  }

  private applyReports(reports: PathReport[], version: number, merge = false) {
    const next = merge ? new Map(this.store.reports) : new Map<string, PathReport>();
    for (const r of reports) next.set(r.analysis.id, r);
    if (merge) for (const id of next.keys()) if (!this.store.plan.paths.some((p) => p.id === id)) next.delete(id);
    this.store.reports = next;
    this.analyzedVersion = version;
    this.store.emit('reports');
  }

  get analysisCurrent(): boolean {
    return this.analyzedVersion === this.planVersion;
  }

  setMargin(mm: number): void {
    this.store.marginMm = mm;
    this.planVersion++;
    this.scheduleAnalysis();
  }

  /** The bone mask preset for a case without a segmentation: every path is analysed again on it. */
  setBoneMask(name: BoneMaskPresetName): void {
    this.store.boneMask = name;
    this.planVersion++;
    this.scheduleAnalysis();
  }

  // --- the procedure's checks: verification and cement scans (core's verifyPlacement, analyzeCement) ---

  verifyTolerance = { mm: VERIFY_TOLERANCE_MM, deg: VERIFY_TOLERANCE_DEG };
  /** How the verification scan reaches the plan's frame: auto registers when its frame of reference differs. */
  scanFrame: ScanFrame = 'auto';
  cementWarningMm = CEMENT_WARNING_MM;
  /** The case's series documents of the scans loaded (the verification scan; the cement baseline, then each scan). */
  private scanSeries: { verification: string | null; cement: string[] } = { verification: null, cement: [] };

  /** Read a scan of the procedure into the open case; a verification scan is verified, a cement scan analysed. */
  async loadScan(files: NamedBytes[], role: ScanRole): Promise<void> {
    const st = this.store;
    if (!st.volume) throw new UsageError('open a case first', ROLE_NAMES[role]);
    const keep = await this.hasStore();
    const r = await this.busy(
      `Reading the ${ROLE_NAMES[role]}…`,
      this.caseWorker.call<{ summary: SeriesSummary; cementScans: number }>(
        'loadScan',
        [files, role, keep],
        files.map((f) => f.bytes.buffer),
        this.progress,
      ),
    );
    for (const w of r.summary.warnings) this.ui.message('warning', w);
    const name = r.summary.description;
    // The scan's files are kept in the case, so that reopening it can check the scan again.
    const series = role === 'cement' ? `scan-cement-${r.cementScans}` : `scan-${role}`;
    if (role === 'verification') this.scanSeries.verification = series;
    else if (role === 'cement-baseline') this.scanSeries.cement = [series];
    else this.scanSeries.cement = [...this.scanSeries.cement, series];
    if (keep)
      void this.caseWorker
        .call<BlobRef[]>('storeFiles', [role], [])
        .then((blobs) =>
          this.saveCaseDoc('series', series, {
            blobs,
            role: 'scan',
            scanRole: role,
            label: `${ROLE_NAMES[role]}: ${name}`,
          }),
        )
        .catch((err: unknown) =>
          this.ui.message(
            'error',
            `Could not keep the ${ROLE_NAMES[role]} in the case store: ${(err as Error).message}`,
          ),
        );
    if (role === 'verification') {
      st.verificationScan = name;
      st.verification = null;
      st.instruments = [];
      st.registration = null;
      st.emit('procedure');
      if (st.plan.paths.length) await this.verify();
      else this.ui.message('info', `${name} loaded: open or make a plan to verify it against (or register it).`);
    } else if (role === 'cement-baseline') {
      st.cementBaseline = name;
      st.cementScans = [];
      st.cement = null;
      st.cementOverlay = null;
      st.emit('procedure');
      this.ui.message('info', `Cement baseline ${name} loaded: now load each cement scan as it comes.`);
    } else {
      st.cementScans = [...st.cementScans, name];
      await this.runCement();
    }
  }

  /** Core's verifyPlacement of the verification scan against the plan (registered first when needed). */
  async verify(): Promise<VerifyOutcome> {
    const st = this.store;
    const out = await this.busy(
      'Verifying the placement…',
      this.caseWorker.call<VerifyOutcome>(
        'verify',
        [st.plan.paths, { tolerance: this.verifyTolerance, frame: this.scanFrame }],
        [],
        this.progress,
      ),
    );
    st.verification = out;
    if (out.registration) st.registration = out.registration;
    st.instruments = instrumentsOf(out.report);
    st.emit('procedure');
    void this.saveCaseDoc('verifications', 'verification', {
      scan: st.verificationScan,
      scanSeries: this.scanSeries.verification,
      outcome: out,
      view: this.viewState('procedure'),
    });
    if (this.session) this.session.current = 'verifications/verification';
    if (out.registration) void this.saveRegistration(out.registration);
    this.ui.message(
      out.report.allPass ? 'info' : 'warning',
      `Verification: ${out.report.allPass ? 'every path passes' : 'not every path passes'}; ${out.frameNote}.`,
    );
    return out;
  }

  /** Core's registerRigid of the loaded scan (moving) to the planning scan (fixed), in the case worker. */
  async registerScan(): Promise<RegistrationSummary> {
    const st = this.store;
    const r = await this.busy(
      'Registering to the planning scan…',
      this.caseWorker.call<RegistrationSummary>('register', [], [], this.progress),
    );
    st.registration = r;
    st.emit('procedure');
    void this.saveRegistration(r);
    this.ui.message(
      'info',
      `Registered ${r.moving} to the planning scan in ${r.seconds.toFixed(1)} s: ` +
        `${r.metric === 'mi' ? 'mutual information' : 'correlation'} ${r.metricValue.toFixed(3)} ` +
        `(${r.nullMetricValue.toFixed(3)} 20 mm off), overlap ${Math.round(100 * r.overlapFraction)}%. ` +
        'A similarity, not an accuracy: check the result.',
    );
    return r;
  }

  /** Core's analyzeCement over the baseline and every cement scan so far. */
  async runCement(): Promise<void> {
    const st = this.store;
    const out = await this.busy(
      'Analysing the cement…',
      this.caseWorker.call<CementOutcome>('cement', [st.plan.paths, this.cementWarningMm], [], this.progress),
    );
    st.cement = out.report;
    st.cementOverlay = out.mask ? cementMaskVolume(out.mask) : null;
    st.emit('procedure');
    void this.saveCaseDoc('cement', 'cement', {
      baseline: st.cementBaseline,
      scans: st.cementScans,
      baselineSeries: this.scanSeries.cement[0] ?? null,
      scanSeries: this.scanSeries.cement.slice(1),
      report: out.report,
      view: this.viewState('procedure'),
    });
    if (this.session) this.session.current = 'cement/cement';
  }

  /** The registration of a loaded scan (earlier imaging, a verification scan in another frame) in the case. */
  private saveRegistration(r: RegistrationSummary): Promise<void> {
    return this.saveCaseDoc('registrations', safeName(r.moving), {
      summary: r,
      view: this.viewState('procedure'),
    });
  }

  /** Move every view to a point (a breach, a leak): the crosshair there. */
  jumpTo(p: Point3, pathId?: string | null): void {
    if (pathId && this.store.plan.paths.some((x) => x.id === pathId)) this.store.select(pathId);
    this.store.setCrosshair(p);
  }

  // --- series of the case: the planning scan and simulated 3D runs ---

  private reconWorker: WorkerClient | null = null;
  private reconCancelled = false;
  /** Progress of the running 3D run (null when none runs). */
  reconProgress: { done: number; total: number; phase: string } | null = null;
  onReconProgress: () => void = () => undefined;

  get reconRunning(): boolean {
    return this.reconWorker !== null;
  }

  /**
   * "Acquire 3D run": core's simulateCbct of the planning scan in a worker of its own (progress; cancel
   * stops the worker), opened as a new series of the case (same patient frame, the plan stays).
   */
  async acquire3dRun(options: ReconOptions): Promise<void> {
    const st = this.store;
    const planning = st.series[0]?.volume;
    if (!planning) throw new UsageError('open a case first', '3D run');
    if (this.reconWorker) throw new UsageError('a 3D run is already under way', '3D run');
    const w = new WorkerClient(
      new Worker(new URL('./worker/recon.worker.ts', import.meta.url), { type: 'module' }),
      '3D run',
    );
    this.reconWorker = w;
    this.reconCancelled = false;
    this.reconProgress = { done: 0, total: 1, phase: 'starting' };
    this.onReconProgress();
    const { msg, transfer } = volumeToMessage(planning, true);
    try {
      const r = await w.call<ReconReply>('acquire', [msg, options], transfer, (done, total, phase) => {
        this.reconProgress = { done, total, phase };
        this.ui.status(`3D run: ${phase}`, { done, total });
        this.onReconProgress();
      });
      if (st.series[0]?.volume !== planning) {
        this.ui.message('warning', '3D run discarded: another case was opened while it ran.');
        return;
      }
      const v = volumeFromMessage(r.volume);
      const n = st.series.filter((s) => s.id.startsWith('run-')).length + 1;
      const id = `run-${n}`;
      st.series = [...st.series, { id, name: `3D run ${n}: ${r.description}`, volume: v }];
      st.emit('series');
      // A new 3D run is the new reference: the motion correction of the old one no longer holds.
      st.clearMotionCorrection();
      this.showSeries(id);
      void this.saveRun(id, n, r.description, v);
      this.ui.message('info', `3D run ${n} done in ${(r.ms / 1000).toFixed(1)} s: opened as a new series.`);
    } catch (err) {
      if (this.reconCancelled || err instanceof CancelledError) {
        this.ui.message('info', '3D run cancelled: no series added.');
        return;
      }
      throw err;
    } finally {
      w.terminate();
      if (this.reconWorker === w) this.reconWorker = null;
      this.reconProgress = null;
      this.ui.status('Ready', null);
      this.onReconProgress();
    }
  }

  /** A 3D run kept in the case as a NIfTI file (a series of its own), or by its name only without a store. */
  private async saveRun(id: string, n: number, description: string, v: Volume): Promise<void> {
    const view = this.viewState();
    const doc = { role: 'run', label: `3D run ${n}`, description, view };
    if (!(await this.hasStore())) return;
    try {
      const blobs = await putBlobs([{ name: `${id}.nii`, bytes: writeNifti(v, { gzip: false }) }]);
      await this.saveCaseDoc('series', id, {
        ...doc,
        blobs,
        summary: `${description} (simulated from the planning scan)`,
      });
    } catch (err) {
      this.ui.message('error', `Could not keep 3D run ${n} in the case store: ${(err as Error).message}`);
    }
  }

  /** Stop the running 3D run: its worker is ended, nothing is added. */
  cancel3dRun(): void {
    const w = this.reconWorker;
    if (!w) return;
    this.reconCancelled = true;
    this.reconWorker = null;
    w.terminate();
  }

  /** Show one series of the case in the views (the plan stays in its frame). */
  showSeries(id: string): void {
    const st = this.store;
    const s = st.series.find((x) => x.id === id);
    if (!s) throw new UsageError(`no series ${id}`);
    st.shownSeries = id;
    st.volume = s.volume;
    st.emit('volume', 'series');
  }
}
