/** Text formatting shared by the webviews and the extension's tree (no DOM here). */
import type { LayerDetails } from '../../protocol/engine';
import type { RunView } from '../../protocol/webview';

/**
 * Compact number for labels: 3 significant digits, exponent for very small or large values; a statistic that is
 * not finite (null on the wire) reads "not finite".
 */
export function fmt(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return 'not finite';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(3);
}

/** The class the viewed batch row was attributed to (one target may stand for every row). */
export function viewedTarget(run: Pick<RunView, 'target' | 'row'>): number {
  return run.target[run.row] ?? run.target[0];
}

/** "3 (cross)": a class, with its name when the model has class names. */
export function classText(c: number, names?: readonly string[]): string {
  return names?.[c] ? `${c} (${names[c]})` : `${c}`;
}

/** Class weights as the output relevance: "3 (cross) rather than 0 (circle)", or "0.5×0 (circle) + 2×3 (cross)". */
export function classWeightsText(w: readonly { class: number; weight: number }[], names?: readonly string[]): string {
  if (w.length === 2 && w[0].weight === 1 && w[1].weight === -1)
    return `${classText(w[0].class, names)} rather than ${classText(w[1].class, names)}`;
  return w.map((c) => `${c.weight}×${classText(c.class, names)}`).join(' + ');
}

/** The viewed row's target class ("3 (cross)"), or the class weights that stood for it. */
export function targetText(run: Pick<RunView, 'target' | 'row' | 'classWeights' | 'classNames'>): string {
  return run.classWeights
    ? classWeightsText(run.classWeights, run.classNames)
    : classText(viewedTarget(run), run.classNames);
}

/** A layer's window geometry as a model viewer lists it: "kernel 3×3 · stride 2×2 · padding 1, 1, 1, 1 · groups 32". */
export function geometryText(d: LayerDetails): string {
  const parts: string[] = [];
  if (d.kernel) parts.push(`kernel ${d.kernel.join('×')}`);
  if (d.stride) parts.push(`stride ${d.stride.join('×')}`);
  if (d.padding) parts.push(`padding ${d.padding.join(', ')}`);
  if (d.dilation && d.dilation.some((v) => v !== 1)) parts.push(`dilation ${d.dilation.join('×')}`);
  if (d.groups && d.groups !== 1) parts.push(`groups ${d.groups}`);
  return parts.join(' · ');
}

/**
 * Free text (layer ids and ops from a model file, class names from classes.json) made inert for Markdown: every
 * character Markdown, HTML or VS Code's theme icons give a meaning is escaped, so no link or image can be injected.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~$&:"'=]/g, '\\$&').replace(/\s+/g, ' ');
}
