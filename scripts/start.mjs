// `npm start`: a real VS Code (code-server) on 127.0.0.1 with SparkQ installed, opened on a demo workspace that has
// sessions, queues and tasks. Prints the URL; Ctrl+C stops it. SPARKQ_PORT picks the port, SPARKQ_DEMO_DIR the folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { seedDemoWorkspace } from './lib/demoWorkspace.mjs';
import { ROOT, build, startCodeServer, workbenchUrl } from './lib/vscodeHost.mjs';

async function main() {
  build();
  const dataDir = path.join(ROOT, '.vscode-host', 'start');
  const ws = process.env.SPARKQ_DEMO_DIR ?? path.join(ROOT, '.vscode-host', 'demo-workspace');
  fs.mkdirSync(ws, { recursive: true });
  seedDemoWorkspace(ws);
  const port = process.env.SPARKQ_PORT ? Number(process.env.SPARKQ_PORT) : 8765;
  const server = await startCodeServer({ dataDir, port, smokeTestDriver: false, installExtension: true });
  const url = workbenchUrl(server.url, ws);
  console.log(`SparkQ is running in VS Code (code-server ${server.url}) on the demo workspace ${ws}`);
  console.log(`\n  open: ${url}\n`);
  console.log(`In it: the SparkQ icon in the activity bar; "SparkQ: Start Worker" on the Scripts queue runs a script task.`);
  console.log(`Logs: ${server.logFile}. Ctrl+C to stop.`);
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  server.child.on('exit', (code) => {
    console.error(`code-server exited (${code}); see ${server.logFile}`);
    process.exit(1);
  });
}

main().catch((e) => {
  console.error(`npm start failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
