/**
 * The model's own settings beside it (`model.lens.json`, protocol/model-config.ts), read and written here without
 * the VS Code API (unit-tested alone); a file with problems is not used, and says why.
 */
import * as fs from 'fs';
import { type ModelConfig, modelConfigFileName, parseModelConfig } from '../../protocol/model-config';
import { readSmallFile } from './class-names';

/** no config needs more */
const MAX_CONFIG_BYTES = 4 * 2 ** 20;

export interface ReadConfig {
  file: string;
  config?: ModelConfig;
  /** why a file that is there is not used */
  problem?: string;
}

export async function readModelConfig(modelFile: string): Promise<ReadConfig> {
  const file = modelConfigFileName(modelFile);
  const read = await readSmallFile(file, MAX_CONFIG_BYTES, 'a model config');
  if (read.text === undefined) return { file, ...(read.ignored ? { problem: read.ignored } : {}) };
  const parsed = parseModelConfig(read.text);
  return 'config' in parsed ? { file, config: parsed.config } : { file, problem: `${file}: ${parsed.problem}` };
}

/** Writes the config whole: a reader (the editor, a second window) never sees half of it. */
export async function writeModelConfig(modelFile: string, config: ModelConfig): Promise<string> {
  const file = modelConfigFileName(modelFile);
  const partial = `${file}.${process.pid}.tmp`;
  await fs.promises.writeFile(partial, JSON.stringify(config, null, 2) + '\n');
  await fs.promises.rename(partial, file);
  return file;
}
