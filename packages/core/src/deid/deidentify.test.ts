/**
 * De-identification by the PS3.15 2024b Basic Profile. A test instance holds every attribute of Table
 * E.1-1 (each with a value that identifies: text markers, one date, one time, original UIDs), nested
 * sequences, private elements at the top and inside items, curve and overlay data; what comes out must
 * hold none of those values anywhere in its bytes, parse, and carry what E.1.1 adds. A phantom CT series
 * keeps its voxels and geometry, and its UIDs stay consistent within the case (references included).
 * The test's encoder below is its own (explicit and implicit VR), not the one under test.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { deidentifyDicom, UidMap, BASIC_PROFILE_EDITION } from './deidentify.js';
import { BASIC_PROFILE_ROWS } from './basic-profile-2024b.js';
import { sha256 } from './sha256.js';
import { parseDicom } from '../io/dicom/parse.js';
import { readDicomSeries } from '../io/dicom/series.js';
import { writeDicomSeries } from '../io/dicom/writer.js';
import { generatePhantom } from '../phantom/generate.js';
import { readDir } from '../test-helpers/data.js';

// --- an independent little encoder ----------------------------------------------------------------------
type El = { tag: number; vr: string; value?: Uint8Array; items?: El[][] };
const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const ascii = (s: string) => Uint8Array.from(s.length % 2 ? s + ' ' : s, (c) => c.charCodeAt(0));
const uidBytes = (s: string) => Uint8Array.from(s.length % 2 ? s + '\0' : s, (c) => c.charCodeAt(0));
function encode(els: El[], explicit: boolean): number[] {
  const out: number[] = [];
  const u16 = (v: number) => void out.push(v & 255, (v >>> 8) & 255);
  const u32 = (v: number) => {
    u16(v & 0xffff);
    u16(v >>> 16);
  };
  const tag = (g: number, e: number, len: number) => {
    u16(g);
    u16(e);
    u32(len);
  };
  for (const e of [...els].sort((a, b) => a.tag - b.tag)) {
    u16(e.tag >>> 16);
    u16(e.tag & 0xffff);
    const len = e.items ? 0xffffffff : (e.value?.length ?? 0);
    if (explicit) {
      out.push(e.vr.charCodeAt(0), e.vr.charCodeAt(1));
      if (LONG.has(e.vr)) {
        u16(0);
        u32(len);
      } else u16(len);
    } else u32(len);
    if (e.items) {
      for (const it of e.items) {
        tag(0xfffe, 0xe000, 0xffffffff);
        out.push(...encode(it, explicit));
        tag(0xfffe, 0xe00d, 0);
      }
      tag(0xfffe, 0xe0dd, 0);
    } else out.push(...(e.value ?? []));
  }
  return out;
}
function part10(els: El[], sopClass: string, sopInstance: string, explicit: boolean): Uint8Array {
  const meta = encode(
    [
      { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
      { tag: 0x00020002, vr: 'UI', value: uidBytes(sopClass) },
      { tag: 0x00020003, vr: 'UI', value: uidBytes(sopInstance) },
      { tag: 0x00020010, vr: 'UI', value: uidBytes(explicit ? '1.2.840.10008.1.2.1' : '1.2.840.10008.1.2') },
      { tag: 0x00020016, vr: 'AE', value: ascii('ZQXSOURCEAE') },
    ],
    true,
  );
  const gl = encode(
    [{ tag: 0x00020000, vr: 'UL', value: new Uint8Array(new Uint32Array([meta.length]).buffer) }],
    true,
  );
  return new Uint8Array([...new Uint8Array(128), 68, 73, 67, 77, ...gl, ...meta, ...encode(els, explicit)]);
}

// --- identifying values ---------------------------------------------------------------------------------
const ORIGINAL_UID_ROOT = '1.2.826.0.1.3680043.10.999.';
const NUMERIC_MARKERS = ['19630517', '134711', '7319.5731', '731957', '077Y'];
function marker(vr: string, n: number): Uint8Array {
  switch (vr) {
    case 'DA':
      return ascii('19630517');
    case 'TM':
      return ascii('134711.5173');
    case 'DT':
      return ascii('19630517134711');
    case 'DS':
      return ascii('7319.5731');
    case 'IS':
      return ascii('731957');
    case 'AS':
      return ascii('077Y');
    case 'UI':
      return uidBytes(`${ORIGINAL_UID_ROOT}${n}`);
    case 'US':
      return new Uint8Array([0x39, 0x7a]);
    case 'PN':
      return ascii(`ZQX${n}^SECRET`);
    default:
      return ascii(`ZQX${n}`); // AE, CS, SH (<= 16), LO, LT, ST, UT, UC, UR, OB, UN
  }
}
/** One item: a kept code, an identifying name, a private pair and a sequence nested one deeper. */
function identifyingItem(n: number, depth: number): El[] {
  const item: El[] = [
    { tag: 0x00080100, vr: 'SH', value: ascii('KEEP01') },
    { tag: 0x00100010, vr: 'PN', value: ascii(`ZQXIN${n}^NAME`) },
    { tag: 0x00081155, vr: 'UI', value: uidBytes(`${ORIGINAL_UID_ROOT}${n}.1`) },
    { tag: 0x00290010, vr: 'LO', value: ascii('ZQXCREATOR') },
    { tag: 0x00291010, vr: 'LO', value: ascii(`ZQXPRIV${n}`) },
  ];
  if (depth < 2) item.push({ tag: 0x0040a043, vr: 'SQ', items: [identifyingItem(n + 100000, depth + 1)] });
  return item;
}

function everyAttribute(explicit: boolean): { bytes: Uint8Array; rows: number } {
  const els: El[] = [];
  let rows = 0;
  BASIC_PROFILE_ROWS.forEach(([tag, vr], n) => {
    if (!/^[0-9A-F]{8}$/.test(tag) || tag.startsWith('0000') || tag.startsWith('0002')) return;
    rows++;
    const t = parseInt(tag, 16) >>> 0;
    if (vr === 'SQ') els.push({ tag: t, vr, items: [identifyingItem(n, 0), identifyingItem(n + 50000, 1)] });
    else els.push({ tag: t, vr, value: marker(vr, n) });
  });
  const sop = `${ORIGINAL_UID_ROOT}0`;
  const has = new Set(els.map((e) => e.tag));
  const add = (e: El) => (has.has(e.tag) ? undefined : (els.push(e), has.add(e.tag)));
  add({ tag: 0x00080016, vr: 'UI', value: uidBytes('1.2.840.10008.5.1.4.1.1.2') });
  add({ tag: 0x00280301, vr: 'CS', value: ascii('NO') });
  // Private elements, a private sequence, curve data and overlay data and comments.
  els.push({ tag: 0x00090010, vr: 'LO', value: ascii('ZQXPRIVCREATOR') });
  els.push({ tag: 0x00091001, vr: 'LO', value: ascii('ZQXPRIVATE1') });
  els.push({ tag: 0x00091002, vr: 'SQ', items: [identifyingItem(900001, 0)] });
  els.push({ tag: 0x50003000, vr: 'OB', value: ascii('ZQXCURVE') });
  els.push({ tag: 0x60003000, vr: 'OB', value: ascii('ZQXOVERLAY') });
  els.push({ tag: 0x60004000, vr: 'LT', value: ascii('ZQXOVERLAYCOMMENT') });
  els.push({ tag: 0x7fe00010, vr: 'OW', value: new Uint8Array(8) });
  return { bytes: part10(els, '1.2.840.10008.5.1.4.1.1.2', sop, explicit), rows };
}

const latin1 = (b: Uint8Array) => Array.from(b, (c) => String.fromCharCode(c)).join('');

/** The Basic Profile's choice per table code, restated here rather than imported. */
const EXPECTED: Record<string, 'absent' | 'empty' | 'dummy' | 'uid'> = {
  X: 'absent',
  Z: 'empty',
  D: 'dummy',
  U: 'uid',
  'X/Z': 'empty',
  'X/D': 'dummy',
  'Z/D': 'dummy',
  'X/Z/D': 'dummy',
  'X/Z/U*': 'uid',
};

describe(`de-identification, PS3.15 ${BASIC_PROFILE_EDITION} Basic Profile`, () => {
  it('has the whole of Table E.1-1: about 600 rows, each with a known action and tag', () => {
    expect(BASIC_PROFILE_ROWS.length).toBeGreaterThan(600);
    const tags = BASIC_PROFILE_ROWS.map((r) => r[0]);
    expect(new Set(tags).size).toBe(tags.length);
    for (const [tag, vr, basic] of BASIC_PROFILE_ROWS) {
      expect(EXPECTED[basic], `${tag} ${basic}`).toBeDefined();
      if (/^[0-9A-F]{8}$/.test(tag)) expect(vr).toMatch(/^[A-Z]{2}$/);
    }
    // Spot checks against the published table.
    const row = (t: string) => BASIC_PROFILE_ROWS.find((r) => r[0] === t)?.slice(0, 3);
    expect(row('00100010')).toEqual(['00100010', 'PN', 'Z']);
    expect(row('00080018')).toEqual(['00080018', 'UI', 'U']);
    expect(row('00080050')).toEqual(['00080050', 'SH', 'Z']);
    expect(row('00101010')).toEqual(['00101010', 'AS', 'X']);
  });

  for (const explicit of [true, false]) {
    it(`a file with every attribute, nested sequences and private tags keeps no identifying value (${explicit ? 'explicit' : 'implicit'} VR)`, () => {
      const { bytes, rows } = everyAttribute(explicit);
      expect(rows).toBeGreaterThan(590);
      const before = latin1(bytes);
      expect(before).toContain('ZQX');
      const r = deidentifyDicom(bytes, 'every.dcm', { uids: new UidMap('case-key-0001') });
      const after = latin1(r.bytes);
      const leaks = [...after.matchAll(/ZQX\w*/g)].map((m) => m[0]);
      expect(leaks).toEqual([]);
      for (const m of NUMERIC_MARKERS) expect(after, m).not.toContain(m);
      expect(after).not.toContain(ORIGINAL_UID_ROOT);
      expect(after).toContain('KEEP01'); // a non-profile attribute inside a kept sequence is kept

      const ds = parseDicom(r.bytes, 'out.dcm');
      expect(ds.string('x00120062')).toBe('YES');
      expect(ds.string('x00120063')).toContain(BASIC_PROFILE_EDITION);
      expect(ds.item('x00120064')?.string('x00080100')).toBe('113100');
      // The file meta (group 0002, read here by hand): the new SOP Instance UID and the same syntax.
      const metaEnd = 144 + new DataView(r.bytes.buffer, r.bytes.byteOffset).getUint32(140, true);
      const metaText = after.slice(132, metaEnd);
      expect(metaText).toContain(ds.string('x00080018') ?? 'missing');
      expect(metaText).toContain(explicit ? '1.2.840.10008.1.2.1\0' : '1.2.840.10008.1.2\0');
      for (const [tag, vr, basic] of BASIC_PROFILE_ROWS) {
        if (!/^[0-9A-F]{8}$/.test(tag) || tag.startsWith('000')) continue;
        const key = `x${tag.toLowerCase()}`;
        const el = ds.raw.elements[key];
        const want = EXPECTED[basic];
        if (want === 'absent') expect(el, `${tag} ${basic}`).toBeUndefined();
        else if (want === 'empty') {
          expect(el, `${tag} ${basic}`).toBeDefined();
          if (vr === 'SQ') expect(el.items ?? []).toHaveLength(0);
          else expect(el.length, `${tag} ${basic}`).toBe(0);
        } else if (vr === 'SQ') expect((el?.items ?? []).length, `${tag} ${basic}`).toBeGreaterThan(0);
        else expect(el?.length ?? 0, `${tag} ${basic}`).toBeGreaterThan(0);
        if (want === 'uid' && vr === 'UI') expect(ds.string(key)).toMatch(/^2\.25\.\d+$/);
      }
    });
  }

  it('a CT series: voxels and geometry kept, UIDs consistent within the case and its references', async () => {
    const ct = generatePhantom({ voxelMm: 5, noise: false }).ct;
    const files = writeDicomSeries(ct, { patientName: 'ZQXREAL^PATIENT', patientId: 'ZQX-MRN-77', uidSeed: 'deid' });
    // One more instance that references the first slice (Referenced Image Sequence, X/Z/U*).
    const first = parseDicom(files[0].bytes, files[0].name);
    const refEls: El[] = [
      { tag: 0x00080016, vr: 'UI', value: uidBytes('1.2.840.10008.5.1.4.1.1.7') },
      { tag: 0x00080018, vr: 'UI', value: uidBytes(`${ORIGINAL_UID_ROOT}77`) },
      {
        tag: 0x00081140,
        vr: 'SQ',
        items: [
          [
            { tag: 0x00081150, vr: 'UI', value: uidBytes('1.2.840.10008.5.1.4.1.1.2') },
            { tag: 0x00081155, vr: 'UI', value: uidBytes(first.string('x00080018') ?? '') },
          ],
        ],
      },
      { tag: 0x0020000d, vr: 'UI', value: uidBytes(first.string('x0020000d') ?? '') },
    ];
    const ref = part10(refEls, '1.2.840.10008.5.1.4.1.1.7', `${ORIGINAL_UID_ROOT}77`, true);
    const key = UidMap.randomKey();
    const run = (k: string) => {
      const map = new UidMap(k);
      return [
        ...files.map((f) => deidentifyDicom(f.bytes, f.name, { uids: map, patientId: 'CASE-1' })),
        deidentifyDicom(ref, 'ref.dcm', { uids: map }),
      ];
    };
    const out = run(key);
    const ds = out.map((o, i) => parseDicom(o.bytes, `out${i}`));
    const study = ds[0].string('x0020000d');
    expect(study).not.toBe(first.string('x0020000d'));
    for (const d of ds) expect(d.string('x0020000d')).toBe(study);
    const slices = ds.slice(0, files.length);
    for (const d of slices) {
      expect(d.string('x0020000e')).toBe(slices[0].string('x0020000e'));
      expect(d.string('x00200052')).toBe(slices[0].string('x00200052'));
      expect(d.string('x00100020')).toBe('CASE-1');
      expect(d.string('x00100010') ?? '').toBe('');
    }
    const sops = slices.map((d) => d.string('x00080018'));
    expect(new Set(sops).size).toBe(files.length);
    expect(ds[files.length].item('x00081140')?.string('x00081155')).toBe(sops[0]);
    for (const o of out) expect(latin1(o.bytes)).not.toMatch(/ZQX/);
    // Same case key: the same bytes; another case: other UIDs.
    expect(run(key).map((o) => o.bytes)).toEqual(out.map((o) => o.bytes));
    const other = parseDicom(run('another-case-key')[0].bytes, 'o');
    expect(other.string('x0020000d')).not.toBe(study);
    // Still a CT series, the same voxels at the same place.
    const { series } = await readDicomSeries(
      out.slice(0, files.length).map((o, i) => ({ name: `s${i}.dcm`, bytes: o.bytes })),
    );
    expect(series).toHaveLength(1);
    const v = series[0].volume;
    expect(v.dims).toEqual(ct.dims);
    for (let i = 0; i < 16; i++) expect(v.indexToPatient[i]).toBeCloseTo(ct.indexToPatient[i], 6);
    expect(Array.from(v.data).every((x, i) => x === ct.data[i])).toBe(true);
  });

  it('UID replacement: SHA-256 keyed by the case, within 64 characters under any root', () => {
    for (const s of ['', 'abc', 'a'.repeat(55), 'a'.repeat(64), 'x'.repeat(1000)]) {
      const b = new TextEncoder().encode(s);
      expect(Buffer.from(sha256(b)).toString('hex')).toBe(createHash('sha256').update(b).digest('hex'));
    }
    const m = new UidMap('0123456789', '1.2.826.0.1.3680043.10.1234');
    const u = m.map('1.2.3.4');
    expect(u.startsWith('1.2.826.0.1.3680043.10.1234.')).toBe(true);
    expect(u.length).toBeLessThanOrEqual(64);
    expect(u).toMatch(/^[0-9.]+$/);
    expect(u.split('.').every((c) => c === '0' || !c.startsWith('0'))).toBe(true);
    expect(m.map('1.2.3.4')).toBe(u);
    expect(m.map('1.2.3.5')).not.toBe(u);
    expect(() => new UidMap('short')).toThrow(/8 bytes/);
  });
});

describe('de-identification of real CT files (../shared/data)', () => {
  const rulesByTag = new Map(
    BASIC_PROFILE_ROWS.filter((r) => /^[0-9A-F]{8}$/.test(r[0])).map((r) => [r[0].toLowerCase(), r]),
  );
  /**
   * Values that point at a person, a place, a device or a time: of profile attributes at the top level
   * with VR UI, DA, DT, TM or PN, and the station, serial number and institution. (Not every profile
   * value: a procedure's description may rightly come back as the meaning of a kept procedure code.)
   */
  function profileValues(bytes: Uint8Array): string[] {
    const ds = parseDicom(bytes, 'in');
    const out: string[] = [];
    for (const key of Object.keys(ds.raw.elements)) {
      const row = rulesByTag.get(key.slice(1));
      const named = ['x00081010', 'x00181000', 'x00080080', 'x00080081'].includes(key);
      if (!row || !(named || ['UI', 'DA', 'DT', 'TM', 'PN'].includes(row[1]))) continue;
      const v = ds.string(key);
      // Values that say nothing (all zeros, like the dummy time 000000) are left out of the search.
      if (v && v.length >= 6 && !/^[0.: ]+$/.test(v)) out.push(v);
    }
    return out;
  }

  it('a JPEG 2000 series with private tags: same voxels and geometry, none of its UIDs, dates, times, names or device ids, no private group', async () => {
    const files = readDir('ct-dicom-jpeg2000');
    const map = new UidMap('real-data-case-key');
    const out = files.map((f) => deidentifyDicom(f.bytes, f.name, { uids: map }));
    const values = new Set(files.flatMap((f) => profileValues(f.bytes)));
    expect(values.size).toBeGreaterThan(5); // UIDs, dates, station name, serial number ...
    for (const o of out) {
      const text = latin1(o.bytes);
      for (const v of values) expect(text, v).not.toContain(v);
      const keys = Object.keys(parseDicom(o.bytes, 'out').raw.elements);
      expect(keys.filter((k) => parseInt(k.slice(1, 5), 16) % 2 === 1)).toEqual([]);
    }
    const a = (await readDicomSeries(files)).series[0].volume;
    const b = (await readDicomSeries(out.map((o, i) => ({ name: `d${i}.dcm`, bytes: o.bytes })))).series[0].volume;
    expect(b.dims).toEqual(a.dims);
    expect(Array.from(b.indexToPatient)).toEqual(Array.from(a.indexToPatient));
    expect(Buffer.compare(Buffer.from(b.data.buffer), Buffer.from(a.data.buffer))).toBe(0);
  });

  it('every transfer syntax of one slice: pixels kept (deflated written inflated), big endian refused', async () => {
    const dir = 'transfer-syntaxes/ct-single-frame';
    for (const f of readDir(dir)) {
      const map = new UidMap('syntax-case-key');
      if (f.name.includes('1.2.840.10008.1.2.2_')) {
        expect(() => deidentifyDicom(f.bytes, f.name, { uids: map })).toThrow(/big endian/);
        continue;
      }
      const o = deidentifyDicom(f.bytes, f.name, { uids: map });
      const a = (await readDicomSeries([f])).series[0].volume;
      const b = (await readDicomSeries([{ name: 'out.dcm', bytes: o.bytes }])).series[0].volume;
      expect(Array.from(b.data), f.name).toEqual(Array.from(a.data));
      if (f.name.includes('deflated')) expect(latin1(o.bytes.subarray(0, 400))).toContain('1.2.840.10008.1.2.1\0');
    }
  });
});
