/**
 * The open model's data-set analysis (`resnet50.onnx` → `resnet50.analysis/analysis.json`, written by the engine),
 * read and checked against its schema, as the Channel Analysis panel and the Layer Relevance view draw it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AnalysisFile } from '../../protocol/analysis';
import type { AnalysisView } from '../../protocol/webview';

/** Where a model's analysis lives. */
export function analysisFolder(modelPath: string): string {
  return path.join(path.dirname(modelPath), path.basename(modelPath).replace(/\.(onnx|json)$/i, '') + '.analysis');
}

/**
 * The analysis in `folder` for a view: classes by name (the model's own names first: labels index its classes),
 * images as the view's URIs. Undefined when there is none; an error naming the file when it is not an analysis.
 */
export async function readAnalysisView(
  folder: string,
  toUri: (file: string) => string,
  classNames?: string[],
): Promise<AnalysisView | undefined> {
  const file = path.join(folder, 'analysis.json');
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  const parsed = AnalysisFile.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not an analysis: ${parsed.error.issues[0]?.message}`);
  const a = parsed.data;
  const names = classNames ?? a.classNames;
  const name = (c: number) => (names?.[c] ? `${c} ${names[c]}` : `${c}`);
  return {
    model: path.basename(a.config.model),
    data: path.basename(a.config.data),
    samples: a.samples,
    done: a.done,
    layers: Object.entries(a.layers).map(([id, l]) => ({
      id,
      channels: Array.from({ length: l.channels }, (_, c) => ({
        channel: c,
        classes: l.relclasses[c].map((e) => ({ class: name(e.class), value: e.value })),
        top: l.relmax.values[c][0] ?? null,
        references: (l.references?.[c] ?? []).map((r) => ({
          sample: r.sample,
          label: name(r.label),
          image: toUri(path.join(folder, r.image)),
          heatmap: toUri(path.join(folder, r.heatmap)),
        })),
      })),
    })),
  };
}
