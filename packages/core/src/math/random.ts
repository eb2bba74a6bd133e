/**
 * Seeded pseudo-random numbers (mulberry32): pure 32-bit integer arithmetic, so a seed gives the same stream
 * on every JavaScript engine. For phantoms, noise, fuzz and randomized tests that must replay exactly.
 */

/** A function returning uniform numbers in [0, 1) from `seed`. */
export function uniformSource(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** A unit vector perpendicular to unit vector u, uniformly distributed in angle. */
  perpendicular(u: readonly [number, number, number]): [number, number, number] {
    // Any vector not parallel to u gives a basis of the perpendicular plane.
    const a: [number, number, number] = Math.abs(u[0]) < 0.9 ? [1, 0, 0] : [0, 1, 0];
    let e1x = a[1] * u[2] - a[2] * u[1],
      e1y = a[2] * u[0] - a[0] * u[2],
      e1z = a[0] * u[1] - a[1] * u[0];
    const n1 = Math.hypot(e1x, e1y, e1z);
    e1x /= n1;
    e1y /= n1;
    e1z /= n1;
    const e2x = u[1] * e1z - u[2] * e1y,
      e2y = u[2] * e1x - u[0] * e1z,
      e2z = u[0] * e1y - u[1] * e1x;
    const phi = 2 * Math.PI * this.next();
    const c = Math.cos(phi),
      s = Math.sin(phi);
    return [c * e1x + s * e2x, c * e1y + s * e2y, c * e1z + s * e2z];
  }
}
