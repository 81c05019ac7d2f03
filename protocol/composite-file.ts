/**
 * The composite file: rules chosen per layer type, per layer and for the first layer over a built-in composite, as
 * Zennit composes them (a MixedComposite of a NameMapComposite and a SpecialFirstLayerMapComposite). The extension
 * writes it beside the model, users and other tools write it by hand; the engine, the CLI and the editor's
 * diagnostics all read it with `parseCompositeFile`, so each says the same thing about a malformed file. The JSON
 * Schema the editor validates with (schemas/composite.schema.json) is generated from these schemas.
 */
import * as jsonc from 'jsonc-parser';
import { z } from 'zod';
import {
  LAYER_TYPES,
  type LayerTypeName,
  RULE_NAMES,
  RULE_PARAMS,
  type RuleName,
  type RuleParamName,
  RUN_COMPOSITES,
  type RunComposite,
} from './names';

/** Zennit's Stabilizer: ε added with each value's sign, or (clip) |z| clipped at ε; norm_scale scales ε by rms(z). */
export type StabilizerSpec = number | { epsilon: number; clip?: boolean; norm_scale?: boolean };
const Stabilizer: z.ZodType<StabilizerSpec> = z.union([
  z.number().nonnegative(),
  z
    .object({
      epsilon: z.number().nonnegative(),
      clip: z.boolean().optional().describe('clip |z| at epsilon instead of adding it (keeping the sign)'),
      norm_scale: z.boolean().optional().describe('scale epsilon by the root mean square of z over each sample'),
    })
    .strict(),
]);

/** Each parameter's schema, under Zennit's keyword name. */
const PARAMS = {
  epsilon: Stabilizer.describe('the Epsilon rule’s stabilizer: a number or a Stabilizer {epsilon, clip, norm_scale}'),
  gamma: z.number().nonnegative().describe('weight of the positive contributions (Zennit: 0.25)'),
  alpha: z.number().nonnegative().describe('weight of the positive contributions; alpha − beta = 1 (Zennit: 2)'),
  beta: z.number().nonnegative().describe('weight of the negative contributions (Zennit: 1)'),
  low: z.number().describe('the lowest input value (ZBox)'),
  high: z.number().describe('the highest input value (ZBox)'),
  stabilizer: Stabilizer.describe('a number or a Stabilizer {epsilon, clip, norm_scale} (Zennit: 1e-6)'),
  zero_params: z.array(z.string().min(1)).describe('parameters the rule sets to zero, e.g. ["bias"]'),
  beta_smooth: z.number().positive().describe('the softplus β of ReLUBetaSmooth (Zennit: 10)'),
} satisfies Record<RuleParamName, z.ZodType>;

/** A rule with its parameters, as the file spells it: `{"rule": "gamma", "gamma": 0.5}`. */
export type RuleSpec = { rule: RuleName } & {
  epsilon?: StabilizerSpec;
  stabilizer?: StabilizerSpec;
  gamma?: number;
  alpha?: number;
  beta?: number;
  low?: number;
  high?: number;
  zero_params?: string[];
  beta_smooth?: number;
};

/** One object schema per rule (a discriminated union on `rule`, so an editor completes each rule's parameters). */
function ruleVariants(extra: z.ZodRawShape) {
  return RULE_NAMES.map((rule) => {
    const shape: Record<string, z.ZodType> = { rule: z.literal(rule) };
    for (const p of RULE_PARAMS[rule] as readonly RuleParamName[]) {
      const schema: z.ZodType = PARAMS[p];
      shape[p] = rule === 'zbox' && (p === 'low' || p === 'high') ? schema : schema.optional();
    }
    return z
      .object({ ...shape, ...extra })
      .strict()
      .superRefine((v, ctx) => {
        const r = v as RuleSpec;
        if (r.rule === 'alpha_beta' && (r.alpha ?? 2) - (r.beta ?? 1) !== 1)
          ctx.addIssue({ code: 'custom', path: ['alpha'], message: 'alpha − beta must equal 1' });
        if (r.rule === 'zbox' && r.low !== undefined && r.high !== undefined && !(r.low < r.high))
          ctx.addIssue({ code: 'custom', path: ['low'], message: 'low must be below high' });
      });
  });
}

function ruleUnion(extra: z.ZodRawShape) {
  const [first, ...rest] = ruleVariants(extra);
  return z.discriminatedUnion('rule', [first, ...rest]);
}

export type LayerMapEntry = RuleSpec & { type: LayerTypeName };
export type NameMapEntry = RuleSpec & { layers: string[] };
export type FirstLayerEntry = RuleSpec & { type?: LayerTypeName };

const layerType = z.enum(LAYER_TYPES);
const LayerMapEntry = ruleUnion({
  type: layerType.describe('the layer type this rule is for'),
}) as unknown as z.ZodType<LayerMapEntry>;
const NameMapEntry = ruleUnion({
  layers: z
    .array(z.string().min(1))
    .min(1)
    .describe('layer ids (PyTorch module names); * matches any characters, e.g. "features.*"'),
}) as unknown as z.ZodType<NameMapEntry>;
const FirstLayerEntry = ruleUnion({
  type: layerType.optional().describe('the type of the first layer this rule is for (default Linear)'),
}) as unknown as z.ZodType<FirstLayerEntry>;

/** The base composite with its parameters (Zennit's keyword names), e.g. epsilon_gamma_box's input bounds. */
export interface BaseSpec {
  name: RunComposite;
  epsilon?: StabilizerSpec;
  stabilizer?: StabilizerSpec;
  gamma?: number;
  low?: number;
  high?: number;
  zero_params?: string[];
  beta_smooth?: number;
}
const Base: z.ZodType<RunComposite | BaseSpec> = z.union([
  z.enum(RUN_COMPOSITES),
  z
    .object({
      name: z.enum(RUN_COMPOSITES),
      epsilon: PARAMS.epsilon.optional(),
      stabilizer: PARAMS.stabilizer.optional(),
      gamma: PARAMS.gamma.optional(),
      low: PARAMS.low.optional(),
      high: PARAMS.high.optional(),
      zero_params: PARAMS.zero_params.optional(),
      beta_smooth: PARAMS.beta_smooth.optional(),
    })
    .strict(),
]);

export interface CompositeFile {
  $schema?: string;
  base?: RunComposite | BaseSpec;
  layerMap?: LayerMapEntry[];
  nameMap?: NameMapEntry[];
  firstLayer?: FirstLayerEntry;
}
export const CompositeFile: z.ZodType<CompositeFile> = z
  .object({
    $schema: z.string().optional(),
    base: Base.optional().describe(
      'a built-in composite (its layer map, first-layer map and canonizers), or {"name": …, parameters}; default: gradient (none)',
    ),
    layerMap: z
      .array(LayerMapEntry)
      .optional()
      .describe('rules by layer type; they win over the base’s, the first match wins'),
    nameMap: z
      .array(NameMapEntry)
      .optional()
      .describe('rules for named layers; they win over the layer map and the first-layer rule'),
    firstLayer: FirstLayerEntry.optional().describe('replaces the base’s rule for the first layer'),
  })
  .strict()
  .describe('A Relevance Lens composite: Zennit rules per layer type, per layer and for the first layer');

/** A problem in a composite file, at a 1-based line and column. */
export interface FileProblem {
  message: string;
  line: number;
  column: number;
  /** where it is: 0-based offset and length in the text */
  offset: number;
  length: number;
}

export type ParsedCompositeFile = { ok: true; file: CompositeFile } | { ok: false; problems: FileProblem[] };

/** The 1-based line and column of `offset` in `text`. */
export function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function pathText(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

/** The node at `path`, or its nearest ancestor present in the text. */
function nodeAt(tree: jsonc.Node, path: (string | number)[]): jsonc.Node {
  for (let n = path.length; n >= 0; n--) {
    const node = jsonc.findNodeAtLocation(tree, path.slice(0, n));
    if (node) return node;
  }
  return tree;
}

const JSON_ERRORS: Partial<Record<jsonc.ParseErrorCode, string>> = {
  [jsonc.ParseErrorCode.InvalidCommentToken]: 'comments are not JSON',
  [jsonc.ParseErrorCode.PropertyNameExpected]: 'a property name is expected (a trailing comma?)',
  [jsonc.ParseErrorCode.ValueExpected]: 'a value is expected (a trailing comma?)',
  [jsonc.ParseErrorCode.CommaExpected]: 'a comma is expected',
  [jsonc.ParseErrorCode.ColonExpected]: 'a colon is expected',
  [jsonc.ParseErrorCode.CloseBraceExpected]: 'a closing } is expected',
  [jsonc.ParseErrorCode.CloseBracketExpected]: 'a closing ] is expected',
  [jsonc.ParseErrorCode.EndOfFileExpected]: 'nothing may follow the object',
};

/** Reads a composite file's text: strict JSON (no comments, no trailing commas), then the schema. */
export function parseCompositeFile(text: string): ParsedCompositeFile {
  const errors: jsonc.ParseError[] = [];
  const tree = jsonc.parseTree(text, errors, { disallowComments: true, allowTrailingComma: false });
  if (errors.length || !tree) {
    const problems = errors.map((e) => ({
      message: `not JSON: ${JSON_ERRORS[e.error] ?? jsonc.printParseErrorCode(e.error)}`,
      ...position(text, e.offset),
      offset: e.offset,
      length: e.length,
    }));
    return {
      ok: false,
      problems: problems.length ? problems : [{ message: 'empty file', line: 1, column: 1, offset: 0, length: 0 }],
    };
  }
  const parsed = CompositeFile.safeParse(jsonc.getNodeValue(tree));
  if (parsed.success) return { ok: true, file: parsed.data };
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path as (string | number)[];
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const present = jsonc.findNodeAtLocation(tree, path) !== undefined;
    // an unknown key: point at the key itself; a missing one: at the object that lacks it
    const node = keys.length ? (nodeAt(tree, [...path, keys[0]]).parent ?? nodeAt(tree, path)) : nodeAt(tree, path);
    const value = present ? jsonc.getNodeValue(jsonc.findNodeAtLocation(tree, path)!) : undefined;
    const message = keys.length
      ? `${prefix(path)}unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}${knownKeysHint(value)}`
      : !present
        ? `${prefix(path.slice(0, -1))}missing "${String(path[path.length - 1])}"`
        : `${prefix(path)}${unknownName(path, value) ?? issue.message}`;
    return { message, ...position(text, node.offset), offset: node.offset, length: node.length };
  });
  return { ok: false, problems };
}

const prefix = (path: PropertyKey[]) => (path.length ? `${pathText(path)}: ` : '');

/** A name the file gives that is not one of the known ones: rules, layer types, composites. */
function unknownName(path: (string | number)[], value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const key = path[path.length - 1];
  const [what, names]: [string, readonly string[]] | [undefined, undefined] =
    key === 'rule'
      ? ['rule', RULE_NAMES]
      : key === 'type'
        ? ['layer type', LAYER_TYPES]
        : key === 'base' || (key === 'name' && path[0] === 'base')
          ? ['composite', RUN_COMPOSITES]
          : [undefined, undefined];
  if (!what || names.includes(value)) return undefined;
  return `unknown ${what} "${value}" (choose one of ${names.join(', ')})`;
}

/** For an unknown key in a rule entry: the parameters that rule takes. */
function knownKeysHint(entry: unknown): string {
  const rule = (entry as { rule?: string } | undefined)?.rule;
  if (typeof rule !== 'string' || !Object.hasOwn(RULE_PARAMS, rule)) return '';
  const params = RULE_PARAMS[rule as RuleName];
  return ` (${rule} takes ${params.length ? params.join(', ') : 'no parameters'})`;
}

/** "FILE:LINE:COLUMN: message", as compilers say it (the terminal and the editor link it to the place). */
export function formatProblem(source: string, p: FileProblem): string {
  return `${source}:${p.line}:${p.column}: ${p.message}`;
}

/** The composite file beside a model: `resnet50.onnx` → `resnet50.composite.json` (`model.json` → `model.composite.json`). */
export function compositeFileName(modelFileName: string): string {
  return modelFileName.replace(/\.(onnx|json)$/i, '') + '.composite.json';
}

/** The JSON Schema of the composite file (draft 7, which VS Code's JSON language service reads). */
export function compositeJsonSchema(): object {
  return {
    ...z.toJSONSchema(CompositeFile as z.ZodType, { target: 'draft-7', io: 'input' }),
    $id: 'https://relevance-lens.dev/schemas/composite.schema.json',
    title: 'Relevance Lens composite',
  };
}

/**
 * The file with `rule` on the layers `ids` (none: their entries removed): the ids leave every name-map entry that
 * lists them exactly (an entry left empty goes), and the new entry comes last. Glob entries are left alone.
 */
export function setNameMapRule(file: CompositeFile, ids: readonly string[], rule: RuleSpec | undefined): CompositeFile {
  const drop = new Set(ids);
  const kept = (file.nameMap ?? [])
    .map((e) => ({ ...e, layers: e.layers.filter((l) => !drop.has(l)) }))
    .filter((e) => e.layers.length > 0);
  const nameMap = rule ? [...kept, { layers: [...ids], ...rule }] : kept;
  const out: CompositeFile = { ...file, nameMap };
  if (!nameMap.length) delete out.nameMap;
  return out;
}

/** Where `path` (a JSON path such as ['nameMap', 1, 'layers', 0]) is in the text, for a problem found elsewhere. */
export function locate(text: string, path: (string | number)[], message: string): FileProblem {
  const tree = jsonc.parseTree(text);
  const node = tree ? nodeAt(tree, path) : undefined;
  const offset = node?.offset ?? 0;
  return { message, ...position(text, offset), offset, length: node?.length ?? 0 };
}
