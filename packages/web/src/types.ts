/** Shapes the page and its workers exchange. */
import type {
  CarmSystem,
  CementReport,
  EncodedKeyImage,
  PathReport,
  PelvicViews,
  Plan,
  PlanPath,
  Point3,
  ReportFluoroFrame,
  VerificationReport,
} from '@corridor/core';

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
  /** What the user must know about the case as opened (a segmentation set aside, and why). */
  warnings: string[];
}

/** Core's analysis of one path plus clearance sampled along it (for colouring): core's PathReport. */
export type { PathReport } from '@corridor/core';

export interface AutoPlanResult {
  paths: PlanPath[];
  reports: PathReport[];
  notes: string[];
}

/** What the case worker needs to draw the report's key images (core's reportKeyImages). */
export interface ReportImagesRequest {
  plan: Plan;
  verification: VerificationReport | null;
  cement: CementReport | null;
  system: CarmSystem;
  /** The fluoroscopy frame shown (the loaded XA frame or the virtual one), null when none was drawn. */
  fluoroscopy: ReportFluoroFrame | null;
}

export interface ReportImagesReply {
  images: EncodedKeyImage[];
  notes: string[];
  /** Core's inlet and outlet of the case (null, with a note, when they cannot be found). */
  pelvic: PelvicViews | null;
}
