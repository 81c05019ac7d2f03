"""Concept-conditional relevance references (zennit-crp's CondAttribution on Zennit 0.5.1, float64) for a small
ResNet-style CNN exported to ONNX: conditions on one and on two layers, empty channel lists, both exclude_parallel
values, one-hot / logit / abs initial relevance, and stored layer relevances under conditions.

    PYTHONPATH=zennit-0.5.1/src:zennit-crp python3 make_fixtures.py OUT_DIR [--list]

Writes OUT_DIR/resnet_crp/: model.onnx, input.npy, manifest.json and one folder per case with relevance.npy
(rows: one per condition set, in the given order) and layers/<module>.npy for the stored modules.
"""
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from crp.attribution import CondAttribution
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

CASE = 'resnet_crp'
CLASSES = 5
RECORD = ['conv1', 'layer1', 'layer1.conv2', 'layer2.conv1', 'layer2.conv2', 'layer2.downsample.0', 'layer2']
TARGET = 2

# name: (conditions, exclude_parallel, init_rel[, start_layer])
CASES = OrderedDict(
    one_layer_exclude=([{'y': [TARGET], 'layer2.conv2': [0]}, {'y': [TARGET], 'layer2.conv2': [3, 5]},
                        {'y': [TARGET], 'layer2.conv2': []}], True, 'one_hot'),
    one_layer_parallel=([{'y': [TARGET], 'layer2.conv2': [0]}, {'y': [TARGET], 'layer2.conv2': [3, 5]},
                         {'y': [TARGET], 'layer2.conv2': []}], False, 'one_hot'),
    two_layers_exclude=([{'y': [TARGET], 'layer2.conv2': [1], 'layer1.conv2': [2]},
                         {'y': [TARGET], 'layer2.conv2': [4], 'layer1.conv2': [0, 7]}], True, 'one_hot'),
    two_layers_parallel=([{'y': [TARGET], 'layer2.conv2': [1], 'layer1.conv2': [2]},
                          {'y': [TARGET], 'layer2.conv2': [4], 'layer1.conv2': [0, 7]}], False, 'one_hot'),
    block_output_abs=([{'y': [TARGET], 'layer1': [6]}, {'y': [1, 3], 'layer1': [2]}], True, 'abs'),
    logit=([{'y': [TARGET], 'layer2.downsample.0': [2]}], True, 'logit'),
    # a hidden unit as the target: relevance starts at layer2.conv1's activation (zennit-crp's start_layer)
    start_layer=([{'layer2.conv1': [3]}, {'layer2.conv1': [5], 'layer1.conv2': [1, 6]}], True, 'logit', 'layer2.conv1'),
)

INIT_REL = {'one_hot': 1, 'logit': None, 'abs': torch.abs}
# zennit-crp's start_layer: the recorded tensors hold only the relevance below it, so only those are compared
RECORD_BELOW = {'layer2.conv1': ['conv1', 'layer1', 'layer1.conv2', 'layer2.conv1']}


def build_model():
    torch.manual_seed(7)
    model = nn.Sequential(OrderedDict([
        ('conv1', nn.Conv2d(3, 8, 3, padding=1)),
        ('bn1', nn.BatchNorm2d(8)),
        ('relu', nn.ReLU()),
        ('layer1', BasicBlock(8, 8)),
        ('layer2', BasicBlock(8, 16, stride=2, downsample=nn.Sequential(conv1x1(8, 16, 2), nn.BatchNorm2d(16)))),
        ('avgpool', nn.AdaptiveAvgPool2d(1)),
        ('flatten', nn.Flatten()),
        ('fc', nn.Linear(16, CLASSES)),
    ]))
    # trained-looking batch-norm statistics
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    fold_batch_norms(model)
    return model.eval()


def fold_batch_norms(model):
    '''Folds each batch-norm into its convolution in float32 and leaves the batch-norm the exact identity: the ONNX
    exporter's folding and Zennit's merge then give the very weights of the file, so a float64 reference computes
    with the engine's parameters (not with a float64 merge that the file cannot hold).'''
    pairs = [(model.conv1, model.bn1)]
    for block in (model.layer1, model.layer2):
        pairs += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
        if block.downsample is not None:
            pairs.append((block.downsample[0], block.downsample[1]))
    with torch.no_grad():
        for conv, bn in pairs:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            bn.weight.fill_(1), bn.bias.zero_(), bn.running_mean.zero_(), bn.running_var.fill_(1)
            bn.eps = 0.0


def main():
    out = sys.argv[1]
    if '--list' in sys.argv:
        print(CASE)
        return
    case_dir = os.path.join(out, CASE)
    os.makedirs(case_dir, exist_ok=True)
    model = build_model()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    torch.onnx.export(model, x, os.path.join(case_dir, 'model.onnx'), opset_version=13,
                      input_names=['input'], output_names=['output'])
    np.save(os.path.join(case_dir, 'input.npy'), x.numpy().astype(np.float32))
    model = model.double()
    manifest = {'case': CASE, 'composite': 'epsilon_plus_flat', 'target': TARGET, 'record': RECORD, 'cases': {}}
    attribution = CondAttribution(model)
    for name, (conditions, exclude, init, *start) in CASES.items():
        start_layer = start[0] if start else None
        record = RECORD_BELOW[start_layer] if start_layer else RECORD
        # one condition set at a time (zennit-crp computes sets with different layers in separate passes, and rows
        # are independent): the input's gradient is then each set's relevance
        heatmaps, relevances = [], {layer: [] for layer in record}
        for condition in conditions:
            composite = EpsilonPlusFlat(canonizers=[ResNetCanonizer()])
            data = x.double().requires_grad_(True)
            attr = attribution(data, [condition], composite, record_layer=record, init_rel=INIT_REL[init],
                               exclude_parallel=exclude, start_layer=start_layer)
            heatmaps.append(data.grad.detach().numpy())
            for layer in record:
                relevances[layer].append(attr.relevances[layer].numpy())
        folder = os.path.join(case_dir, name)
        os.makedirs(os.path.join(folder, 'layers'), exist_ok=True)
        relevance = np.concatenate(heatmaps)
        np.save(os.path.join(folder, 'relevance.npy'), relevance)
        for layer, rows in relevances.items():
            np.save(os.path.join(folder, 'layers', f'{layer}.npy'), np.concatenate(rows))
        manifest['cases'][name] = {'conditions': conditions, 'exclude_parallel': exclude, 'init_rel': init,
                                   'start_layer': start_layer, 'record': record,
                                   'heatmap_sums': [float(v) for v in relevance.reshape(len(relevance), -1).sum(1)]}
    with open(os.path.join(case_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)


if __name__ == '__main__':
    main()
