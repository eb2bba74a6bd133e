/**
 * A DICOM data set under construction: elements set in any order by tag (group << 16 | element) and written
 * in ascending tag order, explicit VR little endian. Used by the writers of objects with many modules
 * (SEG, XA, SR, Encapsulated PDF), so each module can be added by a function of its own, and by
 * `addCommonModules`, which writes the Patient, General Study, General Series and General Equipment
 * modules every IOD shares, with their Type 2 elements present (empty when unknown) as PS3.3 requires.
 */
import { UsageError } from '../../errors.js';
import { DicomElementWriter, formatDS, itemTag } from './writer.js';

export class DicomDatasetWriter {
  private readonly elements = new Map<number, Uint8Array>();

  private set(tag: number, build: (w: DicomElementWriter, group: number, element: number) => void): this {
    const w = new DicomElementWriter();
    build(w, tag >>> 16, tag & 0xffff);
    this.elements.set(tag >>> 0, w.concat());
    return this;
  }

  /** Copy every element of `other` into this data set (its elements win on a shared tag). */
  merge(other: DicomDatasetWriter): this {
    for (const [t, b] of other.elements) this.elements.set(t, b);
    return this;
  }

  has(tag: number): boolean {
    return this.elements.has(tag >>> 0);
  }

  /** A string value (text VRs, UI, DS and IS as text); padded to even length. */
  str(tag: number, vr: string, value: string): this {
    return this.set(tag, (w, g, e) => w.str(g, e, vr, value));
  }

  /** Decimal strings, backslash-separated. */
  ds(tag: number, values: readonly number[]): this {
    return this.str(tag, 'DS', values.map(formatDS).join('\\'));
  }

  us(tag: number, value: number): this {
    return this.set(tag, (w, g, e) => w.us(g, e, value));
  }

  ul(tag: number, value: number): this {
    return this.set(tag, (w, g, e) => w.ul(g, e, value));
  }

  /** Unsigned 32-bit values (VR UL), e.g. Dimension Index Values. */
  ulList(tag: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setUint32(i * 4, v, true));
    return this.set(tag, (w, g, e) => {
      w.header(g, e, 'UL', b.length);
      w.push(b);
    });
  }

  /** An attribute tag value (VR AT): the tag as group, element. */
  at(tag: number, value: number): this {
    const b = new Uint8Array(4);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, value >>> 16, true);
    dv.setUint16(2, value & 0xffff, true);
    return this.set(tag, (w, g, e) => {
      w.header(g, e, 'AT', 4);
      w.push(b);
    });
  }

  ob(tag: number, bytes: Uint8Array): this {
    const even = bytes.length % 2 ? Uint8Array.from([...bytes, 0]) : bytes;
    return this.set(tag, (w, g, e) => w.ob(g, e, even));
  }

  /** 32-bit floats (VR FL), e.g. Graphic Data of a SCOORD3D. */
  fl(tag: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => {
      if (!Number.isFinite(v)) throw new UsageError(`cannot write ${v} as a DICOM float`);
      dv.setFloat32(i * 4, v, true);
    });
    return this.set(tag, (w, g, e) => {
      w.header(g, e, 'FL', b.length);
      w.push(b);
    });
  }

  /** A sequence of undefined length; each item of undefined length. */
  sq(tag: number, items: readonly DicomDatasetWriter[]): this {
    return this.set(tag, (w, g, e) => {
      w.header(g, e, 'SQ', 0xffffffff);
      for (const it of items) {
        w.push(itemTag(0xe000, 0xffffffff));
        w.push(it.bytes());
        w.push(itemTag(0xe00d, 0));
      }
      w.push(itemTag(0xe0dd, 0));
    });
  }

  /** The elements in ascending tag order. */
  bytes(): Uint8Array {
    const tags = [...this.elements.keys()].sort((a, b) => a - b);
    let n = 0;
    for (const t of tags) n += this.elements.get(t)?.length ?? 0;
    const out = new Uint8Array(n);
    let o = 0;
    for (const t of tags) {
      const b = this.elements.get(t) as Uint8Array;
      out.set(b, o);
      o += b.length;
    }
    return out;
  }
}

/** A code sequence item (Code Value, Coding Scheme Designator, Code Meaning). */
export interface DicomCode {
  value: string;
  scheme: string;
  meaning: string;
}

export function codeItem(c: DicomCode): DicomDatasetWriter {
  return new DicomDatasetWriter()
    .str(0x00080100, 'SH', c.value)
    .str(0x00080102, 'SH', c.scheme)
    .str(0x00080104, 'LO', c.meaning);
}

/** Patient, study, series and equipment attributes shared by the objects Corridor writes. */
export interface DicomCommonOptions {
  patientName?: string;
  patientId?: string;
  /** YYYYMMDD */
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid: string;
  studyDate?: string;
  studyTime?: string;
  studyId?: string;
  accessionNumber?: string;
  referringPhysicianName?: string;
  studyDescription?: string;
  seriesInstanceUid: string;
  seriesNumber?: number;
  seriesDescription?: string;
  modality: string;
  instanceNumber?: number;
  manufacturer?: string;
}

export const CORRIDOR_SOFTWARE_VERSION = '0.1.0';

/**
 * SOP Common (character set, class and instance), Patient, General Study, General Series, General
 * Equipment and the instance number. Type 2 elements are written empty when the value is unknown.
 */
export function addCommonModules(
  ds: DicomDatasetWriter,
  sopClassUid: string,
  sopInstanceUid: string,
  o: DicomCommonOptions,
): DicomDatasetWriter {
  return ds
    .str(0x00080005, 'CS', 'ISO_IR 192')
    .str(0x00080016, 'UI', sopClassUid)
    .str(0x00080018, 'UI', sopInstanceUid)
    .str(0x00080020, 'DA', o.studyDate ?? '')
    .str(0x00080030, 'TM', o.studyTime ?? '')
    .str(0x00080050, 'SH', o.accessionNumber ?? '')
    .str(0x00080060, 'CS', o.modality)
    .str(0x00080070, 'LO', o.manufacturer ?? 'Corridor')
    .str(0x00080090, 'PN', o.referringPhysicianName ?? '')
    .str(0x00081030, 'LO', o.studyDescription ?? '')
    .str(0x0008103e, 'LO', o.seriesDescription ?? '')
    .str(0x00100010, 'PN', o.patientName ?? '')
    .str(0x00100020, 'LO', o.patientId ?? '')
    .str(0x00100030, 'DA', o.patientBirthDate ?? '')
    .str(0x00100040, 'CS', o.patientSex ?? '')
    .str(0x00181020, 'LO', CORRIDOR_SOFTWARE_VERSION)
    .str(0x0020000d, 'UI', o.studyInstanceUid)
    .str(0x0020000e, 'UI', o.seriesInstanceUid)
    .str(0x00200010, 'SH', o.studyId ?? '')
    .str(0x00200011, 'IS', String(o.seriesNumber ?? 1))
    .str(0x00200013, 'IS', String(o.instanceNumber ?? 1));
}

/** DICOM DA (YYYYMMDD) and TM (HHMMSS) of a moment, in UTC. */
export function dicomDateTime(d: Date): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return {
    date: `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`,
    time: `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`,
  };
}
