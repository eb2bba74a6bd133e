/**
 * Regenerates docs/images/drr-{ap,inlet,outlet}.png: the phantom (fracture case, pins stage, 0.8 mm)
 * rendered as virtual fluoroscopy with its four planned paths (S1, S2 trans-sacral screws, alar
 * trocars) overlaid. AP is centred on the plan; inlet and outlet are the phantom's own CT-predicted views
 * (core's pelvicViews on its labels: inlet cranial, outlet caudal), each at its isocentre.
 * Run from the repository root after a build: node packages/node/dist/drr/doc-images.js
 */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic-write.js';
import path from 'node:path';
import { encode as encodePng } from 'fast-png';
import {
  carmGeometry,
  carmPreset,
  drawOverlay,
  fluoroscopyWithExposure,
  generatePhantom,
  grayToRgba,
  overlayGeometry,
  pelvicViews,
  phantomAnatomy,
  projectionMatrix,
  type PathLike,
  type Point3,
} from '@corridor/core';
import { DrrPool, prepareSharedDrrVolume } from './pool.js';

export async function makeDocImages(outDir = 'docs/images'): Promise<string[]> {
  const { ct, labels, truth } = generatePhantom({ stage: 'pins' });
  const t = truth;
  const paths: PathLike[] = [
    { id: 's1', name: 'S1 trans-sacral', diameterMm: 7.3, entry: t.corridors.S1.entry, target: t.corridors.S1.exit },
    { id: 's2', name: 'S2 trans-sacral', diameterMm: 7.3, entry: t.corridors.S2.entry, target: t.corridors.S2.exit },
    {
      id: 'alar-left',
      name: 'Alar left',
      diameterMm: 3.05,
      entry: t.alarPaths.left.entry,
      target: t.alarPaths.left.target,
    },
    {
      id: 'alar-right',
      name: 'Alar right',
      diameterMm: 3.05,
      entry: t.alarPaths.right.entry,
      target: t.alarPaths.right.target,
    },
  ];
  const iso = [0, 1, 2].map(
    (i) => paths.reduce((s, p) => s + (p.entry[i] + p.target[i]) / 2, 0) / paths.length,
  ) as Point3;
  const system = carmPreset('artis-zee-floor');
  const pv = pelvicViews({ paths, labels, anatomy: phantomAnatomy() }, system);
  const round1 = (x: number) => Math.round(x * 10) / 10;
  const dv = prepareSharedDrrVolume(ct, { attenuation: { kvp: system.kvp } });
  const pool = DrrPool.create(dv);
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  try {
    const poses: [string, number, number, Point3][] = [
      ['ap', 0, 0, iso],
      ['inlet', round1(pv.inlet.primaryDeg), round1(pv.inlet.secondaryDeg), pv.inlet.isocenter],
      ['outlet', round1(pv.outlet.primaryDeg), round1(pv.outlet.secondaryDeg), pv.outlet.isocenter],
    ];
    for (const [name, a, b, isocenter] of poses) {
      console.log(`${name}: primary ${a}, secondary ${b}, isocentre ${isocenter.map(round1).join(', ')}`);
      const g = carmGeometry(system, { primaryDeg: a, secondaryDeg: b, isocenter }, { size: 512, fieldMm: 300 });
      const li = await pool.render(g);
      const img = fluoroscopyWithExposure(li, g, { seed: 7, exposure: { referenceKvp: system.kvp } });
      const rgba = drawOverlay(
        grayToRgba(img.gray, g.columns, g.rows),
        g.columns,
        g.rows,
        overlayGeometry(projectionMatrix(g), paths, g.columns, g.rows),
      );
      const file = path.join(outDir, `drr-${name}.png`);
      const data = new Uint8Array(rgba.buffer);
      await writeFileAtomic(file, encodePng({ width: g.columns, height: g.rows, data, channels: 4, depth: 8 }));
      written.push(file);
    }
  } finally {
    await pool.close();
  }
  return written;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  void makeDocImages(process.argv[2])
    .then((f) => console.log(f.join('\n')))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
