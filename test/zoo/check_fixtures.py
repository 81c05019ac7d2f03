#!/usr/bin/env python3
"""Checks a model-zoo fixture directory written by make_fixtures.py and prints one line per case.

    /usr/bin/python3 test/zoo/check_fixtures.py OUT_DIR [--ops] [--json FILE]

Per case: every file the manifest names exists with the recorded shape, the ONNX file passes onnx.checker (no
onnxruntime needed or imported), every Sum module of the canonizer maps to one ONNX Add of two activations and no such
Add is left over, and the canonized model computes the plain model's output (up to Zennit's merged-batch-norm eps).
Exit status 1 on any failed check.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx


def check_case(path):
    problems = []
    with open(os.path.join(path, 'manifest.json')) as f:
        manifest = json.load(f)

    def need(rel, shape=None, dtype=None):
        full = os.path.join(path, rel)
        if not os.path.isfile(full):
            problems.append(f'missing {rel}')
            return None
        array = np.load(full)
        if shape is not None and list(array.shape) != list(shape):
            problems.append(f'{rel}: shape {list(array.shape)} != {list(shape)}')
        if dtype is not None and array.dtype != dtype:
            problems.append(f'{rel}: dtype {array.dtype} != {dtype}')
        if not np.isfinite(array).all():
            problems.append(f'{rel}: not finite')
        return array

    model = onnx.load(os.path.join(path, 'model.onnx'))
    onnx.checker.check_model(model)
    ops = sorted({node.op_type for node in model.graph.node})
    params = int(sum(int(np.prod(init.dims)) for init in model.graph.initializer))
    if ops != manifest['onnx']['ops']:
        problems.append('op set differs from the manifest')
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if manifest['dynamic_batch'] != isinstance(dims[0], str):
        problems.append(f'input dims {dims} vs dynamic_batch={manifest["dynamic_batch"]}')
    if model.opset_import[0].version != manifest['opset']:
        problems.append(f'opset {model.opset_import[0].version} != {manifest["opset"]}')

    shape = manifest['input_shape']
    need('input.npy', shape, np.float32)
    batch, classes = shape[0], manifest['num_classes']
    if len(manifest['targets']) != batch:
        problems.append('targets per batch row')
    need('gradient/output.npy', [batch, classes], np.float64)
    need('gradient/relevance.npy', shape, np.float64)

    zennit = manifest['zennit']
    if zennit['ok']:
        need('epsilon_plus_flat/output.npy', [batch, classes], np.float64)
        need('epsilon_plus_flat/relevance.npy', shape, np.float64)
        for name, entry in zennit.get('layers', {}).items():
            need(os.path.join('epsilon_plus_flat', entry['file']), entry['shape'], np.float64)
        if manifest['unmatched_activation_adds']:
            problems.append(f'activation Adds without a Sum: {manifest["unmatched_activation_adds"]}')
        if len(manifest['sum_onnx_nodes']) != manifest['residual_adds']:
            problems.append('Sum modules without an ONNX Add')
        if manifest['residual_adds'] != len(manifest['onnx']['activation_adds']):
            problems.append('residual_adds != Adds of two activations in the ONNX graph')
        effect = zennit.get('bn_identity_eps_effect') or {}
        # the canonized output may differ from the plain one only by Zennit's merged batch-norms (x / sqrt(1 + eps))
        if zennit['canonized_output_error'] > max(1e-12, 10 * effect.get('output', 0.0)):
            problems.append(f'canonized output differs: {zennit["canonized_output_error"]:.2e}')
    elif 'error' not in zennit:
        problems.append('zennit not ok and no error recorded')
    elif zennit.get('canonizers_alone', {}).get('ok'):
        alone = zennit['canonizers_alone']
        if alone['unmatched_activation_adds'] or len(alone['sum_onnx_nodes']) != alone['residual_adds']:
            problems.append('canonizers alone: Sum modules and ONNX activation Adds do not match')
        if alone['output_error'] > 1e-12:
            problems.append(f'canonizers alone change the output: {alone["output_error"]:.2e}')
    return manifest, ops, params, problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('out_dir')
    parser.add_argument('--ops', action='store_true', help='print the ONNX op set of every case')
    parser.add_argument('--json', help='write the summary rows to this file')
    args = parser.parse_args()

    cases = sorted(d for d in os.listdir(args.out_dir)
                   if os.path.isfile(os.path.join(args.out_dir, d, 'manifest.json')))
    rows, failed = [], 0
    total_bytes, total_seconds = 0, 0.0
    print(f'{"case":26s} {"onnx MB":>7s} {"dir MB":>6s} {"params":>8s} {"sums":>4s} {"zennit":>6s} {"f32 err":>8s} '
          f'{"eps eff":>8s} {"gen s":>6s}  problems')
    for case in cases:
        path = os.path.join(args.out_dir, case)
        manifest, ops, params, problems = check_case(path)
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
        total_bytes += size
        total_seconds += manifest['generation_seconds']
        zennit = manifest['zennit']
        effect = (zennit.get('bn_identity_eps_effect') or {}).get('relevance')
        row = {
            'case': case, 'ops': ops, 'params': params, 'onnx_bytes': manifest['onnx']['bytes'], 'dir_bytes': size,
            'zennit_ok': zennit['ok'], 'zennit_error': zennit.get('error'), 'f32_error': zennit.get('f32_error'),
            'residual_adds': manifest['residual_adds'], 'generation_seconds': manifest['generation_seconds'],
            'zennit_seconds_f32': manifest.get('zennit_seconds_f32'), 'bn_identity_eps_effect': effect,
            'canonizer': manifest['canonizer'], 'problems': problems,
        }
        rows.append(row)
        failed += bool(problems)
        f32 = f'{row["f32_error"]:.1e}' if row['f32_error'] is not None else '-'
        eff = f'{effect:.1e}' if effect is not None else '-'
        alone = zennit.get('canonizers_alone', {})
        if row['residual_adds'] is None and alone.get('ok'):
            row['residual_adds'] = alone['residual_adds']
        sums = '-' if row['residual_adds'] is None else str(row['residual_adds'])
        print(f'{case:26s} {row["onnx_bytes"] / 1e6:7.2f} {size / 1e6:6.2f} {params:8d} {sums:>4s} '
              f'{"ok" if zennit["ok"] else "FAIL":>6s} {f32:>8s} {eff:>8s} {row["generation_seconds"]:6.1f}  '
              f'{"; ".join(problems) or ("" if zennit["ok"] else zennit["error"])}')
        if args.ops:
            print(f'    ops: {" ".join(ops)}')
    print(f'{len(cases)} cases, {total_bytes / 1e6:.1f} MB, generation {total_seconds:.1f}s (sum of cases); '
          f'{failed} with problems')
    if 'onnxruntime' in sys.modules:
        print('onnxruntime was imported', file=sys.stderr)
        failed += 1
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
