/**
 * Names beside a model (no VS Code API: unit-tested alone): the class names its outputs go by (`classes.json`), and
 * the feature names of a vector input (`features.json`).
 */
import * as fs from 'fs';
import * as path from 'path';

/** ImageNet's 1000 class names as torchvision names them (media/imagenet-classes.json), read once. */
let imageNet: string[] | undefined;
export function imageNetClasses(extension: { asAbsolutePath(p: string): string }): string[] {
  imageNet ??= JSON.parse(fs.readFileSync(extension.asAbsolutePath('media/imagenet-classes.json'), 'utf8')) as string[];
  return imageNet;
}

/** A names file larger than this is no list of names (and is not read). */
const MAX_NAMES_BYTES = 16 * 2 ** 20;

/** The names, or why a classes.json that is there was not used; neither when there is none. */
export interface ClassNames {
  names?: string[];
  ignored?: string;
}

/** Class names from `classes.json` beside the model: an array of strings, or an object with one as `classes`. */
export const readClassNames = (modelFile: string) => readNames(modelFile, 'classes.json', 'classes');

/** Feature names from `features.json` beside the model: an array of strings, or an object with one as `features`. */
export const readFeatureNames = (modelFile: string) => readNames(modelFile, 'features.json', 'features');

/** Names from `fileName` beside the model (see readNamesFile). */
const readNames = (modelFile: string, fileName: string, key: string) =>
  readNamesFile(path.join(path.dirname(modelFile), fileName), key);

/**
 * Names from a file: a JSON array of strings or an object with one under `key`; any other file (`.txt`) a name
 * per line. Read without blocking the extension host, and only if it is a regular file of a sensible size: a
 * repository may ship `classes.json -> /dev/zero`.
 */
export async function readNamesFile(file: string, key: string): Promise<ClassNames> {
  const read = await readSmallFile(file, MAX_NAMES_BYTES, 'a list of names');
  if (read.text === undefined) return read.ignored ? { ignored: read.ignored } : {};
  if (!/\.json$/i.test(file)) {
    const names = read.text.split(/\r?\n/).map((l) => l.trim());
    while (names.length && !names.at(-1)) names.pop();
    return names.length ? { names } : { ignored: `${file} has no names in it` };
  }
  try {
    const json = JSON.parse(read.text);
    const names = Array.isArray(json) ? json : json?.[key];
    if (Array.isArray(names) && names.every((n) => typeof n === 'string')) return { names };
    return { ignored: `${file} holds no list of strings (an array, or one under "${key}")` };
  } catch (e) {
    return { ignored: `${file}: ${(e as Error).message}` };
  }
}

/**
 * A small text file's content, only if it is a regular file of at most `maxBytes` (`what` names what it should
 * hold, for the reason); neither when there is none.
 */
export async function readSmallFile(
  file: string,
  maxBytes: number,
  what: string,
): Promise<{ text?: string; ignored?: string }> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch {
    return {};
  }
  if (!stat.isFile()) return { ignored: `${file} is not a regular file` };
  if (stat.size > maxBytes) return { ignored: `${file} has ${stat.size} bytes, more than ${what} needs` };
  try {
    return { text: await fs.promises.readFile(file, 'utf8') };
  } catch (e) {
    return { ignored: `${file}: ${(e as Error).message}` };
  }
}
