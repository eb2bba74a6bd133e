/**
 * The workstation's state: the open volume, the shared crosshair, window/level, the plan with its undo
 * history, the analyses core returned, and the C-arm pose. Views subscribe to the topics they draw.
 */
import {
  PLAN_SCHEMA_VERSION,
  type BoneMaskPresetName,
  type Plan,
  type PlanPath,
  type Point3,
  type Volume,
  type XaFrame,
} from '@corridor/core';
import type { CaseInfo, PathReport } from './types.js';
import type { CementOutcome, RegistrationSummary, VerifyOutcome } from './worker/procedure.js';

/** A placed instrument to draw beside the planned paths (LPS mm, plan frame). */
export interface ShownInstrument {
  id: string;
  /** The path it was matched to, or null (unplanned). */
  pathId: string | null;
  status: 'pass' | 'fail' | 'unplanned';
  outerEnd: Point3;
  tip: Point3;
  diameterMm: number;
}

/** One series of the open case: the planning scan, a simulated 3D run, ... (what the views can show). */
export interface CaseSeries {
  id: string;
  name: string;
  volume: Volume;
}

export type Topic =
  | 'volume'
  | 'crosshair'
  | 'window'
  | 'plan'
  | 'selection'
  | 'reports'
  | 'carm'
  | 'status'
  | 'xa'
  | 'pathDepth'
  | 'procedure'
  | 'series'
  | 'motion';

export interface WindowLevel {
  /** Window centre and width, HU. */
  centerHu: number;
  widthHu: number;
}

export const WINDOW_PRESETS: Readonly<Record<string, WindowLevel>> = {
  bone: { centerHu: 400, widthHu: 1800 },
  soft: { centerHu: 40, widthHu: 400 },
};

export interface CarmPose {
  primaryDeg: number;
  secondaryDeg: number;
  /** Patient point at the isocentre, LPS mm. */
  isocenter: Point3;
}

/** A real fluoroscopy frame loaded for overlay (core's reader output) and what the user should know. */
export interface LoadedXa {
  name: string;
  frame: XaFrame;
  notes: string[];
  /** A virtual frame of "Simulate patient motion": the motion it was rendered with (planningToCurrent rows). */
  simulatedMotion?: number[][];
}

/**
 * "Correct for motion": core's register2d of the planning scan to a frame (a loaded XA/RF frame or a
 * virtual one). Kept for the case until the next 3D run; a failed verdict is kept to be shown, never applied.
 */
export interface MotionCorrection {
  /** Planned LPS mm -> where the anatomy is now (4 x 4 rows). */
  planningToCurrent: number[][];
  status: 'ok' | 'failed';
  reasons: string[];
  singleView: boolean;
  /** One view: the ~95 % bound of the depth along its central ray, mm. */
  depthUncertaintyMm: number;
  similarity: number;
  /** The frame it was computed on. */
  frameName: string;
  ms: number;
  /** A virtual frame of simulated motion: the largest error over the plan's path ends, mm. */
  errorVsSimulatedMm?: number;
}

type Listener = () => void;

export class Store {
  volume: Volume | null = null;
  caseInfo: CaseInfo | null = null;
  crosshair: Point3 = [0, 0, 0];
  window: WindowLevel = { ...WINDOW_PRESETS.bone };
  plan: Plan = { schemaVersion: PLAN_SCHEMA_VERSION, volume: {}, paths: [] };
  selectedId: string | null = null;
  reports = new Map<string, PathReport>();
  /** Analysis is running for the current plan. */
  analyzing = false;
  carm: CarmPose = { primaryDeg: 0, secondaryDeg: 0, isocenter: [0, 0, 0] };
  /** Depth along the selected path of the across-path view, mm from the entry. */
  pathDepthMm = 0;
  xa: LoadedXa | null = null;
  /** The last "Correct for motion" of this case (cleared by a new case and by a new 3D run). */
  motionCorrection: MotionCorrection | null = null;
  marginMm = 1;
  /** Settings of the bone mask from intensities (cases without a segmentation). */
  boneMask: BoneMaskPresetName = 'standard';
  /** The verification scan's check (core's report), and the instruments it found, drawn in every view. */
  verification: VerifyOutcome | null = null;
  verificationScan: string | null = null;
  instruments: ShownInstrument[] = [];
  /** The last registration of a loaded scan to the planning scan. */
  registration: RegistrationSummary | null = null;
  /** Cement monitoring: the baseline's name, the scans so far, core's report over all of them. */
  cementBaseline: string | null = null;
  cementScans: string[] = [];
  cement: CementOutcome['report'] | null = null;
  /** The latest scan's cement (1 = cement) on a crop of the baseline grid, for the views' overlay. */
  cementOverlay: Volume | null = null;
  /** The case's series; the views show the one whose id is shownSeries (the first: the planning scan). */
  series: CaseSeries[] = [];
  shownSeries = '';

  private undoStack: PlanPath[][] = [];
  private redoStack: PlanPath[][] = [];
  private listeners = new Map<Topic, Set<Listener>>();

  on(topics: Topic | Topic[], fn: Listener): () => void {
    for (const t of Array.isArray(topics) ? topics : [topics]) {
      let set = this.listeners.get(t);
      if (!set) this.listeners.set(t, (set = new Set()));
      set.add(fn);
    }
    return () => {
      for (const t of Array.isArray(topics) ? topics : [topics]) this.listeners.get(t)?.delete(fn);
    };
  }

  emit(...topics: Topic[]): void {
    const called = new Set<Listener>();
    for (const t of topics) {
      for (const fn of this.listeners.get(t) ?? []) {
        if (called.has(fn)) continue;
        called.add(fn);
        fn();
      }
    }
  }

  clearMotionCorrection(): void {
    if (!this.motionCorrection) return;
    this.motionCorrection = null;
    this.emit('motion');
  }

  setCrosshair(p: ArrayLike<number>): void {
    this.crosshair = [p[0], p[1], p[2]];
    this.emit('crosshair');
  }

  setWindow(w: WindowLevel): void {
    this.window = { centerHu: w.centerHu, widthHu: Math.max(1, w.widthHu) };
    this.emit('window');
  }

  setCarm(pose: Partial<CarmPose>): void {
    this.carm = { ...this.carm, ...pose };
    this.emit('carm');
  }

  get selected(): PlanPath | null {
    return this.plan.paths.find((p) => p.id === this.selectedId) ?? null;
  }

  select(id: string | null): void {
    this.selectedId = id;
    this.emit('selection');
  }

  /**
   * Replace the plan's paths, recording the previous paths for undo. `coalesce` merges a run of edits
   * of one drag into one undo step.
   */
  setPaths(paths: PlanPath[], opts: { record?: boolean; coalesceKey?: string } = {}): void {
    if (opts.record !== false) {
      if (!(opts.coalesceKey && opts.coalesceKey === this.lastCoalesce))
        this.undoStack.push(clonePaths(this.plan.paths));
      if (this.undoStack.length > 200) this.undoStack.shift();
      this.redoStack = [];
    }
    this.lastCoalesce = opts.coalesceKey ?? null;
    this.plan = { ...this.plan, paths: clonePaths(paths) };
    if (this.selectedId && !paths.some((p) => p.id === this.selectedId)) this.selectedId = paths[0]?.id ?? null;
    this.emit('plan', 'selection');
  }
  private lastCoalesce: string | null = null;

  /** End a coalesced edit (a drag): the next edit starts a new undo step. */
  endCoalesce(): void {
    this.lastCoalesce = null;
  }

  updatePath(id: string, change: Partial<PlanPath>, coalesceKey?: string): void {
    this.setPaths(
      this.plan.paths.map((p) => (p.id === id ? { ...p, ...change } : p)),
      { coalesceKey },
    );
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }
  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  undo(): void {
    const prev = this.undoStack.pop();
    if (!prev) return;
    this.redoStack.push(clonePaths(this.plan.paths));
    this.lastCoalesce = null;
    this.setPaths(prev, { record: false });
  }

  redo(): void {
    const next = this.redoStack.pop();
    if (!next) return;
    this.undoStack.push(clonePaths(this.plan.paths));
    this.lastCoalesce = null;
    this.setPaths(next, { record: false });
  }

  /** A new plan (opened from a file or a new case): history cleared. */
  resetPlan(plan: Plan): void {
    this.plan = { ...plan, paths: clonePaths(plan.paths) };
    this.undoStack = [];
    this.redoStack = [];
    this.lastCoalesce = null;
    this.reports.clear();
    this.selectedId = plan.paths[0]?.id ?? null;
    this.emit('plan', 'selection', 'reports');
  }
}

export function clonePaths(paths: readonly PlanPath[]): PlanPath[] {
  return paths.map((p) => ({
    ...p,
    entry: [p.entry[0], p.entry[1], p.entry[2]],
    target: [p.target[0], p.target[1], p.target[2]],
  }));
}

/** A path id not yet used in the plan: prefix-1, prefix-2, ... */
export function freshId(paths: readonly PlanPath[], prefix = 'path'): string {
  for (let n = 1; ; n++) {
    const id = `${prefix}-${n}`;
    if (!paths.some((p) => p.id === id)) return id;
  }
}
