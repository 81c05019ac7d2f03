/**
 * Extension-host tests with @vscode/test-electron: downloads VS Code (where the network allows), starts it with
 * this extension in development mode on a copy of the example workspace, and runs suite/ with Mocha inside it.
 *   npm run test:extension-host
 * This machine cannot download VS Code; the same scenarios (test/scenarios.ts) run here in code-server (test/e2e/).
 */
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runTests } from '@vscode/test-electron';
import { scenarioWorkspace } from '../scenarios';

const ROOT = path.resolve(__dirname, '../..');

async function main() {
  const out = path.join(ROOT, 'out/extension-host');
  // the suite runs inside VS Code's extension host, which loads plain CommonJS
  await esbuild.build({
    entryPoints: [path.join(__dirname, 'suite/index.ts'), path.join(__dirname, 'suite/extension.test.ts')],
    outdir: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'mocha'],
  });
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'relevance-lens-host-'));
  for (const [name, from] of Object.entries(scenarioWorkspace(ROOT)))
    fs.writeFileSync(path.join(workspace, name), typeof from === 'string' ? fs.readFileSync(from) : from);
  await runTests({
    extensionDevelopmentPath: ROOT,
    extensionTestsPath: path.join(out, 'index.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
  });
}

main().catch((e) => {
  console.error(`extension-host tests failed: ${(e as Error).message ?? e}`);
  process.exit(1);
});
