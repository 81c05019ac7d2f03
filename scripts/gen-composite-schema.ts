/**
 * Writes schemas/composite.schema.json, the JSON Schema VS Code validates composite files with (package.json's
 * jsonValidation), from the zod schema the engine reads them with. The file is committed;
 * test/unit/composite-file.test.ts checks that it is current.
 *
 *   npx tsx scripts/gen-composite-schema.ts [OUT]
 */
import * as fs from 'fs';
import * as path from 'path';
import { compositeJsonSchema } from '../protocol/composite-file';

const out = process.argv[2] ?? path.join(__dirname, '..', 'schemas', 'composite.schema.json');
fs.writeFileSync(out, JSON.stringify(compositeJsonSchema(), null, 2) + '\n');
console.log(`wrote ${out}`);
