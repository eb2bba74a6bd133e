/** Fixtures the case-server tests share: a plan document's text and stopping a served store. */
import type { CaseStore } from '../server/case-store.js';
import type { RunningServer } from '../server/server.js';

/** A plan whose screws differ only by their x (so each edit is one visible change). */
export function planText(paths: { id: string; name: string; x: number }[]): string {
  return JSON.stringify({
    schemaVersion: 1,
    volume: { file: 'ct.nii.gz' },
    paths: paths.map((p) => ({
      id: p.id,
      name: p.name,
      kind: 'screw',
      diameterMm: 7.3,
      entry: [p.x, 10, 20],
      target: [p.x + 40, 12, 22],
    })),
  });
}

/** Close the server, then its store. */
export async function stopServed(s: { srv: RunningServer; store: CaseStore }): Promise<void> {
  await s.srv.close();
  s.store.close();
}
