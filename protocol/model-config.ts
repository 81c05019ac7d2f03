/**
 * A model's own settings, in a file beside it (`model.onnx` → `model.lens.json`): its preprocessing (a preset
 * such as ImageNet's, or mean/std/size), its class names, and the target and composite a run starts with. They
 * take precedence over the workspace's settings for that model. Read here for the extension and its tests alike.
 */
import { parse, type ParseError, printParseErrorCode } from 'jsonc-parser';
import { z } from 'zod';
import { Preprocess } from './engine';
import { RUN_COMPOSITES } from './names';

/** Preprocessing presets: ImageNet's mean and std (torchvision's), or none (values in [0, 1]). */
export const PREPROCESS_PRESETS = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  none: {},
} as const satisfies Record<string, Preprocess>;

export const ModelConfig = z.strictObject({
  preprocess: Preprocess.extend({
    preset: z
      .enum(['imagenet', 'none'])
      .optional()
      .describe(
        "imagenet: torchvision's ImageNet mean and std; none: values in [0, 1]. size, mean and std override it",
      ),
  })
    .strict()
    .optional()
    .describe('How an image file becomes the model input: resized to size [height, width], then (x − mean) / std'),
  /** class names in output order, or ImageNet's (torchvision's); over a classes.json and the model file's own */
  classes: z
    .union([z.array(z.string()), z.literal('imagenet')])
    .optional()
    .describe('The class names in output order, or "imagenet" for ImageNet\'s 1000 (torchvision\'s names)'),
  /** the class a run explains until another is chosen */
  target: z.int().nonnegative().optional().describe('The class a run explains until another is chosen'),
  composite: z.enum(RUN_COMPOSITES).optional().describe('The composite a run uses until another is chosen'),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

/** The JSON Schema of `*.lens.json` (draft 7, which VS Code's JSON language service reads). */
export function modelConfigJsonSchema(): object {
  return {
    ...z.toJSONSchema(ModelConfig as z.ZodType, { target: 'draft-7', io: 'input' }),
    $id: 'https://relevance-lens.dev/schemas/model-config.schema.json',
    title: 'Relevance Lens model config',
  };
}

/** `model.onnx` → `model.lens.json`, `model.json` → `model.lens.json`. */
export function modelConfigFileName(model: string): string {
  return model.replace(/\.(onnx|json)$/i, '') + '.lens.json';
}

/** The preprocessing a config gives: its preset, with its own size, mean and std over it. */
export function configPreprocess(config: ModelConfig): Preprocess | undefined {
  const p = config.preprocess;
  if (!p) return undefined;
  const { preset, ...own } = p;
  return { ...(preset ? PREPROCESS_PRESETS[preset] : {}), ...own };
}

/** A config file's content, or what is wrong with it (its first problem, with line and column). */
export function parseModelConfig(text: string): { config: ModelConfig } | { problem: string } {
  const errors: ParseError[] = [];
  const json: unknown = parse(text, errors, { allowTrailingComma: true });
  if (errors.length) {
    const e = errors[0];
    const line = text.slice(0, e.offset).split('\n').length;
    return { problem: `line ${line}: ${printParseErrorCode(e.error)}` };
  }
  const r = ModelConfig.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { problem: `${issue.path.join('.') || 'the file'}: ${issue.message}` };
  }
  return { config: r.data };
}
