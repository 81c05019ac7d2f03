/** The class names a model's outputs go by, from `classes.json` beside it (no VS Code API: unit-tested alone). */
import * as fs from 'fs';
import * as path from 'path';

/** A classes.json larger than this is no list of class names (and is not read). */
const MAX_CLASSES_JSON_BYTES = 16 * 2 ** 20;

/** The names, or why a classes.json that is there was not used; neither when there is none. */
export interface ClassNames {
  names?: string[];
  ignored?: string;
}

/**
 * Class names from `classes.json` beside the model: an array of strings, or an object with one as `classes`. Read
 * without blocking the extension host, and only if it is a regular file of a sensible size: a repository may ship
 * `classes.json -> /dev/zero`.
 */
export async function readClassNames(modelFile: string): Promise<ClassNames> {
  const file = path.join(path.dirname(modelFile), 'classes.json');
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch {
    return {};
  }
  if (!stat.isFile()) return { ignored: `${file} is not a regular file` };
  if (stat.size > MAX_CLASSES_JSON_BYTES)
    return { ignored: `${file} has ${stat.size} bytes, more than a list of class names needs` };
  try {
    const json = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    const names = Array.isArray(json) ? json : json?.classes;
    if (Array.isArray(names) && names.every((n) => typeof n === 'string')) return { names };
    return { ignored: `${file} holds no list of strings (an array, or one under "classes")` };
  } catch (e) {
    return { ignored: `${file}: ${(e as Error).message}` };
  }
}
