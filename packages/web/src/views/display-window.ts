/** The display window of a DRR: percentiles of the line integrals of rays through the body (LI > 0.05). */
export function displayWindow(li: ArrayLike<number>): { lo: number; hi: number } {
  const sample: number[] = [];
  const stride = Math.max(1, Math.floor(li.length / 20000));
  for (let i = 0; i < li.length; i += stride) if (li[i] > 0.05) sample.push(li[i]);
  if (sample.length < 10) return { lo: 0, hi: 1 };
  sample.sort((a, b) => a - b);
  const lo = sample[Math.floor(sample.length * 0.01)];
  const hi = sample[Math.min(sample.length - 1, Math.floor(sample.length * 0.997))];
  return { lo, hi: Math.max(hi, lo + 1e-3) };
}
