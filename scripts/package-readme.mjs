// The README that goes into the .vsix: the repository's, with its pictures (docs/*.png) inlined as data: URIs.
// VS Code's extension page loads README images only from https: or data: URLs, never from the package itself,
// and this extension has no public image host: inlined, the pictures show for a .vsix installed anywhere.
//   node scripts/package-readme.mjs OUT
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2];
if (!out) throw new Error('usage: node scripts/package-readme.mjs OUT');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const inlined = readme.replace(/!\[([^\]]*)\]\((docs\/[\w.-]+\.png)\)/g, (_, alt, file) => {
  const data = fs.readFileSync(path.join(root, file)).toString('base64');
  return `![${alt}](data:image/png;base64,${data})`;
});
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, inlined);
