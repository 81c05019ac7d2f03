/**
 * An analysis written to a folder, for the CLI and the server alike: `analysis.json` after every batch (a stopped
 * run resumes from it when its settings are the same), then each layer's reference images under `references/`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { fail } from '../errors';
import { AnalysisFile } from '../../../protocol/analysis';
import type { Model } from '../graph/model';
import { layerFileNames, realFolder, writeNoFollow } from '../io/files';
import { type AnalysisConfig, type AnalysisJson, analyzeDataset, sameConfig } from './analyze';
import type { Dataset } from './dataset';
import { channelReferences } from './references';

export interface AnalysisRunHooks {
  /** samples analysed, then reference images made (over all the layers that need them) */
  onProgress?: (phase: 'samples' | 'references', done: number, total: number) => void;
  isCancelled?: () => boolean;
  log?: (line: string) => void;
}

/**
 * An analysis's progress in words, for the terminal and the editor alike: "64/300 samples · 41.2 samples/s · ETA 6 s",
 * then "512/4096 reference images · 9.8 images/s · ETA 366 s" (each rate from its phase's first report: a resumed run
 * starts past 0). A layer of 2048 channels has 16 384 reference images at the default 8: minutes of work.
 */
export class AnalysisProgress {
  private first?: { phase: 'samples' | 'references'; done: number; at: number };

  text(phase: 'samples' | 'references', done: number, total: number): string {
    if (this.first?.phase !== phase) this.first = { phase, done, at: performance.now() };
    const seconds = (performance.now() - this.first.at) / 1000;
    const rate = seconds > 0 ? (done - this.first.done) / seconds : 0;
    const eta = rate > 0 ? `${Math.ceil((total - done) / rate)} s` : '–';
    const [what, unit] = phase === 'samples' ? ['samples', 'samples'] : ['reference images', 'images'];
    return `${done}/${total} ${what} · ${rate.toFixed(1)} ${unit}/s · ETA ${eta}`;
  }

  /** The share of the work done: the samples are 90 %, the reference images the rest. */
  static fraction(phase: 'samples' | 'references', done: number, total: number): number {
    return phase === 'samples' ? (0.9 * done) / total : 0.9 + (0.1 * done) / total;
  }
}

/** A saved analysis to resume: the same settings, else an error (never overwritten silently). */
function readSaved(file: string, config: AnalysisConfig): AnalysisJson | undefined {
  if (!fs.existsSync(file)) return undefined;
  let saved: AnalysisJson;
  try {
    saved = AnalysisFile.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    const why = e instanceof z.ZodError ? z.prettifyError(e).split('\n')[0] : (e as Error).message;
    return fail('BAD_INPUT', `${file} is not an analysis (${why}); remove it or choose another folder`);
  }
  if (!sameConfig(saved.config, config))
    fail('BAD_ARGUMENT', `${file} holds an analysis with other settings; remove it or choose another folder`);
  return saved;
}

/** Runs (or resumes) the analysis into `out`; `references` images per channel (0: none). */
export async function runAnalysis(
  model: Model,
  data: Dataset,
  config: AnalysisConfig,
  out: string,
  references: number,
  hooks: AnalysisRunHooks = {},
): Promise<{ file: string; analysis: AnalysisJson }> {
  if (!Number.isInteger(references) || references < 0)
    fail('BAD_ARGUMENT', `reference images per channel: a whole number ≥ 0, not ${references}`);
  const file = path.join(realFolder(out), 'analysis.json');
  const save = (state: AnalysisJson) => {
    writeNoFollow(`${file}.partial`, JSON.stringify(state) + '\n');
    fs.renameSync(`${file}.partial`, file);
  };
  let analysis = readSaved(file, config);
  if (analysis?.done !== data.length) {
    analysis = await analyzeDataset(
      model,
      data,
      config,
      {
        isCancelled: hooks.isCancelled,
        onBatch: (state) => {
          save(state);
          hooks.onProgress?.('samples', state.done, data.length);
        },
      },
      analysis,
    );
    const n = config.layers.length;
    hooks.log?.(
      `analysed ${data.length} samples at ${n} layer${n > 1 ? 's' : ''} in ${analysis.seconds.toFixed(1)} s ` +
        `(${(data.length / analysis.seconds).toFixed(1)} samples/s)`,
    );
  }
  // reference images, layer by layer (a layer that has them is done)
  const names = layerFileNames(config.layers);
  const wanted = Math.min(references, data.length);
  const todo = config.layers.filter(
    (id) => wanted && !analysis.layers[id].references?.every((r) => r.length >= wanted),
  );
  const images = (layer: string) =>
    analysis.layers[layer].relmax.samples.reduce((n, samples) => n + Math.min(references, samples.length), 0);
  const total = todo.reduce((n, layer) => n + images(layer), 0);
  let made = 0;
  if (todo.length) hooks.onProgress?.('references', made, total);
  for (const layer of todo) {
    const t0 = performance.now();
    const l = analysis.layers[layer];
    const refs = await channelReferences(model, data, config, layer, l.relmax, references, {
      isCancelled: hooks.isCancelled,
      onBatch: (count) => hooks.onProgress?.('references', (made += count), total),
    });
    const folder = path.posix.join('references', names.get(layer)!);
    const dir = realFolder(path.join(out, folder));
    l.references = refs.map((channel, c) =>
      channel.map((r, rank) => {
        const name = `c${c}-${rank}-s${r.sample}`;
        writeNoFollow(path.join(dir, `${name}.png`), r.image);
        writeNoFollow(path.join(dir, `${name}-heatmap.png`), r.heatmap);
        return {
          sample: r.sample,
          label: data.label(r.sample),
          crop: r.crop,
          image: path.posix.join(folder, `${name}.png`),
          heatmap: path.posix.join(folder, `${name}-heatmap.png`),
        };
      }),
    );
    save(analysis);
    const n = refs.reduce((a, r) => a + r.length, 0);
    hooks.log?.(`${layer}: ${n} reference images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { file, analysis };
}
