/**
 * Writes a labelled shapes data set in ImageFolder layout for a data-set analysis (Analyze Data Set…, or
 * `relevance-lens analyze`): OUT/<label>-<class>/<index>.png, `per` images of each class, class folders named so
 * that their sorted order is the model's class order. Every cross carries the planted mark (dataset.ts).
 *
 *   npx tsx examples/shapes/write-data.ts OUT [PER_CLASS]
 */
import * as fs from 'fs';
import * as path from 'path';
import { encodeImagePng } from './export';
import { CLASSES, drawShape, rng } from './dataset';

export function writeShapesData(out: string, per = 80, seed = 31): string[] {
  const rand = rng(seed);
  const folders = CLASSES.map((name, label) => path.join(out, `${label}-${name}`));
  for (const dir of folders) fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < per; i++)
    folders.forEach((dir, label) =>
      fs.writeFileSync(path.join(dir, `${String(i).padStart(3, '0')}.png`), encodeImagePng(drawShape(label, rand))),
    );
  return folders;
}

if (require.main === module) {
  const [out, per] = process.argv.slice(2);
  if (!out) {
    console.error('usage: write-data.ts OUT [PER_CLASS]');
    process.exit(2);
  }
  writeShapesData(out, per ? Number(per) : undefined);
  console.log(`wrote ${CLASSES.length} × ${per ?? 80} images to ${out}`);
}
