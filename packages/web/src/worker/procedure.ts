/**
 * The closing checks of the procedure in the case worker: the verification scan (core's verifyPlacement,
 * registered first with core's registerRigid when it lies in another frame, as `corridor verify
 * --register-to` does) and the cement scans (core's analyzeCement over the baseline and every scan so
 * far, as `corridor cement --baseline B --scan S1 --scan S2 ...` does). The same core calls as the CLI,
 * so the workstation's table and the CLI's JSON are the same numbers.
 */
import {
  RegistrationError,
  UsageError,
  analyzeCement,
  mat4FromRows,
  registerRigid,
  verifyAnatomyFor as verifyAnatomyForLabels,
  verifyPlacement,
  type CementMask,
  type CementReport,
  type Mat4,
  type PlanPath,
  type PlanningCase,
  type RigidRegistrationResult,
  type VerificationReport,
  type VerifyAnatomy,
  type Volume,
} from '@corridor/core';
import type { ProgressFn } from '../rpc.js';

/** Which labels are which for the checks (core's rule, as the CLI's); none without labels. */
export function verifyAnatomyFor(labels: Volume | null, truthLabels?: Record<string, number>): VerifyAnatomy | null {
  return labels ? verifyAnatomyForLabels(labels, truthLabels) : null;
}

/** How the verification scan reaches the plan's frame. */
export type ScanFrame = 'auto' | 'same' | 'register';

export interface RegistrationSummary {
  verdict: RigidRegistrationResult['verdict'];
  movingToFixed: number[][];
  rotationDeg: [number, number, number];
  translationMm: [number, number, number];
  metric: RigidRegistrationResult['metric'];
  metricValue: number;
  nullMetricValue: number;
  overlapFraction: number;
  iterations: number;
  levelsMm: number[];
  seconds: number;
  /** The moving image registered (its description). */
  moving: string;
}

export interface VerifyOutcome {
  report: VerificationReport;
  /** How the scan was brought into the plan's frame, in words. */
  frameNote: string;
  registration: RegistrationSummary | null;
}

export interface CementOutcome {
  report: CementReport;
  /** The latest scan's cement on the baseline grid (a crop), null when it has none. */
  mask: (CementMask & { gridDims: [number, number, number]; indexToPatient: Float64Array }) | null;
}

const describe = (v: Volume) => v.meta.seriesDescription ?? v.meta.source ?? 'scan';

export class Procedure {
  verification: Volume | null = null;
  private registered: { scan: Volume; scanToPlan: Mat4; summary: RegistrationSummary } | null = null;
  baseline: Volume | null = null;
  cementScans: Volume[] = [];

  constructor(
    private planning: PlanningCase,
    private anatomy: VerifyAnatomy | null,
  ) {}

  setScan(role: 'verification' | 'cement-baseline' | 'cement', v: Volume): void {
    if (role === 'verification') {
      this.verification = v;
      this.registered = null;
    } else if (role === 'cement-baseline') {
      this.baseline = v;
      this.cementScans = [];
    } else {
      if (!this.baseline)
        throw new UsageError('load the cement baseline (the scan before any cement) first', describe(v));
      this.cementScans.push(v);
    }
  }

  /** The critical labels (foramina, canal) the checks use, as `corridor report --labels` outlines them. */
  criticalLabels(): number[] {
    return this.anatomy?.critical.map((c) => c.label) ?? [];
  }

  /**
   * The verification scan when it lies in the plan's frame (not registered to it): the report's slices
   * and DRRs show the placed instruments on it; a registered scan is not resampled for them.
   */
  verificationInPlanFrame(): Volume | null {
    const scan = this.verification;
    return scan && this.registered?.scan !== scan ? scan : null;
  }

  /** Whether the scan must be registered: asked for, or (auto) both frames of reference known and different. */
  private needsRegistration(scan: Volume, frame: ScanFrame): boolean {
    if (frame !== 'auto') return frame === 'register';
    const a = scan.meta.frameOfReferenceUid,
      b = this.planning.ct.meta.frameOfReferenceUid;
    return !!a && !!b && a !== b;
  }

  /** Core's rigid registration of the scan (moving) to the planning scan (fixed); a failed verdict throws. */
  register(progress: ProgressFn): RegistrationSummary {
    const scan = this.verification;
    if (!scan) throw new UsageError('load a scan to register first');
    if (this.registered?.scan === scan) return this.registered.summary;
    const t0 = performance.now();
    const r = registerRigid(this.planning.ct, scan, { onProgress: progress });
    const summary: RegistrationSummary = {
      verdict: r.verdict,
      movingToFixed: r.movingToFixed,
      rotationDeg: r.parameters.rotationDeg,
      translationMm: r.parameters.translationMm,
      metric: r.metric,
      metricValue: r.metricValue,
      nullMetricValue: r.nullMetricValue,
      overlapFraction: r.overlapFraction,
      iterations: r.iterations,
      levelsMm: r.levels.map((l) => l.spacingMm),
      seconds: (performance.now() - t0) / 1000,
      moving: describe(scan),
    };
    if (r.verdict.status !== 'ok')
      throw new RegistrationError(
        `registration to the planning scan failed, not used: ${r.verdict.reasons.join('; ')}`,
        describe(scan),
      );
    this.registered = { scan, scanToPlan: mat4FromRows(r.movingToFixed), summary };
    return summary;
  }

  verify(
    paths: PlanPath[],
    opts: { tolerance: { mm: number; deg: number }; frame: ScanFrame },
    progress: ProgressFn,
  ): VerifyOutcome {
    const scan = this.verification;
    if (!scan) throw new UsageError('load the verification scan first');
    if (!paths.length) throw new UsageError('the plan has no paths to verify against');
    let registration: RegistrationSummary | null = null;
    let frameNote = 'the scan lies in the plan’s frame (no registration)';
    let scanToPlan: Mat4 | undefined;
    // A registration already made for this scan is used unless the user says the frames are the same.
    if (this.needsRegistration(scan, opts.frame) || (opts.frame !== 'same' && this.registered?.scan === scan)) {
      registration = this.register(progress);
      scanToPlan = (this.registered as { scanToPlan: Mat4 }).scanToPlan;
      frameNote =
        `the scan was registered to the planning scan first (rigid, ${registration.metric === 'mi' ? 'mutual information' : 'correlation'} ` +
        `${registration.metricValue.toFixed(3)}, overlap ${Math.round(100 * registration.overlapFraction)}%)`;
    }
    progress(0, 1, 'finding the instruments');
    const labels = this.planning.labels;
    const report = verifyPlacement(paths, scan, {
      tolerance: opts.tolerance,
      scanToPlan,
      labels: labels && this.anatomy ? { volume: labels, anatomy: this.anatomy, frame: 'plan' } : undefined,
    });
    progress(1, 1, 'finding the instruments');
    return { report, frameNote, registration };
  }

  cement(paths: PlanPath[], warningMm: number | undefined, progress: ProgressFn): CementOutcome {
    const baseline = this.baseline;
    if (!baseline) throw new UsageError('load the cement baseline first');
    if (!this.cementScans.length) throw new UsageError('load a cement scan');
    const labels = this.planning.labels;
    let mask: CementMask | null = null;
    const last = this.cementScans.length - 1;
    const report = analyzeCement({
      plan: paths,
      baseline,
      scans: this.cementScans,
      labels: labels && this.anatomy ? { volume: labels, anatomy: this.anatomy } : undefined,
      warningMm,
      onProgress: (d, t) => progress(d, t, 'cement analysis'),
      onMask: (i, m) => {
        if (i === last) mask = m;
      },
    });
    const m = mask as CementMask | null;
    return {
      report,
      mask: m
        ? {
            ...m,
            gridDims: [baseline.dims[0], baseline.dims[1], baseline.dims[2]],
            indexToPatient: Float64Array.from(baseline.indexToPatient),
          }
        : null,
    };
  }
}
