/** Shapes the page and its workers exchange. */
import type { PathAnalysis, PlanPath, Point3 } from '@corridor/core';

export interface SeriesSummary {
  index: number;
  format: string;
  description: string;
  modality: string;
  dims: [number, number, number];
  spacingMm: [number, number, number];
  warnings: string[];
}

export interface CaseInfo {
  name: string;
  hasLabels: boolean;
  /** Critical structures the analysis checks. */
  structures: string[];
  /** Where to put the crosshair first (LPS mm), e.g. the S1 body of the phantom. */
  suggestedCrosshair: Point3 | null;
}

/** Core's analysis of one path plus clearance sampled along it (for colouring). */
export interface PathReport {
  analysis: PathAnalysis;
  profile: {
    /** Bin length along the path, mm, from the entry. */
    stepMm: number;
    /** Per bin: smallest clearance between the tool's surface and a forbidden voxel, mm; NaN outside bone. */
    clearanceMm: number[];
  };
}

export interface AutoPlanResult {
  paths: PlanPath[];
  reports: PathReport[];
  notes: string[];
}
