/**
 * torchvision's VGG16 and ResNet50 as ONNX, as PyTorch's exporter writes them in eval mode (node names carry the
 * module paths; batch-norm folded into the convolutions; dropout gone), with seeded random He-initialised weights:
 * the same layer shapes and operations as the real models, without a download.
 */
import type { OnnxModelSpec, OnnxNodeSpec, OnnxTensor } from '../engine/src/io/onnx-writer';
import { seededRandom } from '../engine/src/lrp/random';

class Builder {
  readonly nodes: OnnxNodeSpec[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly normal: () => number;

  constructor(seed: number) {
    const uniform = seededRandom(seed);
    // Box–Muller
    this.normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  }

  private weights(name: string, dims: number[], fanIn: number): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const std = Math.sqrt(2 / fanIn);
    for (let i = 0; i < n; i++) values[i] = this.normal() * std;
    this.initializers.push({ name, dims, values });
    return name;
  }

  private bias(name: string, n: number): string {
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = 0.01 * this.normal();
    this.initializers.push({ name, dims: [n], values });
    return name;
  }

  /** `path` is the module path (`features.0`, `layer1.0.conv1`); the node is named as the exporter names it. */
  private node(path: string, op: string, inputs: string[], attributes?: OnnxNodeSpec['attributes']): string {
    const parts = path.split('.');
    const scopes = parts.map((_, i) => parts.slice(0, i + 1).join('.'));
    const name = `/${scopes.join('/')}/${op}`;
    const out = `${name}_output_0`;
    this.nodes.push({ name, opType: op, inputs, outputs: [out], attributes });
    return out;
  }

  conv(path: string, x: string, cin: number, cout: number, k: number, stride = 1, pad = Math.floor(k / 2)): string {
    const w = this.weights(`${path}.weight`, [cout, cin, k, k], cin * k * k);
    const b = this.bias(`${path}.bias`, cout);
    return this.node(path, 'Conv', [x, w, b], {
      kernel_shape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      dilations: [1, 1],
      group: 1,
    });
  }

  relu(path: string, x: string): string {
    return this.node(path, 'Relu', [x]);
  }

  maxPool(path: string, x: string, k: number, stride: number, pad = 0): string {
    return this.node(path, 'MaxPool', [x], {
      kernel_shape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
    });
  }

  gemm(path: string, x: string, fin: number, fout: number): string {
    const w = this.weights(`${path}.weight`, [fout, fin], fin);
    const b = this.bias(`${path}.bias`, fout);
    return this.node(path, 'Gemm', [x, w, b], { alpha: 1.0, beta: 1.0, transB: 1 });
  }

  /** a residual add inside block `path` (the exporter's `/layer1/layer1.0/Add`) */
  add(path: string, a: string, b: string): string {
    return this.node(path, 'Add', [a, b]);
  }

  flatten(x: string): string {
    const out = '/Flatten_output_0';
    this.nodes.push({ name: '/Flatten', opType: 'Flatten', inputs: [x], outputs: [out], attributes: { axis: 1 } });
    return out;
  }

  globalAvgPool(path: string, x: string): string {
    return this.node(path, 'GlobalAveragePool', [x]);
  }

  /** The model; the last node's output is the graph output. */
  spec(outDims: number[], inDims: number[]): OnnxModelSpec {
    this.nodes[this.nodes.length - 1].outputs = ['output'];
    return {
      input: { name: 'input', dims: inDims },
      output: { name: 'output', dims: outDims },
      nodes: this.nodes,
      initializers: this.initializers,
      opset: 13,
    };
  }
}

/** torchvision.models.vgg16 (no batch-norm), 1×3×224×224. Its avgpool is the identity at 224 and is left out. */
export function vgg16(seed = 1): OnnxModelSpec {
  const b = new Builder(seed);
  const cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'] as const;
  let x = 'input';
  let cin = 3;
  let i = 0;
  for (const c of cfg) {
    if (c === 'M') x = b.maxPool(`features.${i++}`, x, 2, 2);
    else {
      x = b.conv(`features.${i++}`, x, cin, c, 3);
      x = b.relu(`features.${i++}`, x);
      cin = c;
    }
  }
  x = b.flatten(x);
  x = b.relu('classifier.1', b.gemm('classifier.0', x, 512 * 7 * 7, 4096));
  x = b.relu('classifier.4', b.gemm('classifier.3', x, 4096, 4096));
  b.gemm('classifier.6', x, 4096, 1000);
  return b.spec([1, 1000], [1, 3, 224, 224]);
}

/** torchvision.models.resnet50 (batch-norm folded, as exported), 1×3×224×224. */
export function resnet50(seed = 2): OnnxModelSpec {
  const b = new Builder(seed);
  let x = b.maxPool('maxpool', b.relu('relu', b.conv('conv1', 'input', 3, 64, 7, 2, 3)), 3, 2, 1);
  let cin = 64;
  const stages: [number, number, number][] = [
    [64, 3, 1],
    [128, 4, 2],
    [256, 6, 2],
    [512, 3, 2],
  ];
  stages.forEach(([width, blocks, stride], s) => {
    for (let k = 0; k < blocks; k++) {
      const p = `layer${s + 1}.${k}`;
      const st = k === 0 ? stride : 1;
      const cout = width * 4;
      let y = b.relu(`${p}.relu`, b.conv(`${p}.conv1`, x, cin, width, 1, 1, 0));
      y = b.relu(`${p}.relu_1`, b.conv(`${p}.conv2`, y, width, width, 3, st, 1));
      y = b.conv(`${p}.conv3`, y, width, cout, 1, 1, 0);
      const identity = k === 0 ? b.conv(`${p}.downsample.0`, x, cin, cout, 1, st, 0) : x;
      x = b.relu(`${p}.relu_2`, b.add(p, y, identity));
      cin = cout;
    }
  });
  b.gemm('fc', b.flatten(b.globalAvgPool('avgpool', x)), 2048, 1000);
  return b.spec([1, 1000], [1, 3, 224, 224]);
}
