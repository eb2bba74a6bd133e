import { startOrthanc } from '/work/wtG/packages/node/dist/pacs/orthanc.js';
import { nodeFetch } from '/work/wtG/packages/node/dist/pacs/http-fetch.js';
import { pacsClient } from '/work/wtG/packages/node/dist/cli/pacs.js';
import { createVolume, writeDicomSeries, parseDicom, MultipartParser, multipartBoundary } from '@corridor/core';
import http from 'node:http';
const o = await startOrthanc({ httpThreads: 4 });
try {
  const n = 512, nz = 150;
  const data = new Int16Array(n * n * nz).map((_, i) => (i * 7) % 2000 - 1000);
  const vol = createVolume({ data, dims: [n, n, nz], indexToPatient: new Float64Array([1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1]), meta: { source: 'x' } });
  const files = writeDicomSeries(vol, {}).map(f => f.bytes);
  const c = pacsClient(o.dicomWebUrl);
  await c.store(files);
  const uid = parseDicom(files[0], 'x').string('x0020000d');
  const url = `${o.dicomWebUrl}/studies/${uid}`;
  const hdr = { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };
  const time = async (label, fn) => { const t = performance.now(); const c0 = process.cpuUsage(); const r = await fn(); const c = process.cpuUsage(c0); console.log(label, (performance.now() - t).toFixed(0), 'ms wall', ((c.user + c.system) / 1000).toFixed(0), 'ms cpu', r); };
  for (let rep = 0; rep < 3; rep++) {
    await time('drain data events', () => new Promise((res) => http.get(url, { headers: hdr, agent: false }, (r) => { let k = 0, chunks = 0; r.on('data', (b) => { k += b.length; chunks++; }); r.on('end', () => res([k, chunks])); })));
    await time('nodeFetch reader only', async () => { const r = await nodeFetch(url, { headers: hdr }); const rd = r.body.getReader(); let k = 0; for (;;) { const x = await rd.read(); if (x.done) break; k += x.value.length; } return k; });
    await time('nodeFetch reader + parser', async () => { const r = await nodeFetch(url, { headers: hdr }); const p = new MultipartParser(multipartBoundary(r.headers.get('content-type')), () => {}); const rd = r.body.getReader(); for (;;) { const x = await rd.read(); if (x.done) break; p.push(x.value); } p.end(); return p.parts; });
    await time('data events + parser', () => new Promise((res) => http.get(url, { headers: hdr, agent: false }, (r) => { const p = new MultipartParser(multipartBoundary(r.headers['content-type']), () => {}); r.on('data', (b) => p.push(b)); r.on('end', () => { p.end(); res(p.parts); }); })));
    await time('client.retrieveStudy', () => c.retrieveStudy(uid, {}));
  }
} finally { await o.stop(); }
