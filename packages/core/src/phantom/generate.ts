/**
 * generatePhantom: the synthetic pelvis as a CT volume, a label volume and its ground truth.
 * Pure and deterministic: the same options give the same voxels and the same truth, bit for bit.
 * This module only composes the steps, in an order that matters for determinism: the truth measured on
 * the anatomy (truth.ts), the stage's instruments (instruments.ts) and cement (cement.ts) added to the
 * model, then the voxels (rasterize.ts) and the CT's noise and blur (ct.ts). See README.md.
 */
import { createVolume, type Volume } from '../volume/volume.js';
import { PelvisModel } from './anatomy.js';
import { placeCement } from './cement.js';
import { ctFromHu } from './ct.js';
import { placeInstruments } from './instruments.js';
import { nominalHu } from './labels.js';
import { resolveOptions, throwIfCancelled } from './options.js';
import { patientPlacement, phantomGrid } from './placement.js';
import { rasterize } from './rasterize.js';
import { buildTruth, corridorTruth, foramenTruth, plannedPaths, type TruthParts } from './truth.js';
import type { PhantomOptions, PhantomProgress, PhantomTruth } from './types.js';

export interface GeneratedPhantom {
  ct: Volume<Int16Array>;
  labels: Volume<Uint8Array>;
  truth: PhantomTruth;
}

export function generatePhantom(
  options: PhantomOptions = {},
  onProgress?: (p: PhantomProgress) => void,
  signal?: AbortSignal,
): GeneratedPhantom {
  const o = resolveOptions(options);
  const model = new PelvisModel(o.anatomy);
  const place = patientPlacement();
  onProgress?.({ phase: 'anatomy', fraction: 1 });

  // Truth of the anatomy alone (the same in every stage), then the stage's overlays on the model.
  const paths = plannedPaths(model);
  const corridors = corridorTruth(model, paths, place, signal);
  onProgress?.({ phase: 'truth', fraction: 0.5 });
  const foramina = foramenTruth(model, place);
  const stage: Pick<TruthParts, 'instruments' | 'cement' | 'leak'> = {};
  if (o.stage !== 'plan') {
    const instruments = placeInstruments(paths, o.seed, place);
    model.rods = instruments.rods;
    stage.instruments = instruments.truth;
  }
  if (o.stage === 'cement') {
    const cement = placeCement(model, o, foramina, place);
    model.deposits = cement.deposits;
    stage.cement = cement.cement;
    stage.leak = cement.leak;
  }
  onProgress?.({ phase: 'truth', fraction: 1 });
  throwIfCancelled(signal);

  const grid = phantomGrid(o.voxelMm);
  const huOf = nominalHu(o.anatomy);
  const { labels, hu } = rasterize(model, grid, place, huOf, onProgress, signal);
  const ct = ctFromHu(hu, grid.dims, o, onProgress, signal);

  const { dims, indexToPatient } = grid;
  const meta = {
    modality: 'CT',
    patientName: 'Corridor^Phantom',
    patientId: `PHANTOM-${o.anatomy.toUpperCase()}`,
    studyDescription: 'Corridor synthetic pelvis',
    seriesDescription: `phantom ${o.anatomy} ${o.stage} ${o.voxelMm} mm seed ${o.seed}`,
    manufacturer: 'Corridor',
    source: `phantom:${o.anatomy}:${o.stage}`,
  };
  const labelMeta = { ...meta, seriesDescription: `labels ${meta.seriesDescription}` };
  return {
    ct: createVolume({ data: ct, dims, indexToPatient, meta }),
    labels: createVolume({ data: labels, dims, indexToPatient, meta: labelMeta }),
    truth: buildTruth({ options: o, model, place, grid, huOf, paths, corridors, foramina, ...stage }),
  };
}
