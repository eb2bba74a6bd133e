import { describe, expect, it } from 'vitest';
import { multistart, nelderMead } from './optimize.js';
import { UsageError } from '../errors.js';

describe('nelderMead', () => {
  it('finds the Rosenbrock minimum at (1, 1) from the classic start (-1.2, 1)', () => {
    const rosen = (x: number[]) => 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2;
    const r = nelderMead(rosen, [-1.2, 1], { xTolerance: 1e-9, fTolerance: 1e-14 });
    expect(r.converged).toBe(true);
    expect(r.x[0]).toBeCloseTo(1, 4);
    expect(r.x[1]).toBeCloseTo(1, 4);
    expect(r.value).toBeLessThan(1e-8);
  });

  it('finds the minimum of a shifted, anisotropic 5-D quadratic', () => {
    const c = [3, -2, 0.5, 10, -7];
    const w = [1, 10, 0.1, 3, 50];
    const f = (x: number[]) => x.reduce((s, xi, i) => s + w[i] * (xi - c[i]) ** 2, 0) + 4;
    const r = nelderMead(f, [0, 0, 0, 0, 0], { initialStep: 1, xTolerance: 1e-8, fTolerance: 1e-12 });
    for (let i = 0; i < 5; i++) expect(Math.abs(r.x[i] - c[i])).toBeLessThan(1e-4);
    expect(r.value).toBeCloseTo(4, 8);
  });

  it('treats NaN as +Infinity: stays in the feasible region', () => {
    // Minimum of (x-2)^2 restricted to x <= 1 (NaN beyond) is at x = 1.
    const f = (x: number[]) => (x[0] > 1 ? NaN : (x[0] - 2) ** 2);
    const r = nelderMead(f, [-3], { initialStep: 0.5 });
    expect(r.x[0]).toBeLessThanOrEqual(1);
    expect(r.x[0]).toBeGreaterThan(1 - 1e-4);
  });

  it('respects the evaluation budget', () => {
    let calls = 0;
    const f = (x: number[]) => {
      calls++;
      return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2;
    };
    const r = nelderMead(f, [-1.2, 1], { maxEvaluations: 30 });
    expect(calls).toBe(r.evaluations);
    // A single step may finish a shrink (n evaluations) past the budget check.
    expect(calls).toBeLessThanOrEqual(32);
    expect(r.converged).toBe(false);
  });

  it('never hands the objective an array it later changes, and does not modify x0', () => {
    const x0 = [1, 2];
    const seen: number[][] = [];
    nelderMead(
      (x) => {
        seen.push(x);
        return x[0] ** 2 + x[1] ** 2;
      },
      x0,
      { maxEvaluations: 50 },
    );
    expect(x0).toEqual([1, 2]);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects bad input with a UsageError', () => {
    expect(() => nelderMead((x) => x[0], [])).toThrow(UsageError);
    expect(() => nelderMead((x) => x[0], [NaN])).toThrow(UsageError);
    expect(() => nelderMead((x) => x[0], [1, 2], { initialStep: [1] })).toThrow(UsageError);
  });
});

describe('multistart', () => {
  it('finds the global minimum of a multi-basin function that a single start misses', () => {
    // f(x) = x^2/20 + 1 - cos(2 pi x) (Rastrigin-like): global minimum 0 at x = 0, local minima near
    // every integer; started at 4.2 a single local search stops near 4 (value about 0.8).
    const f = (x: number[]) => x[0] ** 2 / 20 + 1 - Math.cos(2 * Math.PI * x[0]);
    const single = nelderMead(f, [4.2], { initialStep: 0.1 });
    expect(single.value).toBeGreaterThan(0.5);
    const starts = [-4.7, -2.3, 0.4, 2.6, 4.2].map((s) => [s]);
    const r = multistart(f, starts, { initialStep: 0.1 });
    expect(Math.abs(r.x[0])).toBeLessThan(1e-4);
    expect(r.value).toBeLessThan(1e-8);
    expect(r.bestStart).toBe(2);
    expect(r.runs).toHaveLength(5);
  });

  it('finds one of the four Himmelblau minima (value 0) from a grid of starts', () => {
    const f = (x: number[]) => (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2;
    const starts = [
      [-5, -5],
      [5, -5],
      [-5, 5],
      [5, 5],
    ];
    const r = multistart(f, starts);
    expect(r.value).toBeLessThan(1e-8);
    // The four known minima: (3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126).
    const known = [
      [3, 2],
      [-2.805118, 3.131312],
      [-3.77931, -3.283186],
      [3.584428, -1.848126],
    ];
    const found = r.runs.map((run) => known.findIndex((k) => Math.hypot(k[0] - run.x[0], k[1] - run.x[1]) < 1e-4));
    expect(found.every((i) => i >= 0)).toBe(true);
  });
});
