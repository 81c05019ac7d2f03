"""Composite-file references (Zennit 0.5.1, float64) for a small CNN with readable module names exported to ONNX: each
case's composite file (base composite, layerMap, nameMap, firstLayer; see zennit_composite) is translated into Zennit
objects exactly as the format specifies, so a fixture proves that the engine's reading of the format equals Zennit's.
Attributors: Gradient, SmoothGrad (the noisy inputs are recorded) and IntegratedGradients; output relevance: one-hot
or logit, of the targets or of class weights.

    PYTHONPATH=zennit-0.5.1/src:zennit-crp python3 make_fixtures.py OUT_DIR [--list]

Writes OUT_DIR/composite_cases/: model.onnx, input.npy (float32, 2x3x16x16), manifest.json and one folder per case
with composite.json, attribution.json, relevance.npy (the input relevance, float64), output.npy (the model output,
float64) and, for smoothgrad, noisy_inputs.npy (float64, [n_iter, 2, 3, 16, 16]: the inputs of Zennit's passes).
"""
import json
import os
import re
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

import zennit.types
from zennit.attribution import Gradient, IntegratedGradients, SmoothGrad
from zennit.composites import COMPOSITES, MixedComposite, NameMapComposite, SpecialFirstLayerMapComposite
from zennit.core import Hook, Stabilizer
from zennit.layer import Sum
from zennit.rules import (AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, ReLUBetaSmooth, ReLUDeconvNet,
                          ReLUGuidedBackprop, WSquare, ZBox, ZPlus)

FOLDER = 'composite_cases'
CLASSES = 5
TARGET = [1, 3]
MODEL_SEED = 11
INPUT_SEED = 3
SMOOTHGRAD_SEED = 5

# the format's layer types → Zennit's (Linear is Zennit's: convolutions and torch.nn.Linear; Dense is torch.nn.Linear)
LAYER_TYPES = {
    'Convolution': zennit.types.Convolution,
    'Linear': zennit.types.Linear,
    'Dense': nn.Linear,
    'BatchNorm': zennit.types.BatchNorm,
    'Activation': zennit.types.Activation,
    'ReLU': nn.ReLU,
    'AvgPool': zennit.types.AvgPool,
    'MaxPool': zennit.types.MaxPool,
    'Sum': Sum,
}

# the format's rules → Zennit's classes and their parameters (Zennit's names; omitted → Zennit's default)
RULES = {
    'epsilon': (Epsilon, ('epsilon', 'zero_params')),
    'zplus': (ZPlus, ('stabilizer', 'zero_params')),
    'alpha_beta': (AlphaBeta, ('alpha', 'beta', 'stabilizer', 'zero_params')),
    'gamma': (Gamma, ('gamma', 'stabilizer', 'zero_params')),
    'zbox': (ZBox, ('low', 'high', 'stabilizer', 'zero_params')),
    'flat': (Flat, ('stabilizer', 'zero_params')),
    'wsquare': (WSquare, ('stabilizer', 'zero_params')),
    'norm': (Norm, ('stabilizer',)),
    'pass': (Pass, ()),
    'relu_deconvnet': (ReLUDeconvNet, ()),
    'relu_guided_backprop': (ReLUGuidedBackprop, ()),
    'relu_beta_smooth': (ReLUBetaSmooth, ('beta_smooth',)),
    'gradient': (Hook, ()),  # Zennit's base hook: registers, changes nothing
}
STABILIZER_KEYS = ('epsilon', 'clip', 'norm_scale')


def stabilizer(value):
    '''A stabilizer value: a number (Zennit makes Stabilizer(epsilon=value)) or {"epsilon", "clip", "norm_scale"}.'''
    if isinstance(value, dict):
        unknown = set(value) - set(STABILIZER_KEYS)
        if unknown:
            raise ValueError(f'unknown stabilizer keys {sorted(unknown)}')
        return Stabilizer(**{key: (float(v) if key == 'epsilon' else bool(v)) for key, v in value.items()})
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'invalid stabilizer {value!r}')
    return float(value)


def bound(value):
    '''ZBox's low/high: Zennit expands a Python float with torch.tensor(value), i.e. in torch's default dtype
    (float32), and only then casts to the input's dtype; a float64 0-dim tensor keeps the file's value exactly.'''
    return torch.tensor(float(value), dtype=torch.float64)


def make_rule(entry, skip):
    '''A Zennit hook from a layerMap / nameMap / firstLayer entry (keys in `skip` are the entry's own, not params).'''
    name = entry['rule']
    if name not in RULES:
        raise ValueError(f'unknown rule {name!r}')
    cls, accepted = RULES[name]
    params = {key: value for key, value in entry.items() if key not in skip and key != 'rule'}
    unknown = set(params) - set(accepted)
    if unknown:
        raise ValueError(f'rule {name}: unknown parameters {sorted(unknown)}')
    return cls(**zennit_params(params, stabilizers=('stabilizer', 'epsilon') if name == 'epsilon' else ('stabilizer',)))


def zennit_params(params, stabilizers):
    '''The file's parameter values as Zennit takes them: Stabilizer objects for the keys in `stabilizers`, exact
    bounds, lists of names, floats.'''
    kwargs = {}
    for key, value in params.items():
        if key in stabilizers:
            value = stabilizer(value)
        elif key in ('low', 'high'):
            value = bound(value)
        elif key == 'zero_params':
            value = list(value)
        else:
            value = float(value)
        kwargs[key] = value
    return kwargs


def layer_type(name):
    if name not in LAYER_TYPES:
        raise ValueError(f'unknown layer type {name!r}')
    return LAYER_TYPES[name]


def expand_layers(patterns, model):
    '''nameMap "layers": module names of model.named_modules(); "*" matches any characters (dots included) and is
    expanded against the leaf modules (those without children). A pattern that matches nothing is an error.'''
    modules = dict(model.named_modules())
    leaves = [name for name, module in modules.items() if name and not any(True for _ in module.children())]
    names = []
    for pattern in patterns:
        if '*' in pattern:
            regex = re.compile('.*'.join(re.escape(part) for part in pattern.split('*')), re.DOTALL)
            matched = [name for name in leaves if regex.fullmatch(name)]
        else:
            matched = [pattern] if pattern in modules else []
        if not matched:
            raise ValueError(f'nameMap: {pattern!r} matches no module')
        names += [name for name in matched if name not in names]
    return tuple(names)


def zennit_composite(spec, model):
    '''The composite file → Zennit: layer_map = [layerMap entries, in file order] + base.layer_map (first match wins);
    first_map = [firstLayer] if given, else base.first_map (or []); SpecialFirstLayerMapComposite(layer_map,
    first_map), and with a nameMap MixedComposite([NameMapComposite(name_map), that]) (the name map wins; Zennit still
    evaluates the first-layer map for every module, so a named first layer consumes the first-layer rule).
    Returns the composite and, for the manifest, {hook id: description} of every rule the file itself gives.'''
    unknown = set(spec) - {'base', 'layerMap', 'nameMap', 'firstLayer'}
    if unknown:
        raise ValueError(f'unknown composite keys {sorted(unknown)}')
    described = {}

    def rule(entry, skip):
        hook = make_rule(entry, skip)
        described[id(hook)] = {key: value for key, value in entry.items() if key not in skip}
        return hook

    base = spec.get('base', 'gradient')
    if isinstance(base, str):
        base = {'name': base}
    base_name = base['name']
    if base_name == 'gradient':
        if len(base) > 1:
            raise ValueError('base gradient takes no parameters')
        base_layer_map, base_first_map = [], []
    else:
        params = zennit_params({k: v for k, v in base.items() if k != 'name'}, stabilizers=('epsilon', 'stabilizer'))
        base_composite = COMPOSITES[base_name](**params)
        base_layer_map = base_composite.layer_map
        base_first_map = getattr(base_composite, 'first_map', [])

    layer_map = [(layer_type(entry['type']), rule(entry, ('type',))) for entry in spec.get('layerMap', [])]
    layer_map += base_layer_map
    if 'firstLayer' in spec:
        first = spec['firstLayer']
        first_map = [(layer_type(first.get('type', 'Linear')), rule(first, ('type',)))]
    else:
        first_map = list(base_first_map)
    composite = SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=first_map)
    if spec.get('nameMap'):
        name_map = [(expand_layers(entry['layers'], model), rule(entry, ('layers',))) for entry in spec['nameMap']]
        composite = MixedComposite([NameMapComposite(name_map=name_map), composite])
    return composite, described


def assignment(composite, described, model):
    '''Which rule Zennit's mapping gives each module (replays Composite.register's walk with a fresh context).'''
    ctx = {}
    result = OrderedDict()
    for name, module in model.named_modules():
        hook = composite.module_map(ctx, name, module)
        if hook is not None:
            desc = described.get(id(hook))
            result[name] = type(hook).__name__ + ('' if desc is None else ' ' + json.dumps(desc, sort_keys=True))
    return result


# cases: composite file, attribution (attributor, n_iter, noise_level, output_relevance, class_weights)
NAME_MAP_THREE = {
    'base': 'epsilon_plus_flat',
    'nameMap': [
        {'layers': ['block1.conv_b'], 'rule': 'gamma', 'gamma': 0.5},
        {'layers': ['block2.conv_a'], 'rule': 'alpha_beta', 'alpha': 2, 'beta': 1},
        {'layers': ['classifier.fc1'], 'rule': 'epsilon', 'epsilon': 0.25},
    ],
}
ZBOX = {'rule': 'zbox', 'low': -3, 'high': 3}


def attribution(attributor='gradient', n_iter=None, noise_level=None, output_relevance='one_hot', class_weights=None):
    return {'attributor': attributor, 'n_iter': n_iter, 'noise_level': noise_level, 'target': TARGET,
            'output_relevance': output_relevance, 'class_weights': class_weights}


CASES = OrderedDict(
    name_map_three=(NAME_MAP_THREE, attribution()),
    name_map_glob=({'base': 'epsilon_plus', 'nameMap': [{'layers': ['block*.conv_a'], 'rule': 'gamma', 'gamma': 1.0}]},
                   attribution()),
    layer_map_by_type=({'base': 'gradient', 'layerMap': [
        {'type': 'Convolution', 'rule': 'alpha_beta', 'alpha': 1, 'beta': 0},
        {'type': 'Linear', 'rule': 'epsilon', 'epsilon': 0.01},
        {'type': 'Activation', 'rule': 'pass'},
        {'type': 'AvgPool', 'rule': 'norm'},
    ]}, attribution()),
    layer_map_over_base=({'base': {'name': 'epsilon_gamma_box', 'low': -3, 'high': 3},
                          'layerMap': [{'type': 'Dense', 'rule': 'zplus'}]}, attribution()),
    first_layer=({'base': 'epsilon_plus_flat', 'firstLayer': ZBOX}, attribution()),
    first_layer_named=({'base': 'epsilon_plus_flat', 'firstLayer': ZBOX,
                        'nameMap': [{'layers': ['block1.conv_a'], 'rule': 'epsilon', 'epsilon': 0.1}]}, attribution()),
    stabilizers=({'base': 'epsilon_plus', 'layerMap': [
        {'type': 'Convolution', 'rule': 'zplus', 'stabilizer': {'epsilon': 0.5, 'clip': True}},
        {'type': 'Dense', 'rule': 'epsilon', 'epsilon': {'epsilon': 0.25, 'norm_scale': True}},
    ]}, attribution()),
    # not block2.conv_a: with its bias zeroed, denominators near zero remain where the biased output's sign keeps
    # them, and Zennit's own float32 result is 1.0e-4·max off its float64 one there (4.5e-7 on these two layers)
    zero_params=({'base': 'epsilon_plus_flat', 'nameMap': [
        {'layers': ['block1.conv_b'], 'rule': 'gamma', 'gamma': 0.25, 'zero_params': ['bias']},
        {'layers': ['classifier.fc1'], 'rule': 'epsilon', 'epsilon': 0.25, 'zero_params': ['bias']},
    ]}, attribution()),
    smoothgrad=(NAME_MAP_THREE, attribution('smoothgrad', n_iter=4, noise_level=0.1)),
    integrated_gradients=(NAME_MAP_THREE, attribution('integrated_gradients', n_iter=5)),
    contrast=({'base': 'epsilon_plus_flat'}, attribution(class_weights={'2': 1, '4': -1})),
    weighted_logit=({'base': 'epsilon_plus_flat'},
                    attribution(output_relevance='logit', class_weights={'0': 0.5, '3': 2})),
)

# what each case must differ from (same attribution), so that no case is a no-op: (label, composite file)
PLAIN = {'base': 'epsilon_plus_flat'}
COMPARE = {
    'name_map_three': [('epsilon_plus_flat', PLAIN)],
    'name_map_glob': [('epsilon_plus', {'base': 'epsilon_plus'}), ('epsilon_plus_flat', PLAIN)],
    'layer_map_by_type': [('epsilon_plus_flat', PLAIN), ('gradient', {'base': 'gradient'})],
    'layer_map_over_base': [('epsilon_plus_flat', PLAIN),
                            ('epsilon_gamma_box', {'base': {'name': 'epsilon_gamma_box', 'low': -3, 'high': 3}})],
    'first_layer': [('epsilon_plus_flat', PLAIN)],
    'first_layer_named': [('epsilon_plus_flat', PLAIN), ('first_layer', CASES['first_layer'][0])],
    'stabilizers': [('epsilon_plus_flat', PLAIN), ('epsilon_plus', {'base': 'epsilon_plus'})],
    'zero_params': [('epsilon_plus_flat', PLAIN),
                    ('same, without zero_params', {'base': 'epsilon_plus_flat', 'nameMap': [
                        {'layers': ['block2.conv_a'], 'rule': 'gamma', 'gamma': 0.25}]})],
    'smoothgrad': [('name_map_three gradient', None)],
    'integrated_gradients': [('name_map_three gradient', None)],
    'contrast': [('epsilon_plus_flat one-hot', None)],
    'weighted_logit': [('epsilon_plus_flat one-hot', None)],
}
# must equal (Zennit's first-layer map is consumed by a named first layer): (label, composite file)
EQUAL = {
    'first_layer_named': ('epsilon_plus_flat + the name map, no firstLayer', {
        'base': 'epsilon_plus_flat', 'nameMap': [{'layers': ['block1.conv_a'], 'rule': 'epsilon', 'epsilon': 0.1}]}),
}


def build_model():
    torch.manual_seed(MODEL_SEED)
    model = nn.Sequential(OrderedDict([
        ('block1', nn.Sequential(OrderedDict([
            ('conv_a', nn.Conv2d(3, 8, 3, padding=1)),
            ('relu_a', nn.ReLU()),
            ('conv_b', nn.Conv2d(8, 8, 3, padding=1)),
            ('relu_b', nn.ReLU()),
            ('pool', nn.MaxPool2d(2)),
        ]))),
        ('block2', nn.Sequential(OrderedDict([
            ('conv_a', nn.Conv2d(8, 16, 3, padding=1)),
            ('relu_a', nn.ReLU()),
            ('pool', nn.AvgPool2d(2)),
        ]))),
        ('classifier', nn.Sequential(OrderedDict([
            ('flatten', nn.Flatten()),
            ('fc1', nn.Linear(16 * 4 * 4, 32)),
            ('relu', nn.ReLU()),
            ('fc2', nn.Linear(32, CLASSES)),
        ]))),
    ]))
    return model.eval()


def check_onnx(path, model):
    '''Module names survive in the node names (/block1/conv_b/Conv), and the initializers are the model's weights.'''
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    nodes = [node.name for node in graph.node]
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            op = 'Conv' if isinstance(module, nn.Conv2d) else 'Gemm'
            expected = '/' + name.replace('.', '/') + '/' + op
            if expected not in nodes:
                raise RuntimeError(f'ONNX node {expected} not found in {nodes}')
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for name, param in model.state_dict().items():
        if name not in initializers or not np.array_equal(initializers[name], param.numpy()):
            raise RuntimeError(f'ONNX initializer {name} missing or different')
    return nodes


def output_relevance(spec):
    '''attr_output for Zennit's attributors: the one-hot of each row's target, or the class-weight vector w (the same
    for every row); mode logit multiplies the model output with it.'''
    rows = len(spec['target'])
    vector = torch.zeros(rows, CLASSES, dtype=torch.float64)
    if spec['class_weights'] is None:
        vector[torch.arange(rows), torch.tensor(spec['target'])] = 1.
    else:
        for cls, weight in spec['class_weights'].items():
            vector[:, int(cls)] = float(weight)
    if spec['output_relevance'] == 'one_hot':
        return vector
    if spec['output_relevance'] == 'logit':
        return lambda out: out * vector
    raise ValueError(spec['output_relevance'])


def compute(model, x, composite_spec, spec, record=None):
    '''(output, relevance) as Zennit computes them; `record` collects the model's input of every pass.'''
    composite, _ = zennit_composite(composite_spec, model)
    kind = spec['attributor']
    if kind == 'gradient':
        attributor = Gradient(model, composite)
    elif kind == 'smoothgrad':
        attributor = SmoothGrad(model, composite, noise_level=spec['noise_level'], n_iter=spec['n_iter'])
    elif kind == 'integrated_gradients':
        attributor = IntegratedGradients(model, composite, n_iter=spec['n_iter'])
    else:
        raise ValueError(kind)
    handle = None
    if record is not None:
        handle = model.register_forward_pre_hook(lambda module, inputs: record.append(inputs[0].detach().clone()))
    try:
        with attributor:
            out, rel = attributor(x.clone(), output_relevance(spec))
    finally:
        if handle is not None:
            handle.remove()
    return out.detach(), rel.detach()


def relative(a, b):
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-300))


def main():
    out = sys.argv[1]
    if '--list' in sys.argv:
        print(FOLDER)
        return
    t0 = time.time()
    torch.set_grad_enabled(True)
    folder = os.path.join(out, FOLDER)
    os.makedirs(folder, exist_ok=True)
    model = build_model()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(INPUT_SEED))
    onnx_path = os.path.join(folder, 'model.onnx')
    torch.onnx.export(model, x, onnx_path, opset_version=13, input_names=['input'], output_names=['output'])
    nodes = check_onnx(onnx_path, model)
    print(f'ONNX nodes: {" ".join(nodes)}')
    np.save(os.path.join(folder, 'input.npy'), x.numpy().astype(np.float32))
    model = model.double()
    x = x.double()

    # ZBox with Python floats (Zennit's expand: torch.tensor(float) is float32, then cast) equals the float64 bounds
    # here, as -3 and 3 are exact in float32
    with Gradient(model, SpecialFirstLayerMapComposite([], [(zennit.types.Linear, ZBox(-3., 3.))])) as attributor:
        _, rel_float = attributor(x.clone(), output_relevance(attribution()))
    with Gradient(model, SpecialFirstLayerMapComposite([], [(zennit.types.Linear, ZBox(bound(-3), bound(3)))])) as a:
        _, rel_tensor = a(x.clone(), output_relevance(attribution()))
    assert torch.equal(rel_float, rel_tensor), 'ZBox: float and float64 bounds differ'

    manifest = {'folder': FOLDER, 'classes': CLASSES, 'target': TARGET, 'model_seed': MODEL_SEED,
                'input_seed': INPUT_SEED, 'smoothgrad_seed': SMOOTHGRAD_SEED, 'cases': OrderedDict()}
    failures = []
    results = {}
    for name, (composite_spec, spec) in CASES.items():
        case_dir = os.path.join(folder, name)
        os.makedirs(case_dir, exist_ok=True)
        record = [] if spec['attributor'] == 'smoothgrad' else None
        if record is not None:
            torch.manual_seed(SMOOTHGRAD_SEED)
        output, relevance = compute(model, x, composite_spec, spec, record)
        results[name] = relevance
        with open(os.path.join(case_dir, 'composite.json'), 'w') as f:
            json.dump(composite_spec, f, indent=2)
            f.write('\n')
        with open(os.path.join(case_dir, 'attribution.json'), 'w') as f:
            json.dump(spec, f, indent=2)
            f.write('\n')
        np.save(os.path.join(case_dir, 'relevance.npy'), relevance.numpy())
        np.save(os.path.join(case_dir, 'output.npy'), output.numpy())
        composite, described = zennit_composite(composite_spec, model)
        entry = {'max_abs': float(relevance.abs().max()), 'sum': float(relevance.sum()),
                 'row_sums': [float(v) for v in relevance.reshape(len(relevance), -1).sum(1)],
                 'rules': assignment(composite, described, model)}

        if record is not None:
            noisy = torch.stack(record)
            assert noisy.shape == (spec['n_iter'],) + tuple(x.shape), noisy.shape
            assert torch.equal(noisy[-1], x), "SmoothGrad's last pass is the clean input"
            np.save(os.path.join(case_dir, 'noisy_inputs.npy'), noisy.numpy())
            # the relevance is the mean of the composite's relevance over these inputs
            mean = sum(compute(model, noisy_x, composite_spec, attribution())[1] for noisy_x in noisy) / len(noisy)
            err = relative(mean, relevance)
            print(f'  {name}: mean of the per-input relevances vs SmoothGrad: max rel. err {err:.2e}')
            if err > 1e-12:
                failures.append(f'{name}: mean over noisy_inputs differs ({err:.2e})')
            entry['noisy_inputs'] = list(noisy.shape)
        if spec['attributor'] == 'integrated_gradients':
            # Zennit's path: alpha in torch.linspace(1/n, 1, n), float32 (torch's default dtype), times the input
            alphas = torch.linspace(1. / spec['n_iter'], 1., spec['n_iter'])
            entry['alphas_float32'] = [float(a) for a in alphas]
            grads = [compute(model, alpha * x, composite_spec, attribution())[1] for alpha in alphas]
            ig = sum(g / spec['n_iter'] for g in grads) * x
            err = relative(ig, relevance)
            print(f'  {name}: recomputed from float32 alphas: max rel. err {err:.2e}')
            if err > 1e-12:
                failures.append(f'{name}: recomputation differs ({err:.2e})')
            exact = [k / spec['n_iter'] for k in range(1, spec['n_iter'] + 1)]
            grads64 = [compute(model, a * x, composite_spec, attribution())[1] for a in exact]
            ig64 = sum(g / spec['n_iter'] for g in grads64) * x
            entry['float64_alphas_rel_diff'] = relative(ig64, relevance)
            print(f'  {name}: with float64 alphas k/n instead: max rel. diff {entry["float64_alphas_rel_diff"]:.2e}')

        # no-op checks
        checks = {}
        for label, other in COMPARE[name]:
            if other is None:
                reference = results['name_map_three'] if label.startswith('name_map_three') else results.get('_plain')
                if reference is None:
                    reference = compute(model, x, PLAIN, attribution())[1]
                    results['_plain'] = reference
            else:
                reference = compute(model, x, other, spec if spec['attributor'] == 'gradient' else attribution())[1]
            diff = float((relevance - reference).abs().max())
            checks[label] = diff / entry['max_abs']
            ok = diff > 1e-3 * entry['max_abs']
            print(f'  {name}: vs {label}: max|diff| {diff:.4e} = {diff / entry["max_abs"]:.3e}·max  '
                  f'{"ok" if ok else "NO-OP?"}')
            if not ok:
                failures.append(f'{name} equals {label}')
        if name in EQUAL:
            label, other = EQUAL[name]
            diff = float((relevance - compute(model, x, other, spec)[1]).abs().max())
            checks['equal: ' + label] = diff
            print(f'  {name}: equals {label}: max|diff| {diff:.1e}  {"ok" if diff == 0 else "DIFFERS"}')
            if diff != 0:
                failures.append(f'{name} differs from {label}')
        entry['checks'] = checks
        manifest['cases'][name] = entry
        print(f'{name}: max|R| {entry["max_abs"]:.6g}  sum {entry["sum"]:.6g}  '
              f'row sums {", ".join(f"{v:.6g}" for v in entry["row_sums"])}')
        for module, rule in entry['rules'].items():
            print(f'    {module}: {rule}')

    with open(os.path.join(folder, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    print(f'{len(CASES)} cases in {time.time() - t0:.1f}s')
    if failures:
        print('FAILED: ' + '; '.join(failures))
        sys.exit(1)


if __name__ == '__main__':
    main()
