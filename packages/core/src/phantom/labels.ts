/**
 * What each tissue of the analytic model (anatomy.ts `T`) becomes in the outputs: its label id in the
 * label volume and its nominal CT number. Exists so that the rasterizer, which writes the voxels, and the
 * truth, which names the labels and the HU, read one table and cannot disagree.
 * Limits: one CT number per tissue (no trabecular texture, no beam hardening); ids fit in uint8; several
 * tissues share a label (a bone's cortex and cancellous part, the table's shell and core).
 */
import { T, TISSUE_COUNT, type AnatomyVariant } from './anatomy.js';

/** Label ids of the label volume (uint8). Bone = cortex, cancellous, fracture, L5, ilia, femora. */
export const PHANTOM_LABELS = {
  air: 0,
  table: 1,
  skin: 2,
  fat: 3,
  muscle: 4,
  viscera: 5,
  disc: 6,
  bladder: 7,
  cortex: 10,
  cancellous: 11,
  fracture: 12,
  L5: 13,
  iliumLeft: 14,
  iliumRight: 15,
  sacroiliacJointLeft: 16,
  sacroiliacJointRight: 17,
  femurLeft: 18,
  femurRight: 19,
  canal: 20,
  S1L: 21,
  S1R: 22,
  S2L: 23,
  S2R: 24,
  S3L: 25,
  S3R: 26,
  S4L: 27,
  S4R: 28,
  instrument: 30,
  cement: 31,
  cementLeak: 32,
} as const;

const L = PHANTOM_LABELS;

/** Label id of each tissue class, indexed by tissue. */
export const LABEL_OF_TISSUE = new Uint8Array(TISSUE_COUNT);
{
  const m: [number, number][] = [
    [T.AIR, L.air],
    [T.TABLE_SHELL, L.table],
    [T.TABLE_CORE, L.table],
    [T.SKIN, L.skin],
    [T.FAT, L.fat],
    [T.MUSCLE, L.muscle],
    [T.PELVIC, L.viscera],
    [T.BLADDER, L.bladder],
    [T.DISC, L.disc],
    [T.S_CORTEX, L.cortex],
    [T.S_CANC, L.cancellous],
    [T.FRACTURE, L.fracture],
    [T.SCLEROTIC, L.cancellous],
    [T.L5_CORTEX, L.L5],
    [T.L5_CANC, L.L5],
    [T.IL_L_CORTEX, L.iliumLeft],
    [T.IL_L_CANC, L.iliumLeft],
    [T.IL_R_CORTEX, L.iliumRight],
    [T.IL_R_CANC, L.iliumRight],
    [T.SIJ_L, L.sacroiliacJointLeft],
    [T.SIJ_R, L.sacroiliacJointRight],
    [T.FEM_L_CORTEX, L.femurLeft],
    [T.FEM_L_CANC, L.femurLeft],
    [T.FEM_R_CORTEX, L.femurRight],
    [T.FEM_R_CANC, L.femurRight],
    [T.CANAL, L.canal],
    [T.INSTRUMENT, L.instrument],
    [T.CEMENT, L.cement],
    [T.LEAK, L.cementLeak],
  ];
  for (const [t, l] of m) LABEL_OF_TISSUE[t] = l;
  for (let f = 0; f < 8; f++) LABEL_OF_TISSUE[T.FORAMEN0 + f] = L.S1L + f;
}

export const BONE_LABELS = [
  L.cortex,
  L.cancellous,
  L.fracture,
  L.L5,
  L.iliumLeft,
  L.iliumRight,
  L.femurLeft,
  L.femurRight,
];
/** Labels a trans-sacral corridor may cross: bone plus the SI joints (crossed by design). */
export const CORRIDOR_LABELS = [...BONE_LABELS, L.sacroiliacJointLeft, L.sacroiliacJointRight];

/** The name of a label id in PHANTOM_LABELS, or the id as text when it has none. */
export function labelName(id: number): string {
  for (const [k, v] of Object.entries(PHANTOM_LABELS)) if (v === id) return k;
  return String(id);
}

/**
 * Nominal HU per tissue, before blur. The sacral cortex is 2 mm thick, so blur and partial volume pull
 * its mean down by about 25%: nominal 1550-1650 gives measured means of about 1100-1300 HU. The
 * fracture case is demineralized (post-radiation insufficiency).
 */
export function nominalHu(variant: AnatomyVariant): Float32Array {
  const demin = variant === 'fracture';
  const hu = new Float32Array(TISSUE_COUNT);
  const set: [number, number][] = [
    [T.AIR, -1000],
    [T.TABLE_SHELL, 250],
    [T.TABLE_CORE, -880],
    [T.SKIN, 25],
    [T.FAT, -100],
    [T.MUSCLE, 45],
    [T.PELVIC, -35],
    [T.BLADDER, 8],
    [T.DISC, 85],
    [T.CANAL, 18],
    [T.SIJ_L, 60],
    [T.SIJ_R, 60],
    [T.S_CORTEX, demin ? 1550 : 1600],
    [T.S_CANC, demin ? 45 : 225],
    [T.FRACTURE, 30],
    [T.SCLEROTIC, 95],
    [T.L5_CORTEX, demin ? 1350 : 1450],
    [T.L5_CANC, demin ? 110 : 210],
    [T.IL_L_CORTEX, demin ? 1400 : 1500],
    [T.IL_L_CANC, demin ? 120 : 240],
    [T.IL_R_CORTEX, demin ? 1400 : 1500],
    [T.IL_R_CANC, demin ? 120 : 240],
    [T.FEM_L_CORTEX, 1550],
    [T.FEM_L_CANC, 260],
    [T.FEM_R_CORTEX, 1550],
    [T.FEM_R_CANC, 260],
    [T.INSTRUMENT, 3000],
    [T.CEMENT, 2400],
    [T.LEAK, 2400],
  ];
  for (const [t, v] of set) hu[t] = v;
  for (let f = 0; f < 8; f++) hu[T.FORAMEN0 + f] = -20;
  return hu;
}

/** Names under which truth.nominalHu lists the tissues (one per distinct CT number and meaning). */
const TISSUE_NAMES: Record<number, string> = {
  [T.AIR]: 'air',
  [T.TABLE_SHELL]: 'table shell',
  [T.TABLE_CORE]: 'table core',
  [T.SKIN]: 'skin',
  [T.FAT]: 'fat',
  [T.MUSCLE]: 'muscle',
  [T.PELVIC]: 'pelvic viscera',
  [T.BLADDER]: 'bladder',
  [T.DISC]: 'disc',
  [T.S_CORTEX]: 'sacral cortex',
  [T.S_CANC]: 'sacral cancellous',
  [T.FRACTURE]: 'fracture cleft',
  [T.SCLEROTIC]: 'sclerotic margin',
  [T.L5_CORTEX]: 'L5 cortex',
  [T.L5_CANC]: 'L5 cancellous',
  [T.IL_L_CORTEX]: 'ilium cortex',
  [T.IL_L_CANC]: 'ilium cancellous',
  [T.SIJ_L]: 'sacroiliac joint',
  [T.FEM_L_CORTEX]: 'femur cortex',
  [T.FEM_L_CANC]: 'femur cancellous',
  [T.CANAL]: 'canal',
  [T.INSTRUMENT]: 'steel',
  [T.CEMENT]: 'cement',
};

/** truth.nominalHu: the CT number of each named tissue in `huOf` (from nominalHu). */
export function nominalHuByName(huOf: Float32Array): Record<string, number> {
  const nominal: Record<string, number> = {};
  for (const [t, name] of Object.entries(TISSUE_NAMES)) nominal[name] = huOf[Number(t)];
  return nominal;
}
