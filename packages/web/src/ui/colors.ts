/**
 * Clearance colours. The bands (and their thresholds) are core's `clearanceBand` (plan/clinical.ts); this
 * file only maps each band to a colour: red where the tool cuts into a forbidden structure, orange inside
 * the margin, yellow near it, green with room, grey outside bone (nothing to clear).
 */
import { clearanceBand, type ClearanceBand } from '@corridor/core';

export const CLEARANCE_BAND_COLORS: Record<ClearanceBand, string> = {
  outside: '#8a8f98',
  breach: '#ff3b30',
  margin: '#ff9500',
  near: '#ffd60a',
  room: '#34c759',
};

export function clearanceColor(clearanceMm: number | null, marginMm: number): string {
  return CLEARANCE_BAND_COLORS[clearanceBand(clearanceMm, marginMm)];
}

export const PATH_COLORS = ['#5ac8fa', '#ff9f0a', '#bf5af2', '#30d158', '#ff375f', '#64d2ff'];
