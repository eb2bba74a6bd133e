/**
 * Phantom noise. The generator is math/random.ts's mulberry32, inlined here because this is the hot loop;
 * the Gaussian-like noise uses a sum of uniforms (no Math.log/cos, whose last bit may differ between engines).
 */
/**
 * Fill `out` with zero-mean noise of standard deviation `sd`: each value is the sum of four uniform
 * 16-bit halves of two 32-bit draws (Irwin-Hall, variance 4/12), close to Gaussian within +-3.4 sd.
 */
export function addNoise(out: Float32Array, sd: number, seed: number): void {
  let state = seed >>> 0;
  const scale = sd / Math.sqrt(4 / 12) / 65536;
  const mean = 2 * 65535;
  for (let v = 0; v < out.length; v++) {
    // mulberry32 inlined twice: the hot loop of the generator.
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r1 = (t ^ (t >>> 14)) >>> 0;
    t = state = (state + 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r2 = (t ^ (t >>> 14)) >>> 0;
    out[v] += ((r1 & 0xffff) + (r1 >>> 16) + (r2 & 0xffff) + (r2 >>> 16) - mean) * scale;
  }
}
