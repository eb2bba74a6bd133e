/**
 * The path-by-path merge of two versions of a plan (issue 19, conflicts): each row's default is the side
 * that moved away from the plan both were made from, a choice per path overrides it, a path only one
 * side has is kept from that side (dropped when the other side is chosen for it).
 */
import { describe, expect, it } from 'vitest';
import type { Plan, PlanPath } from '@corridor/core';
import { conflictRows, mergePlans } from './case-session.js';

const path = (id: string, x: number): PlanPath => ({
  id,
  name: id,
  kind: 'guidepin',
  diameterMm: 2.8,
  entry: [x, 0, 0],
  target: [x, 50, 0],
});
const plan = (...paths: PlanPath[]): Plan => ({ schemaVersion: 1, volume: {}, paths });

describe('merging two versions of a plan path by path', () => {
  const base = plan(path('a', 0), path('b', 0), path('c', 0));
  // Theirs moved a and added t; mine moved b and a too, dropped c, added m.
  const theirs = plan(path('a', 1), path('b', 0), path('c', 0), path('t', 5));
  const mine = plan(path('a', 2), path('b', 3), path('m', 7));

  it('defaults: the side that changed from the base; both changed: mine', () => {
    const rows = conflictRows(theirs, mine, base);
    const pick = Object.fromEntries(rows.map((r) => [r.id, r.differs ? r.pick : 'same']));
    expect(pick).toEqual({ a: 'mine', b: 'mine', c: 'mine', t: 'theirs', m: 'mine' });
    const merged = mergePlans(theirs, mine, rows);
    // a and b from mine, c dropped (only mine changed it: dropped it), t from theirs, m from mine.
    expect(merged.paths.map((p) => [p.id, p.entry[0]])).toEqual([
      ['a', 2],
      ['b', 3],
      ['t', 5],
      ['m', 7],
    ]);
  });

  it('a choice per path overrides the default; a side without the path drops it', () => {
    const rows = conflictRows(theirs, mine, base);
    const merged = mergePlans(theirs, mine, rows, { a: 'theirs', c: 'theirs', t: 'mine' });
    expect(merged.paths.map((p) => [p.id, p.entry[0]])).toEqual([
      ['a', 1],
      ['b', 3],
      ['c', 0],
      ['m', 7],
    ]);
  });

  it('without a base, a path only one side has comes from that side', () => {
    const rows = conflictRows(theirs, mine, null);
    expect(rows.find((r) => r.id === 't')?.pick).toBe('theirs');
    expect(rows.find((r) => r.id === 'c')?.pick).toBe('theirs');
    expect(rows.find((r) => r.id === 'm')?.pick).toBe('mine');
  });
});
