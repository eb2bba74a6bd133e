/**
 * Test-only: a private Orthanc (with DICOMweb) per test file. `describeOrthanc` runs its tests against a
 * fresh Orthanc on a free loopback port with a throw-away storage folder, stopped after; where Orthanc is
 * not installed (and scripts/ensure-orthanc.sh could not install it) the tests are skipped with the reason
 * in their name. On CI (CI=true) a missing Orthanc fails instead of skipping.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { orthancAvailability, startOrthanc, type OrthancInstance } from '../pacs/orthanc.js';

export { startOrthanc, orthancAvailability, type OrthancInstance };

export function describeOrthanc(name: string, body: (orthanc: () => OrthancInstance) => void): void {
  const avail = orthancAvailability();
  if (!avail.ok && process.env.CI !== 'true') {
    describe(name, () => {
      it.skip(`skipped: ${avail.reason}`, () => undefined);
    });
    return;
  }
  describe(name, () => {
    let instance: OrthancInstance | undefined;
    beforeAll(async () => {
      instance = await startOrthanc();
    }, 60000);
    afterAll(async () => {
      await instance?.stop();
    });
    body(() => {
      if (!instance) throw new Error('Orthanc did not start');
      return instance;
    });
  });
}
