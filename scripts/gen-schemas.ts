/**
 * Writes the JSON Schemas VS Code validates the model's files beside it with (package.json's jsonValidation), from
 * the zod schemas the engine and the extension read them with: schemas/composite.schema.json (composite files) and
 * schemas/model-config.schema.json (`*.lens.json`). The files are committed; test/unit/composite-file.test.ts and
 * test/unit/model-config.test.ts check that they are current.
 *
 *   npx tsx scripts/gen-schemas.ts [OUT_DIR]
 */
import * as fs from 'fs';
import * as path from 'path';
import { compositeJsonSchema } from '../protocol/composite-file';
import { modelConfigJsonSchema } from '../protocol/model-config';

const dir = process.argv[2] ?? path.join(__dirname, '..', 'schemas');
for (const [name, schema] of [
  ['composite.schema.json', compositeJsonSchema()],
  ['model-config.schema.json', modelConfigJsonSchema()],
] as const) {
  const out = path.join(dir, name);
  fs.writeFileSync(out, JSON.stringify(schema, null, 2) + '\n');
  console.log(`wrote ${out}`);
}
