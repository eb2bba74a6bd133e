/**
 * The workstation's report request (POST /api/report), one type for the web panel that sends it and the
 * server route that reads it: the plan, the verification and cement reports the workstation computed,
 * the planning image's DICOM attributes (patient, study, Frame of Reference), the procedure, the C-arm,
 * the pelvic views and the key images the workstation drew from the volumes it holds (core's
 * reportKeyImages in its case worker, PNG by encodePng, base64 in the JSON). `parseReportRequest` checks
 * it all and throws UsageError (FormatError for a bad image) naming the field.
 */
import { UsageError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import { parsePlan, planToJson, type Plan } from '../plan/model.js';
import type { CarmView } from '../carm/views.js';
import type { PelvicViews } from '../carm/pelvic-views.js';
import type { VerificationReport } from '../verify/verify.js';
import type { CementReport } from '../cement/cement.js';
import type { VolumeMetadata } from '../volume/volume.js';
import { checkReportInputs, type ReportProcedure } from './model.js';
import type { KeyImage } from './images.js';
import { base64ToBytes, bytesToBase64, encodePng, pngHeader } from './png.js';

/** A key image as PNG bytes, with its id, title, caption and size. */
export interface EncodedKeyImage {
  image: Omit<KeyImage, 'rgba'>;
  png: Uint8Array;
}

/** A key image as core draws it, encoded as PNG. */
export function encodeKeyImage(k: KeyImage): EncodedKeyImage {
  const { rgba, ...image } = k;
  return { image, png: encodePng(rgba, k.width, k.height) };
}

/** The planning image's DICOM attributes the report's objects take (patient, study, Frame of Reference). */
export const REPORT_IMAGE_META_KEYS = [
  'patientName',
  'patientId',
  'patientBirthDate',
  'patientSex',
  'studyInstanceUid',
  'studyDate',
  'studyDescription',
  'seriesInstanceUid',
  'frameOfReferenceUid',
  'modality',
] as const;
export type ReportImageMeta = Partial<Pick<VolumeMetadata, (typeof REPORT_IMAGE_META_KEYS)[number]>>;

/** A key image in the request: PNG bytes as base64. */
export interface ReportRequestImage {
  id: string;
  title: string;
  caption: string;
  width: number;
  height: number;
  png: string;
}

/** The body of POST /api/report (JSON). */
export interface ReportRequest {
  /** planToJson of the plan. */
  plan: Record<string, unknown>;
  verification?: VerificationReport;
  cement?: CementReport;
  image?: ReportImageMeta;
  procedure?: ReportProcedure;
  /** C-arm preset id (default the server's). */
  carm?: string;
  pelvic?: PelvicViews | null;
  images?: ReportRequestImage[];
}

export interface ParsedReportRequest {
  plan: Plan;
  verification?: VerificationReport;
  cement?: CementReport;
  image: ReportImageMeta;
  procedure: ReportProcedure;
  carm?: string;
  pelvic?: PelvicViews;
  images: EncodedKeyImage[];
}

/** At most this many key images in one request. */
export const REPORT_MAX_IMAGES = 64;

/** The request for a report of `plan` and what else is given (images encoded as base64 PNG). */
export function reportRequest(input: {
  plan: Plan;
  verification?: VerificationReport | null;
  cement?: CementReport | null;
  image?: Partial<VolumeMetadata>;
  procedure?: ReportProcedure;
  carm?: string;
  pelvic?: PelvicViews | null;
  images?: readonly EncodedKeyImage[];
}): ReportRequest {
  const image: ReportImageMeta = {};
  for (const k of REPORT_IMAGE_META_KEYS) {
    const v = input.image?.[k];
    if (typeof v === 'string' && v) image[k] = v;
  }
  return {
    plan: planToJson(input.plan),
    ...(input.verification ? { verification: input.verification } : {}),
    ...(input.cement ? { cement: input.cement } : {}),
    image,
    ...(input.procedure ? { procedure: input.procedure } : {}),
    ...(input.carm ? { carm: input.carm } : {}),
    ...(input.pelvic ? { pelvic: input.pelvic } : {}),
    images: (input.images ?? []).map((k) => ({ ...k.image, png: bytesToBase64(k.png) })),
  };
}

const bad = (msg: string) => new UsageError(msg, 'report request');

function kindOf<T>(x: unknown, kind: string, what: string): T | undefined {
  if (x === undefined || x === null) return undefined;
  if (typeof x !== 'object' || (x as { kind?: unknown }).kind !== kind) throw bad(`${what} is not a ${kind} report`);
  return x as T;
}

function strings(x: unknown, keys: readonly string[], what: string, max = 256): Record<string, string> {
  const out: Record<string, string> = {};
  if (x === undefined || x === null) return out;
  if (typeof x !== 'object') throw bad(`${what} must be an object`);
  for (const k of keys) {
    const v = (x as Record<string, unknown>)[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string' || v.length > max)
      throw bad(`${what}.${k} must be a string of at most ${max} characters`);
    out[k] = v;
  }
  return out;
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function point(x: unknown, what: string): Point3 {
  if (!Array.isArray(x) || x.length !== 3 || !x.every(finite)) throw bad(`${what} must be three finite numbers`);
  return [x[0], x[1], x[2]] as Point3;
}

function view(x: unknown, what: string): CarmView {
  const o = x as Partial<CarmView> | null;
  if (!o || typeof o !== 'object' || !finite(o.primaryDeg) || !finite(o.secondaryDeg))
    throw bad(`${what} must have finite primaryDeg and secondaryDeg`);
  return {
    primaryDeg: o.primaryDeg,
    secondaryDeg: o.secondaryDeg,
    isocenter: point(o.isocenter, `${what}.isocenter`),
    reachable: o.reachable !== false,
  };
}

function pelvicOf(x: unknown): PelvicViews | undefined {
  if (x === undefined || x === null) return undefined;
  if (typeof x !== 'object') throw bad('pelvic must be an object');
  const o = x as Partial<PelvicViews>;
  return { ...(o as PelvicViews), inlet: view(o.inlet, 'pelvic.inlet'), outlet: view(o.outlet, 'pelvic.outlet') };
}

function imagesOf(x: unknown): EncodedKeyImage[] {
  if (x === undefined || x === null) return [];
  if (!Array.isArray(x)) throw bad('images must be an array');
  if (x.length > REPORT_MAX_IMAGES) throw bad(`${x.length} images (at most ${REPORT_MAX_IMAGES})`);
  return x.map((raw, i) => {
    const what = `images[${i}]`;
    const t = strings(raw, ['id', 'title', 'caption'], what, 2048);
    if (!t.id || !/^[A-Za-z0-9._-]+$/.test(t.id)) throw bad(`${what}.id must be letters, digits, '.', '_' or '-'`);
    const o = raw as Record<string, unknown>;
    if (typeof o.png !== 'string') throw bad(`${what}.png must be base64 PNG bytes`);
    const png = base64ToBytes(o.png, `${what}.png`);
    const h = pngHeader(png, `${what}.png`);
    if (o.width !== h.width || o.height !== h.height)
      throw bad(`${what} says ${String(o.width)} x ${String(o.height)}, its PNG is ${h.width} x ${h.height}`);
    return {
      image: { id: t.id, title: t.title ?? t.id, caption: t.caption ?? '', width: h.width, height: h.height },
      png,
    };
  });
}

/** Checks a report request (a JSON object) and returns it typed; UsageError/FormatError name what is wrong. */
export function parseReportRequest(value: unknown): ParsedReportRequest {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('the request must be a JSON object');
  const v = value as Record<string, unknown>;
  const plan = parsePlan(v.plan, 'plan');
  const verification = kindOf<VerificationReport>(v.verification, 'corridor-verification', 'verification');
  const cement = kindOf<CementReport>(v.cement, 'corridor-cement', 'cement');
  checkReportInputs({ plan, ...(verification ? { verification } : {}), ...(cement ? { cement } : {}) });
  if (v.carm !== undefined && typeof v.carm !== 'string') throw bad('carm must be a C-arm preset id');
  const pelvic = pelvicOf(v.pelvic);
  return {
    plan,
    ...(verification ? { verification } : {}),
    ...(cement ? { cement } : {}),
    image: strings(v.image, REPORT_IMAGE_META_KEYS, 'image'),
    procedure: strings(v.procedure, ['title', 'date', 'operator', 'institution'], 'procedure'),
    ...(typeof v.carm === 'string' ? { carm: v.carm } : {}),
    ...(pelvic ? { pelvic } : {}),
    images: imagesOf(v.images),
  };
}
