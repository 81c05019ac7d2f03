/**
 * Labelled data sets for an analysis: a folder in torchvision's ImageFolder layout (one subfolder per class, sorted
 * by name; images found recursively, sorted, as ImageFolder orders them), or an .npz with `x` (N×… in the model's
 * layout) and `y` (labels). Samples are read one at a time, so a data set need not fit in memory (an .npz does).
 */
import * as fs from 'fs';
import * as path from 'path';
import { unzipSync } from 'fflate';
import { fail } from '../errors';
import { FILE_LIMITS, readRegularFile } from '../io/files';
import { parseNpy } from '../io/npy';
import type { Preprocess } from '../io/image';
import type { Model } from '../graph/model';
import { readInput } from '../lrp/attribution';
import { joinRows, type NdArray, pickRows } from '../ndarray';

export interface Dataset {
  source: string;
  length: number;
  /** class names by label (folder names, or classes.json beside an .npz) */
  classNames?: string[];
  label(index: number): number;
  /** samples `indices` as one batch in the model's layout */
  batch(indices: readonly number[]): Promise<NdArray>;
}

const IMAGE = /\.(png|jpe?g)$/i;

export async function openDataset(file: string, model: Model, preprocess: Preprocess = {}): Promise<Dataset> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch {
    return fail('FILE_NOT_FOUND', `${file}: data set not found`);
  }
  if (stat.isDirectory()) return imageFolder(file, model, preprocess);
  if (file.toLowerCase().endsWith('.npz')) return npz(file, model);
  return fail('BAD_INPUT', `${file}: a data set is a folder of class folders (ImageFolder) or an .npz with x and y`);
}

/** Files under `dir`, walked as os.walk in sorted order (what ImageFolder does), images only. */
async function imagesUnder(dir: string): Promise<string[]> {
  const entries = (await fs.promises.readdir(dir, { withFileTypes: true })).sort((a, b) => cmp(a.name, b.name));
  const files = entries.filter((e) => e.isFile() && IMAGE.test(e.name)).map((e) => path.join(dir, e.name));
  for (const sub of entries.filter((e) => e.isDirectory()))
    files.push(...(await imagesUnder(path.join(dir, sub.name))));
  return files;
}

/** Python's str ordering (by code point), not the locale's. */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function imageFolder(dir: string, model: Model, preprocess: Preprocess): Promise<Dataset> {
  const classes = (await fs.promises.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort(cmp);
  if (!classes.length) fail('BAD_INPUT', `${dir}: no class folders (ImageFolder layout: ${dir}/<class>/<image>.png)`);
  const samples: [string, number][] = [];
  for (const [label, name] of classes.entries())
    for (const f of await imagesUnder(path.join(dir, name))) samples.push([f, label]);
  if (!samples.length) fail('BAD_INPUT', `${dir}: no PNG or JPEG images in its class folders`);
  return {
    source: dir,
    length: samples.length,
    classNames: classes,
    label: (i) => samples[i][1],
    batch: async (indices) =>
      joinRows(await Promise.all(indices.map((i) => readInput(model, samples[i][0], preprocess)))),
  };
}

async function npz(file: string, model: Model): Promise<Dataset> {
  const bytes = await readRegularFile(file, FILE_LIMITS.npy, file);
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes, { filter: (f) => f.name === 'x.npy' || f.name === 'y.npy' });
  } catch (e) {
    return fail('BAD_INPUT', `${file}: not an .npz (${(e as Error).message})`);
  }
  if (!members['x.npy'] || !members['y.npy']) fail('BAD_INPUT', `${file}: an .npz data set needs arrays x and y`);
  const x = parseNpy(Buffer.from(members['x.npy']), `${file}:x`);
  const y = parseNpy(Buffer.from(members['y.npy']), `${file}:y`);
  const want = model.graph.input.shape.slice(1);
  if (x.shape.slice(1).join() !== want.join())
    fail('SHAPE_MISMATCH', `${file}: x has samples of shape [${x.shape.slice(1)}], the model takes [${want}]`);
  if (y.shape.length !== 1 || y.shape[0] !== x.shape[0])
    fail('SHAPE_MISMATCH', `${file}: y has shape [${y.shape}] for ${x.shape[0]} samples (one label each)`);
  if (!y.data.every((v) => Number.isInteger(v) && v >= 0))
    fail('BAD_INPUT', `${file}: the labels in y are not class indices`);
  return {
    source: file,
    length: x.shape[0],
    classNames: await classNamesBeside(file),
    label: (i) => y.data[i],
    batch: async (indices) => pickRows(x, indices),
  };
}

/**
 * Class names from a `classes.json` beside a data set: an array of strings, or an object with one as `classes` (what
 * the extension reads beside a model). Read as every file is (a regular file of a sensible size); a file that holds
 * no such list is an error naming it.
 */
async function classNamesBeside(file: string): Promise<string[] | undefined> {
  const names = path.join(path.dirname(file), 'classes.json');
  if (!fs.existsSync(names)) return undefined;
  const text = (await readRegularFile(names, FILE_LIMITS.classNames)).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail('BAD_INPUT', `${names} is not JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(json) ? json : (json as { classes?: unknown } | null)?.classes;
  if (!Array.isArray(list) || !list.every((n) => typeof n === 'string'))
    fail('BAD_INPUT', `${names} holds no list of class names (an array of strings, or one under "classes")`);
  return list as string[];
}
