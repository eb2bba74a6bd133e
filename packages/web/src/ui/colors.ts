/** Clearance colours: red where the tool cuts into a forbidden structure, orange inside the margin, yellow near it, green with room. */
export function clearanceColor(clearanceMm: number, marginMm: number): string {
  if (!Number.isFinite(clearanceMm)) return '#8a8f98'; // outside bone: nothing to clear
  if (clearanceMm < 0) return '#ff3b30';
  if (clearanceMm < marginMm) return '#ff9500';
  if (clearanceMm < marginMm + 2) return '#ffd60a';
  return '#34c759';
}

export const PATH_COLORS = ['#5ac8fa', '#ff9f0a', '#bf5af2', '#30d158', '#ff375f', '#64d2ff'];
