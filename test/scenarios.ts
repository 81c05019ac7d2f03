/**
 * The extension's user flows, one list for its two drivers: test/e2e/ runs them through the UI of the packaged
 * .vsix in code-server; test/extension-host/ runs them through commands in VS Code (@vscode/test-electron, where
 * VS Code can be downloaded). Each driver implements every scenario, in this order, and may add checks of its own
 * after one (the UI has more to look at).
 */
import * as path from 'path';

export const SCENARIOS = {
  openModel: 'opens the example model and shows its layer tree',
  attachHooks: 'attaches store hooks to layers',
  run: 'runs an attribution: every hooked layer is recorded and drawn',
  explainChannels: "explains a hooked layer's channel: its heatmap at the input, its share of the layer",
  rerun: 'changed hooks and target apply to the next run',
  export: 'exports a heatmap PNG and a tensor .npy',
  corruptModel: 'a corrupt model gives an error naming it, and the open one keeps working',
  engineRestart: 'a killed engine is restarted with the model and its hooks',
} as const;
export type Scenario = keyof typeof SCENARIOS;

type Step = () => Promise<void>;
export interface Driver {
  steps: Record<Scenario, Step>;
  /** the driver's own checks, each run after the scenario it is listed under */
  after?: Partial<Record<Scenario, [title: string, step: Step][]>>;
}

/** Registers every scenario, then the driver's checks after it, with the test runner's `test`. */
export function registerScenarios(test: (title: string, fn: Step) => unknown, driver: Driver): void {
  for (const [scenario, title] of Object.entries(SCENARIOS) as [Scenario, string][]) {
    test(title, driver.steps[scenario]);
    for (const [extra, step] of driver.after?.[scenario] ?? []) test(extra, step);
  }
}

/** The workspace both drivers open: the example model and its classes, two input images, and a corrupt model. */
export function scenarioWorkspace(root: string): Record<string, string | Buffer> {
  const example = (f: string) => path.join(root, 'examples/shapes', f);
  return {
    'model.onnx': example('model.onnx'),
    'classes.json': example('classes.json'),
    'triangle.png': example('triangle.png'),
    'cross.png': example('cross.png'),
    'broken.onnx': Buffer.from('this is not an ONNX model\n'),
  };
}
