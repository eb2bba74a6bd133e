/**
 * Test-only child for case-kill.test.ts: opens the case store (recovering its write-ahead log), prints
 * what is in it and whether it checks out (`STATE {json}`), then serves the case API on a free port
 * (`LISTEN port`) until it is killed.
 * Usage: node child.mjs DB_FILE WEB_ROOT
 */
import { CaseStore, DOCUMENT_KINDS } from '../server/case-store.js';
import { startServer } from '../server/server.js';

const [dbFile, webRoot] = process.argv.slice(2);
const store = CaseStore.open(dbFile);
const docs: Record<string, [number, string, string | null][]> = {};
for (const c of store.listCases()) {
  const detail = store.getCase(c.id);
  if (!detail) continue;
  const heads = [detail.meta, ...DOCUMENT_KINDS.flatMap((k) => detail.documentsByKind[k])];
  for (const h of heads) {
    docs[`${h.caseId}/${h.kind}/${h.name}`] = store
      .history(h.caseId, h.kind as 'plans', h.name)
      .map((r) => [r.revision, r.sha256, r.parentSha256]);
  }
}
const state = { problems: store.check(), settings: store.settings(), docs };
process.stdout.write(`STATE ${JSON.stringify(state)}\n`);
const srv = await startServer({ webRoot, store, port: 0 });
process.stdout.write(`LISTEN ${srv.port}\n`);
