/**
 * Small 3-vector helpers on plain arrays. Each returns a new array (or a number) and never changes its
 * inputs, so aliasing cannot arise; for allocation-free work in hot loops use mat4TransformPoint /
 * mat4TransformDirection (output-first) or write the three components out.
 */
export type Point3 = [number, number, number];

export const sub = (a: ArrayLike<number>, b: ArrayLike<number>): Point3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const add = (a: ArrayLike<number>, b: ArrayLike<number>): Point3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const scale = (a: ArrayLike<number>, s: number): Point3 => [a[0] * s, a[1] * s, a[2] * s];
export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a: ArrayLike<number>, b: ArrayLike<number>): Point3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
export const norm = (a: ArrayLike<number>): number => Math.hypot(a[0], a[1], a[2]);
export const distance = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
export function normalize(a: ArrayLike<number>): Point3 {
  const n = norm(a);
  if (n === 0 || !Number.isFinite(n)) throw new RangeError('normalize: zero or non-finite vector');
  return [a[0] / n, a[1] / n, a[2] / n];
}
export const lerp = (a: ArrayLike<number>, b: ArrayLike<number>, t: number): Point3 => [
  a[0] + (b[0] - a[0]) * t,
  a[1] + (b[1] - a[1]) * t,
  a[2] + (b[2] - a[2]) * t,
];
