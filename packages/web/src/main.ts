/** Entry point: build the workstation and open the phantom (or nothing with ?case=none). */
import './style.css';
import { Shell } from './shell.js';
import { configureCodecs } from './codecs.js';

configureCodecs();

const shell = new Shell();
// For the end-to-end tests and the benchmark: the running workstation, read-only by convention.
(window as unknown as { corridor: Shell }).corridor = shell;
document.body.dataset.state = 'ready';
const params = new URLSearchParams(location.search);
if (params.get('case') !== 'none')
  shell.run(() => shell.app.openPhantom(params.has('voxel') ? Number(params.get('voxel')) : undefined));
