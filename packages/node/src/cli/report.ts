/**
 * `corridor report`: the procedure report of a plan, its verification and its cement checks, as PDF (and
 * HTML), with key images; with --dicom, the PDF as Encapsulated PDF, the plan and measured paths as a
 * Comprehensive 3D SR and the plan as 3D Slicer markups, in a folder (report-pdf.dcm, plan-sr.dcm,
 * plan.mrk.json). The work is in ../report/make.ts; this file reads the inputs and writes the outputs.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  CarmError,
  UsageError,
  WriteError,
  PacsError,
  checkReportInputs,
  parseTransformFile,
  readXaFrame,
  type CarmSystem,
  type PathLike,
  type ReportFluoroFrame,
  type StoreResult,
  type CementReport,
  type VerificationReport,
  type Volume,
} from '@corridor/core';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs, type PlannedOutput } from '../io/output-guard.js';
import { loadLabelsPath } from '../io/load.js';
import { makeReport } from '../report/make.js';
import { pacsClient } from './pacs.js';
import { loadVolume, pelvicViewsFor, planCenter, pointOpt, readPlan, systemFrom } from './carm.js';
import { anatomyFor } from './verify.js';

type Opts = Record<string, string | boolean | undefined>;

async function readJsonReport<T>(file: string, kind: string, what: string): Promise<T> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read ${what}: ${(e as Error).message}`, file);
  }
  if (typeof doc !== 'object' || doc === null || (doc as { kind?: unknown }).kind !== kind)
    throw new UsageError(`is not ${what} (its "kind" is not "${kind}")`, file);
  return doc as T;
}

const str = (x: unknown) => (typeof x === 'string' ? x : undefined);

/** The --fluoro frame (core's readXaFrame) with the --motion correction, as core's ReportFluoroFrame. */
async function fluoroFrame(opts: Opts, paths: readonly PathLike[], system: CarmSystem) {
  const file = str(opts.fluoro);
  const motion = str(opts.motion);
  if (!file) {
    if (motion) throw new UsageError('--motion is the correction of a --fluoro frame: give the frame too');
    return undefined;
  }
  const iso = pointOpt(opts.isocenter, '--isocenter') ?? planCenter(paths);
  const read = async (f: string, what: string) => {
    try {
      return new Uint8Array(await readFile(f));
    } catch {
      throw new UsageError(`cannot read ${what}`, f);
    }
  };
  const frame = await readXaFrame(await read(file, 'the fluoroscopy frame'), file, { system, isocenter: iso });
  const planningToCurrent = motion
    ? parseTransformFile(new TextDecoder().decode(await read(motion, 'the motion correction')), motion).movingToFixed
    : undefined;
  const f: ReportFluoroFrame = {
    gray: frame.gray,
    geometry: frame.geometry,
    label: `XA frame ${path.basename(file)}`,
    ...(planningToCurrent ? { planningToCurrent } : {}),
    ...(frame.verified ? {} : { unverified: true }),
  };
  return f;
}

export function register(program: Command): void {
  program
    .command('report')
    .description('procedure report (PDF, HTML) of a plan, its verification and cement checks; DICOM with --dicom')
    .requiredOption('--plan <plan>', 'plan.json')
    .option('--verification <report>', 'verification report (corridor verify --out)')
    .option('--cement <report>', 'cement report (corridor cement --out)')
    .requiredOption('--out <pdf>', 'write the report as PDF')
    .option('--html <html>', 'write the report as HTML too')
    .option('--dicom <dir>', 'write report-pdf.dcm (Encapsulated PDF), plan-sr.dcm (3D SR) and plan.mrk.json here')
    .option('--images <dir>', 'write the key images as PNG here')
    .option('--pacs <url>', 'store the Encapsulated PDF and the 3D SR to this DICOMweb PACS (STOW-RS)')
    .option('--ct <volume>', "planning image (default: the plan's own image, when it can be read)")
    .option('--verification-scan <volume>', 'verification scan, for the key images')
    .option('--cement-scan <volume>', "latest cement scan, for the key image (default: the cement report's last)")
    .option('--labels <labels>', 'segmentation: the pelvic views and the foramina outlined in the cement image')
    .option('--fluoro <frame>', 'XA/RF fluoroscopy frame (DICOM): a key image of the plan over it')
    .option(
      '--motion <transform>',
      'motion correction of that frame (corridor register2d --out): the overlay moved by it',
    )
    .option(
      '--isocenter <x,y,z>',
      'patient point at the isocentre, LPS mm, for a frame without it (default: plan centre)',
    )
    .option('--carm <preset>', 'C-arm preset of the views', 'artis-zee-floor')
    .option('--patient-name <name>', "patient's name (default: from the DICOM planning image)")
    .option('--patient-id <id>', 'patient ID (default: from the DICOM planning image)')
    .option('--procedure <title>', 'procedure title')
    .option('--date <date>', 'procedure date')
    .option('--operator <name>', 'operator')
    .option('--image-size <px>', 'key image size in pixels (default 320 for slices, 384 for DRRs)')
    .option('--json', 'print the report model (JSON) instead of the summary')
    .option('--force', 'write the outputs even over a file of another kind')
    .action(async (opts: Opts) => {
      const planPath = String(opts.plan);
      const out = String(opts.out);
      const html = str(opts.html);
      const dicomDir = str(opts.dicom);
      const pacsUrl = str(opts.pacs);
      const imagesDir = str(opts.images);
      const inputFlags = [
        ...['verification', 'cement', 'ct', 'verificationScan', 'cementScan', 'labels'],
        ...['fluoro', 'motion'],
      ] as const;
      const inputs = [planPath, ...inputFlags.map((k) => str(opts[k])).filter((x): x is string => !!x)];
      const outputs: PlannedOutput[] = [{ file: out, kind: 'pdf' }];
      if (html) outputs.push({ file: html, kind: 'html' });
      if (dicomDir)
        outputs.push(
          { file: path.join(dicomDir, 'report-pdf.dcm'), kind: 'dicom' },
          { file: path.join(dicomDir, 'plan-sr.dcm'), kind: 'dicom' },
          { file: path.join(dicomDir, 'plan.mrk.json'), kind: 'plan' },
        );
      for (const d of [dicomDir, imagesDir])
        if (d && existsSync(d) && !statSync(d).isDirectory())
          throw new WriteError('is a file, not a folder; nothing was written', d, 'ENOTDIR');
      await checkOutputs(outputs, inputs, { force: !!opts.force });
      const imageSize = str(opts.imageSize);
      const imageSizePx = imageSize === undefined ? undefined : Number(imageSize);
      if (imageSizePx !== undefined && !(Number.isInteger(imageSizePx) && imageSizePx >= 64 && imageSizePx <= 2048))
        throw new UsageError(`--image-size "${imageSize}" is not a whole number of pixels from 64 to 2048`);
      const plan = await readPlan(planPath);
      const system = systemFrom(opts);
      const verificationFile = str(opts.verification);
      const cementFile = str(opts.cement);
      const verification = verificationFile
        ? await readJsonReport<VerificationReport>(verificationFile, 'corridor-verification', 'a verification report')
        : undefined;
      const cement = cementFile
        ? await readJsonReport<CementReport>(cementFile, 'corridor-cement', 'a cement report')
        : undefined;
      checkReportInputs({
        plan,
        ...(verification ? { verification } : {}),
        ...(cement ? { cement } : {}),
        sources: {
          plan: planPath,
          ...(verificationFile ? { verification: verificationFile } : {}),
          ...(cementFile ? { cement: cementFile } : {}),
        },
      });
      const ctFile =
        str(opts.ct) ?? (plan.volume.file ? path.resolve(path.dirname(planPath), plan.volume.file) : undefined);
      const ct = ctFile && (opts.ct || existsSync(ctFile)) ? await loadVolume(ctFile) : undefined;
      const verificationScan = str(opts.verificationScan) ? await loadVolume(String(opts.verificationScan)) : undefined;
      const lastSource = cement?.scans[cement.scans.length - 1]?.source;
      const cementScanFile = str(opts.cementScan) ?? (lastSource && existsSync(lastSource) ? lastSource : undefined);
      const cementScan = cementScanFile ? await loadVolume(cementScanFile) : undefined;
      const labelsFile = str(opts.labels);
      let labels: Volume | undefined;
      let criticalLabels: number[] | undefined;
      if (labelsFile) {
        const grid = cementScan ?? ct;
        const loaded = grid
          ? await loadLabelsPath(labelsFile, grid)
          : { volume: await loadVolume(labelsFile), warnings: [] };
        for (const w of loaded.warnings) console.error(`warning: ${w}`);
        labels = loaded.volume;
        criticalLabels = (await anatomyFor(labels, labelsFile)).critical.map((c) => c.label);
      }
      // The inlet and outlet when the labels or the CT show the sacrum; the report goes on without them.
      const pelvic = await pelvicViewsFor(planPath, plan, { ...opts, ...(ctFile ? { ct: ctFile } : {}) }, system).catch(
        (e: unknown) => {
          if (e instanceof CarmError) return { views: null, reason: e.message };
          throw e;
        },
      );
      if (!pelvic.views && pelvic.reason) console.error(`note: no inlet/outlet views: ${pelvic.reason}`);
      const fluoroscopy = await fluoroFrame(opts, plan.paths, system);
      const meta = ct?.meta ?? {};
      const patientName = str(opts.patientName) ?? meta.patientName;
      const patientId = str(opts.patientId) ?? meta.patientId;
      const made = await makeReport({
        plan,
        ...(verification ? { verification } : {}),
        ...(cement ? { cement } : {}),
        system,
        pelvic: pelvic.views,
        ...(ct ? { ct } : {}),
        ...(verificationScan ? { verificationScan } : {}),
        ...(cementScan ? { cementScan } : {}),
        ...(labels ? { labels, criticalLabels: criticalLabels ?? [] } : {}),
        ...(fluoroscopy ? { fluoroscopy: [fluoroscopy] } : {}),
        patient: {
          ...(patientName ? { name: patientName } : {}),
          ...(patientId ? { id: patientId } : {}),
          ...(meta.patientBirthDate ? { birthDate: meta.patientBirthDate } : {}),
          ...(meta.patientSex ? { sex: meta.patientSex } : {}),
        },
        procedure: {
          ...(str(opts.procedure) ? { title: str(opts.procedure) } : {}),
          ...(str(opts.date) ? { date: str(opts.date) } : {}),
          ...(str(opts.operator) ? { operator: str(opts.operator) } : {}),
        },
        sources: {
          plan: planPath,
          ...(verificationFile ? { verification: verificationFile } : {}),
          ...(cementFile ? { cement: cementFile } : {}),
          ...(ctFile && ct ? { image: ctFile } : {}),
        },
        generatedAt: new Date(),
        ...(imageSizePx ? { imageSizePx } : {}),
        dicom: !!dicomDir || !!pacsUrl,
      });
      await writeFileAtomic(out, made.pdf);
      if (html) await writeFileAtomic(html, made.html);
      if (imagesDir) {
        await mkdir(imagesDir, { recursive: true });
        for (const im of made.images) await writeFileAtomic(path.join(imagesDir, `${im.image.id}.png`), im.png);
      }
      if (dicomDir && made.dicom) {
        await mkdir(dicomDir, { recursive: true });
        await writeFileAtomic(path.join(dicomDir, 'report-pdf.dcm'), made.dicom.pdf);
        await writeFileAtomic(path.join(dicomDir, 'plan-sr.dcm'), made.dicom.sr);
        await writeFileAtomic(path.join(dicomDir, 'plan.mrk.json'), made.dicom.markups);
      }
      let stored: StoreResult | undefined;
      if (pacsUrl && made.dicom) {
        stored = await pacsClient(pacsUrl).store([made.dicom.pdf, made.dicom.sr]);
        if (stored.failed.length > 0)
          throw new PacsError(
            `the PACS refused ${stored.failed.length} of 2 report objects (failure reasons ` +
              `${stored.failed.map((f) => f.reason).join(', ')})`,
            `${pacsUrl}/studies`,
            0,
          );
      }
      const r = made.report;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...r, notes: made.notes }, null, 2) + '\n');
        return;
      }
      console.log(
        `report: ${r.paths.length} path(s), ${made.images.length} key image(s), ${r.alerts.length} alert(s)` +
          (r.verification ? `, verification ${r.verification.allPass ? 'ALL PASS' : 'NOT ALL PASS'}` : '') +
          (r.cement ? `, cement ${r.cement.verdict.toUpperCase()}` : ''),
      );
      for (const a of r.alerts) console.log(`  ${a.severity.toUpperCase()}: ${a.text}`);
      for (const n of made.notes) console.log(`  note: ${n}`);
      console.log(`  PDF written to ${out}`);
      if (html) console.log(`  HTML written to ${html}`);
      if (dicomDir) console.log(`  DICOM (report-pdf.dcm, plan-sr.dcm) and plan.mrk.json written to ${dicomDir}`);
      if (stored)
        console.log(`  stored ${stored.stored.length} DICOM object(s) (Encapsulated PDF, 3D SR) to ${pacsUrl}`);
    });
}
