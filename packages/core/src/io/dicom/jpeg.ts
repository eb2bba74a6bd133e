/**
 * A small JPEG decoder for single-component (grayscale) DICOM frames: lossless (process 14, SOF3, any
 * predictor, 2-16 bits) and Huffman sequential DCT (SOF0/SOF1) at 8 or 12 bits. It exists because
 * libjpeg-turbo's 8-bit build cannot decode 12-bit JPEG (transfer syntax .4.51) and the JS lossless
 * decoder silently accepts corrupt code streams; this one refuses invalid Huffman codes, data that ends
 * early and streams that do not match the frame header.
 */
export class JpegError extends Error {
  override readonly name: string = 'JpegError';
}

export interface JpegFrameHeader {
  /** SOF marker (0xc0, 0xc1, 0xc3, ...). */
  sof: number;
  precision: number;
  width: number;
  height: number;
  components: number;
}

export interface JpegDecoded extends JpegFrameHeader {
  /** Samples in [0, 2^precision), row by row. */
  data: Uint8Array | Uint16Array;
}

const ZIGZAG = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63,
]);

const LOOKAHEAD = 9;

interface Huffman {
  /** (length << 8 | value) for codes up to LOOKAHEAD bits, 0 when longer or invalid. */
  fast: Uint16Array;
  maxCode: Int32Array; // index 1..16, -1 when no code of that length
  valPtr: Int32Array;
  minCode: Int32Array;
  values: Uint8Array;
}

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxCode = new Int32Array(18).fill(-1);
  const valPtr = new Int32Array(17);
  const minCode = new Int32Array(17);
  const fast = new Uint16Array(1 << LOOKAHEAD);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1];
    valPtr[len] = k;
    minCode[len] = code;
    for (let i = 0; i < n; i++) {
      if (len <= LOOKAHEAD) {
        const shift = LOOKAHEAD - len;
        const base = code << shift;
        for (let f = 0; f < 1 << shift; f++) fast[base + f] = (len << 8) | values[k];
      }
      code++;
      k++;
    }
    if (n) maxCode[len] = code - 1;
    // A table whose codes overflow their length is not a prefix code.
    if (code > 1 << len) throw new JpegError('invalid Huffman table (code lengths overflow)');
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff;
  return { fast, maxCode, valPtr, minCode, values };
}

class BitReader {
  private pos: number;
  private buf = 0;
  private cnt = 0;
  /** Zero bytes fed after the entropy-coded segment ended (a marker or the end of data). */
  private padBytes = 0;
  marker = -1;
  constructor(
    private readonly data: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }

  private fill(): void {
    while (this.cnt <= 24) {
      let b = 0;
      if (this.marker < 0 && this.pos < this.data.length) {
        b = this.data[this.pos];
        if (b === 0xff) {
          const next = this.pos + 1 < this.data.length ? this.data[this.pos + 1] : -1;
          if (next === 0x00) this.pos += 2;
          else if (next === 0xff) {
            // Fill bytes before a marker.
            this.pos++;
            continue;
          } else {
            this.marker = next;
            b = 0;
            this.padBytes++;
          }
          if (this.marker < 0) {
            this.buf = (this.buf << 8) | b;
            this.cnt += 8;
            continue;
          }
        } else {
          this.pos++;
          this.buf = ((this.buf << 8) | b) >>> 0;
          this.cnt += 8;
          continue;
        }
      } else {
        this.padBytes++;
      }
      this.buf = (this.buf << 8) >>> 0;
      this.cnt += 8;
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    if (this.cnt < n) this.fill();
    this.cnt -= n;
    return (this.buf >>> this.cnt) & ((1 << n) - 1);
  }

  decode(h: Huffman): number {
    if (this.cnt < 16) this.fill();
    const look = (this.buf >>> (this.cnt - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1);
    const f = h.fast[look];
    if (f) {
      this.cnt -= f >> 8;
      return f & 0xff;
    }
    let code = 0;
    for (let len = 1; len <= 16; len++) {
      code = (code << 1) | ((this.buf >>> (this.cnt - len)) & 1);
      if (code <= h.maxCode[len]) {
        this.cnt -= len;
        return h.values[h.valPtr[len] + code - h.minCode[len]];
      }
    }
    throw new JpegError('invalid Huffman code in the entropy-coded data (corrupt stream)');
  }

  /** Bytes of entropy-coded data after the last decoded bit, up to the next marker (ignoring buffered bits). */
  unreadBytes(): number {
    let p = this.pos;
    while (p < this.data.length && !(this.data[p] === 0xff && this.data[p + 1] !== 0)) p++;
    return p - this.pos + (this.marker < 0 ? Math.floor(this.cnt / 8) : 0);
  }

  /** True when the decoder consumed bits that were never in the stream (the data ended early). */
  overran(): boolean {
    return this.padBytes * 8 > this.cnt;
  }

  /** Byte position after the segment, for restart markers: drops buffered bits. */
  resync(): number {
    if (this.overran()) throw new JpegError('entropy-coded data ends before the restart marker (truncated)');
    if (this.marker < 0) {
      // Skip to the next marker (the bits left in the buffer are padding).
      let p = this.pos;
      while (
        p + 1 < this.data.length &&
        !(this.data[p] === 0xff && this.data[p + 1] !== 0 && this.data[p + 1] !== 0xff)
      )
        p++;
      while (p + 1 < this.data.length && this.data[p] === 0xff && this.data[p + 1] === 0xff) p++;
      if (p + 1 >= this.data.length) throw new JpegError('restart marker missing (truncated stream)');
      this.marker = this.data[p + 1];
      this.pos = p;
    }
    const m = this.marker;
    // pos points at the 0xff of the marker.
    while (this.pos < this.data.length && this.data[this.pos] !== 0xff) this.pos++;
    this.pos += 2;
    this.marker = -1;
    this.buf = 0;
    this.cnt = 0;
    this.padBytes = 0;
    return m;
  }
}

function extend(v: number, t: number): number {
  return v < 1 << (t - 1) ? v - (1 << t) + 1 : v;
}

interface Parsed {
  header: JpegFrameHeader;
  dc: (Huffman | undefined)[];
  ac: (Huffman | undefined)[];
  quant: (Int32Array | undefined)[];
  restartInterval: number;
  scanStart: number;
  /** Ss: predictor (lossless) or spectral start (DCT). */
  ss: number;
  se: number;
  al: number;
  dcTable: number;
  acTable: number;
  quantTable: number;
}

function u16(d: Uint8Array, p: number): number {
  if (p + 1 >= d.length) throw new JpegError('stream ends inside a marker segment');
  return (d[p] << 8) | d[p + 1];
}

/** Reads the frame header only (for size checks before any decoder allocates). */
export function readJpegHeader(data: Uint8Array): JpegFrameHeader {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw new JpegError('not a JPEG stream (no SOI marker)');
  let p = 2;
  while (p + 4 <= data.length) {
    if (data[p] !== 0xff) throw new JpegError(`expected a marker at byte ${p}`);
    const m = data[p + 1];
    if (m === 0xff) {
      p++;
      continue;
    }
    const len = u16(data, p + 2);
    if (len < 2) throw new JpegError('invalid marker segment length');
    if ((m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7) {
      if (p + 4 + 6 > data.length) throw new JpegError('truncated frame header');
      return {
        sof: m,
        precision: data[p + 4],
        height: u16(data, p + 5),
        width: u16(data, p + 7),
        components: data[p + 9],
      };
    }
    if (m === 0xda || m === 0xd9) break;
    p += 2 + len;
  }
  throw new JpegError('no frame header (SOF) found');
}

function parse(data: Uint8Array): Parsed {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw new JpegError('not a JPEG stream (no SOI marker)');
  const dc: (Huffman | undefined)[] = [];
  const ac: (Huffman | undefined)[] = [];
  const quant: (Int32Array | undefined)[] = [];
  let header: JpegFrameHeader | undefined;
  let restartInterval = 0;
  let compId = -1;
  let quantTable = 0;
  let p = 2;
  for (;;) {
    if (p + 4 > data.length) throw new JpegError('stream ends before the scan');
    if (data[p] !== 0xff) throw new JpegError(`expected a marker at byte ${p}`);
    const m = data[p + 1];
    if (m === 0xff) {
      p++;
      continue;
    }
    const len = u16(data, p + 2);
    const seg = p + 4;
    const end = p + 2 + len;
    if (len < 2 || end > data.length) throw new JpegError('marker segment runs past the end of the stream');
    if (m === 0xc4) {
      let q = seg;
      while (q < end) {
        const tc = data[q] >> 4;
        const th = data[q] & 15;
        if (q + 17 > end || th > 3 || tc > 1) throw new JpegError('invalid Huffman table segment');
        const counts = data.subarray(q + 1, q + 17);
        let n = 0;
        for (let i = 0; i < 16; i++) n += counts[i];
        if (n > 256 || q + 17 + n > end) throw new JpegError('invalid Huffman table segment');
        const table = buildHuffman(counts, data.subarray(q + 17, q + 17 + n));
        (tc === 0 ? dc : ac)[th] = table;
        q += 17 + n;
      }
    } else if (m === 0xdb) {
      let q = seg;
      while (q < end) {
        const pq = data[q] >> 4;
        const tq = data[q] & 15;
        const size = pq ? 128 : 64;
        if (tq > 3 || pq > 1 || q + 1 + size > end) throw new JpegError('invalid quantization table segment');
        const t = new Int32Array(64);
        for (let i = 0; i < 64; i++) t[i] = pq ? (data[q + 1 + 2 * i] << 8) | data[q + 2 + 2 * i] : data[q + 1 + i];
        quant[tq] = t;
        q += 1 + size;
      }
    } else if (m === 0xdd) {
      restartInterval = u16(data, seg);
    } else if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (m !== 0xc0 && m !== 0xc1 && m !== 0xc3) {
        throw new JpegError(
          `JPEG process with SOF marker 0x${m.toString(16)} (progressive, hierarchical or arithmetic) is not supported`,
        );
      }
      if (len < 11) throw new JpegError('truncated frame header');
      header = {
        sof: m,
        precision: data[seg],
        height: u16(data, seg + 1),
        width: u16(data, seg + 3),
        components: data[seg + 5],
      };
      if (header.components !== 1)
        throw new JpegError(`${header.components} components: only grayscale is supported by this decoder`);
      compId = data[seg + 6];
      quantTable = data[seg + 8] & 3;
    } else if (m === 0xda) {
      if (!header) throw new JpegError('scan before the frame header');
      const ns = data[seg];
      if (ns !== 1 || len < 8) throw new JpegError('only single-component scans are supported');
      if (data[seg + 1] !== compId) throw new JpegError('scan refers to a component the frame does not have');
      const tdta = data[seg + 2];
      return {
        header,
        dc,
        ac,
        quant,
        restartInterval,
        scanStart: end,
        ss: data[seg + 3],
        se: data[seg + 4],
        al: data[seg + 5] & 15,
        dcTable: tdta >> 4,
        acTable: tdta & 15,
        quantTable,
      };
    } else if (m === 0xd9) {
      throw new JpegError('end of image before any scan');
    }
    p = end;
  }
}

/** Decode a grayscale JPEG (lossless SOF3, or sequential DCT SOF0/SOF1 at 8 or 12 bits). */
export function decodeJpeg(data: Uint8Array): JpegDecoded {
  const ps = parse(data);
  const h = ps.header;
  if (h.width === 0 || h.height === 0) throw new JpegError('frame header has zero width or height (DNL not supported)');
  return h.sof === 0xc3 ? decodeLossless(data, ps) : decodeDct(data, ps);
}

function decodeLossless(data: Uint8Array, ps: Parsed): JpegDecoded {
  const { width, height, precision } = ps.header;
  if (precision < 2 || precision > 16) throw new JpegError(`lossless precision ${precision} out of range 2-16`);
  const predictor = ps.ss;
  if (predictor < 1 || predictor > 7) throw new JpegError(`lossless predictor ${predictor} out of range 1-7`);
  const table = ps.dc[ps.dcTable];
  if (!table) throw new JpegError('scan uses a Huffman table that is not defined');
  const pt = ps.al;
  const out = precision > 8 ? new Uint16Array(width * height) : new Uint8Array(width * height);
  // Work on the point-transformed values; the prediction arithmetic is modulo 2^16 (ITU T.81 H.1.2.1).
  const work = new Int32Array(width * height);
  const reader = new BitReader(data, ps.scanStart);
  const initial = 1 << (precision - pt - 1);
  const restart = ps.restartInterval;
  let sinceRestart = 0;
  // The first line (of the image and of each restart interval) predicts from the left only (T.81 H.1.2.1).
  let firstLine = true;
  let n = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++, n++) {
      if (restart && sinceRestart === restart) {
        // T.81 H.1.1: a lossless restart interval is a whole number of lines.
        if (x !== 0) throw new JpegError('restart interval is not a whole number of lines');
        const m = reader.resync();
        if (m < 0xd0 || m > 0xd7) throw new JpegError(`expected a restart marker, found 0x${m.toString(16)}`);
        sinceRestart = 0;
        firstLine = true;
      }
      if (restart) sinceRestart++;
      const t = reader.decode(table);
      let diff: number;
      if (t === 0) diff = 0;
      else if (t === 16) diff = 32768;
      else if (t > 16) throw new JpegError(`invalid difference category ${t}`);
      else diff = extend(reader.bits(t), t);
      let pred: number;
      if (firstLine) pred = x === 0 ? initial : work[n - 1];
      else if (x === 0) pred = work[n - width];
      else {
        const ra = work[n - 1];
        const rb = work[n - width];
        const rc = work[n - width - 1];
        switch (predictor) {
          case 1:
            pred = ra;
            break;
          case 2:
            pred = rb;
            break;
          case 3:
            pred = rc;
            break;
          case 4:
            pred = ra + rb - rc;
            break;
          case 5:
            pred = ra + ((rb - rc) >> 1);
            break;
          case 6:
            pred = rb + ((ra - rc) >> 1);
            break;
          default:
            pred = (ra + rb) >> 1;
            break;
        }
      }
      work[n] = (pred + diff) & 0xffff;
    }
    firstLine = false;
  }
  if (reader.overran()) throw new JpegError('entropy-coded data ends before the last sample (truncated)');
  const mask = (1 << precision) - 1;
  for (let i = 0; i < out.length; i++) out[i] = (work[i] << pt) & mask;
  if (predictor !== 1) checkPlausible(work, width, height, precision - pt, predictor);
  return { ...ps.header, data: out };
}

/**
 * Some encoders signal one predictor and use another (seen: predictor 6 signalled, predictor 1 used); the
 * stream then decodes without error to structured noise. Real images have neighbouring samples far closer
 * than 1/32 of the full range on average, so such a result is refused instead of returned.
 */
function checkPlausible(work: Int32Array, width: number, height: number, bits: number, predictor: number): void {
  const full = 1 << bits;
  const half = full >> 1;
  let sum = 0;
  let n = 0;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 1; x < width; x++) {
      // Differences are taken modulo the sample range, so wrapped signed data is not penalised.
      let d = Math.abs(work[row + x] - work[row + x - 1]) % full;
      if (d > half) d = full - d;
      sum += d;
      n++;
    }
  }
  const mean = n ? sum / n : 0;
  if (mean > full / 32) {
    throw new JpegError(
      `decoding with the signalled predictor ${predictor} gives implausible noise (mean neighbour difference ` +
        `${Math.round(mean)} of ${full}); the encoder probably used another predictor`,
    );
  }
}

// IDCT basis: C[x*8+u] = c(u)/2 cos((2x+1) u pi / 16).
const IDCT = (() => {
  const c = new Float64Array(64);
  for (let x = 0; x < 8; x++) {
    for (let u = 0; u < 8; u++)
      c[x * 8 + u] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
  return c;
})();

function decodeDct(data: Uint8Array, ps: Parsed): JpegDecoded {
  const { width, height, precision } = ps.header;
  if (precision !== 8 && precision !== 12) throw new JpegError(`DCT precision ${precision} is not 8 or 12`);
  if (ps.ss !== 0 || ps.se !== 63) throw new JpegError('spectral selection is not 0-63 (progressive data)');
  const dcT = ps.dc[ps.dcTable];
  const acT = ps.ac[ps.acTable];
  const q = ps.quant[ps.quantTable];
  if (!dcT || !acT) throw new JpegError('scan uses a Huffman table that is not defined');
  if (!q) throw new JpegError('frame uses a quantization table that is not defined');
  const bw = Math.ceil(width / 8);
  const bh = Math.ceil(height / 8);
  const out = precision > 8 ? new Uint16Array(width * height) : new Uint8Array(width * height);
  const maxVal = (1 << precision) - 1;
  const shift = 1 << (precision - 1);
  const coef = new Float64Array(64);
  const tmp = new Float64Array(64);
  const reader = new BitReader(data, ps.scanStart);
  const restart = ps.restartInterval;
  let pred = 0;
  let mcu = 0;
  for (let by = 0; by < bh; by++) {
    for (let bx = 0; bx < bw; bx++, mcu++) {
      if (restart && mcu > 0 && mcu % restart === 0) {
        const m = reader.resync();
        if (m < 0xd0 || m > 0xd7) throw new JpegError(`expected a restart marker, found 0x${m.toString(16)}`);
        pred = 0;
      }
      coef.fill(0);
      const t = reader.decode(dcT);
      if (t > 15) throw new JpegError(`invalid DC category ${t}`);
      pred += t ? extend(reader.bits(t), t) : 0;
      coef[0] = pred * q[0];
      for (let k = 1; k < 64;) {
        const rs = reader.decode(acT);
        const r = rs >> 4;
        const s = rs & 15;
        if (s === 0) {
          if (r !== 15) break;
          k += 16;
          continue;
        }
        k += r;
        if (k > 63) throw new JpegError('AC coefficient index past 63 (corrupt stream)');
        coef[ZIGZAG[k]] = extend(reader.bits(s), s) * q[k];
        k++;
      }
      // Separable inverse DCT: rows then columns.
      for (let y = 0; y < 8; y++) {
        for (let u = 0; u < 8; u++) {
          let sum = 0;
          for (let v = 0; v < 8; v++) sum += IDCT[y * 8 + v] * coef[v * 8 + u];
          tmp[y * 8 + u] = sum;
        }
      }
      const x0 = bx * 8;
      const y0 = by * 8;
      for (let y = 0; y < 8; y++) {
        const yy = y0 + y;
        if (yy >= height) break;
        for (let x = 0; x < 8; x++) {
          const xx = x0 + x;
          if (xx >= width) break;
          let sum = 0;
          for (let u = 0; u < 8; u++) sum += IDCT[x * 8 + u] * tmp[y * 8 + u];
          const v = Math.round(sum) + shift;
          out[yy * width + xx] = v < 0 ? 0 : v > maxVal ? maxVal : v;
        }
      }
    }
  }
  if (reader.overran()) throw new JpegError('entropy-coded data ends before the last block (truncated)');
  return { ...ps.header, data: out };
}
