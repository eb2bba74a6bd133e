/** Test-only: the corridor CLI as a process entry (what bin/corridor.js does with the built output). */
import { main } from '../cli/main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
