/**
 * The checksums of compressed containers, computed as data streams out of the inflater: CRC-32 of gzip
 * members (RFC 1952; the IEEE polynomial 0xEDB88320, reflected) and Adler-32 of zlib streams (RFC 1950).
 * fflate inflates without checking either, so a flipped bit that still inflates would otherwise go unseen.
 */

/** Slicing-by-8 tables: T[0] is the classic byte table, T[k][b] the CRC of b followed by k zero bytes. */
const T: Uint32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0][n];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][n] = c >>> 0;
    }
  }
  return t;
})();

/** Running CRC-32: update with each chunk in order, then value() (0 for no data). */
export class Crc32 {
  private c = 0xffffffff;
  update(b: Uint8Array): this {
    let c = this.c;
    const [t0, t1, t2, t3, t4, t5, t6, t7] = T;
    let i = 0;
    const n = b.length;
    for (; i + 8 <= n; i += 8) {
      const lo = (c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))) >>> 0;
      c =
        t7[lo & 0xff] ^
        t6[(lo >>> 8) & 0xff] ^
        t5[(lo >>> 16) & 0xff] ^
        t4[lo >>> 24] ^
        t3[b[i + 4]] ^
        t2[b[i + 5]] ^
        t1[b[i + 6]] ^
        t0[b[i + 7]];
    }
    for (; i < n; i++) c = t0[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    this.c = c;
    return this;
  }
  value(): number {
    return (this.c ^ 0xffffffff) >>> 0;
  }
}

/** Running Adler-32 (RFC 1950): update with each chunk in order, then value() (1 for no data). */
export class Adler32 {
  private a = 1;
  private b = 0;
  update(d: Uint8Array): this {
    let a = this.a,
      b = this.b;
    // 5552 bytes is the most that can be summed before b may exceed 2^32 (zlib's NMAX).
    for (let i = 0; i < d.length;) {
      const end = Math.min(i + 5552, d.length);
      for (; i < end; i++) {
        a += d[i];
        b += a;
      }
      a %= 65521;
      b %= 65521;
    }
    this.a = a;
    this.b = b;
    return this;
  }
  value(): number {
    return ((this.b << 16) | this.a) >>> 0;
  }
}

/** CRC-32 of bytes in one call. */
export function crc32(b: Uint8Array): number {
  return new Crc32().update(b).value();
}

/** Adler-32 of bytes in one call. */
export function adler32(b: Uint8Array): number {
  return new Adler32().update(b).value();
}
