import type { Model } from '../graph/model';
import { type Composite, ruleAssignment, ruleLabel, type ResidualMode } from './composites';

/** A layer's rule under a composite, for people: `Gamma (gamma=0.5)`, and whether a composite file set it. */
export interface LayerRule {
  rule: string;
  /** set by a composite file's entry (not the base composite's maps) */
  set: boolean;
}

/**
 * Each node's rule under the composite, by layer id, on the canonized graph (where batch-norms joined their layers);
 * nodes inside an activation module that Pass spans get no relevance of their own, and say so.
 */
export function layerRules(
  model: Model,
  composite: Composite | undefined,
  residual: ResidualMode,
  /** told of name-map patterns that match no layer; without it such a pattern is an error */
  onUnmatched?: (pattern: string, entry: number, index: number) => void,
): Map<string, LayerRule> {
  const graph = composite ? model.canonical() : model.graph;
  const assigned = composite ? ruleAssignment(composite, graph, residual, onUnmatched) : new Map();
  const passed = graph.nodes
    .filter((n) => n.passFrom && assigned.get(n.id)?.rule.kind === 'elementwise')
    .map((n) => n.id.slice(0, n.id.lastIndexOf('.') + 1));
  const out = new Map<string, LayerRule>();
  for (const node of graph.nodes) {
    const a = assigned.get(node.id);
    const set = a?.rule.fromFile === true;
    if (!a && passed.some((prefix) => node.id.startsWith(prefix)))
      out.set(node.id, { rule: '— (inside the module Pass spans)', set });
    else
      out.set(node.id, {
        rule: `${ruleLabel(a?.rule)}${a && a.rule.kind === 'elementwise' && node.passFrom ? ' (whole module)' : ''}`,
        set,
      });
  }
  return out;
}
