/** Small ONNX models written for tests, beside the golden ones exported by PyTorch. */
import type { OnnxModelSpec } from '../engine/src/io/onnx-writer';

/**
 * A 1×1×1024² input through a 1×1 convolution to `channels` channels, pooled to the output: at 600 channels a
 * 2.4 GB intermediate from a few kilobytes of file.
 */
export function wideConvModel(channels: number): OnnxModelSpec {
  return {
    input: { name: 'input', dims: [1, 1, 1024, 1024] },
    output: { name: 'output', dims: [1, channels] },
    initializers: [
      { name: 'conv.weight', dims: [channels, 1, 1, 1], values: new Float32Array(channels).fill(0.5) },
      { name: 'conv.bias', dims: [channels], values: new Float32Array(channels) },
    ],
    nodes: [
      { name: '/conv/Conv', opType: 'Conv', inputs: ['input', 'conv.weight', 'conv.bias'], outputs: ['c'] },
      { name: '/pool/GlobalAveragePool', opType: 'GlobalAveragePool', inputs: ['c'], outputs: ['p'] },
      { name: '/flatten/Flatten', opType: 'Flatten', inputs: ['p'], outputs: ['output'], attributes: { axis: 1 } },
    ],
  };
}

/** `layers` Linear layers of width × width in a chain, PyTorch-style (MatMul on the transposed weight): big weights. */
export function denseChainModel(layers: number, width: number): OnnxModelSpec {
  const nodes: OnnxModelSpec['nodes'] = [];
  const initializers: OnnxModelSpec['initializers'] = [];
  for (let k = 0; k < layers; k++) {
    const weight = `fc${k}.weight`;
    initializers.push({ name: weight, dims: [width, width], values: new Float32Array(width * width).fill(1 / width) });
    nodes.push({
      name: `/fc${k}/Gemm`,
      opType: 'Gemm',
      inputs: [k ? `h${k - 1}` : 'input', weight],
      outputs: [k === layers - 1 ? 'output' : `h${k}`],
      attributes: { transB: 1 },
    });
  }
  return {
    input: { name: 'input', dims: [1, width] },
    output: { name: 'output', dims: [1, width] },
    nodes,
    initializers,
  };
}
