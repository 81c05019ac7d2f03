#!/usr/bin/env python3
"""Model-zoo reference fixtures: every torchvision 0.14 classification architecture family, reduced for CI, exported
to ONNX as a user would, with Zennit 0.5.1 references computed in float64.

    PYTHONPATH=../shared/reference/zennit-0.5.1/src /usr/bin/python3 test/zoo/make_fixtures.py OUT_DIR \
        [--full] [--only NAME,...] [--list]

Per case, OUT_DIR/<case>/ holds:
  model.onnx                      torch.onnx.export(model, x, path, opset_version=13 (17 for *_opset17),
                                  input_names=['input'], output_names=['output']) of the float32 model (eval mode,
                                  default constant folding, so batch-norm after conv is folded)
  input.npy                       float32 NCHW input, seeded N(0, 1)
  gradient/output.npy             float64 model output (plain model, no canonizer)
  gradient/relevance.npy          float64 d(sum_b output[b, target_b]) / d input, no canonizer, no composite
  epsilon_plus_flat/output.npy    float64 output of the canonized model (Zennit EpsilonPlusFlat + canonizers)
  epsilon_plus_flat/relevance.npy float64 relevance at the input
  epsilon_plus_flat/layers/<module>.npy
                                  float64 relevance at the output of every leaf module called exactly once with a
                                  tensor output (reduced cases only)
  epsilon_plus_flat_exact_bn/{output,relevance}.npy
                                  the same with Zennit's merged batch-norms made exact identities (Zennit leaves them
                                  as x / sqrt(1 + eps)); only where batch-norms are merged
  manifest.json                   see test/zoo/README.md

Weights: torch.manual_seed(seed) before construction, then (except *_fresh) every conv / linear weight is redrawn
He-normal (std sqrt(2 / fan_in)), their biases N(0, 0.1); batch-norms get weight ~ U(0.5, 1.5), bias ~ N(0, 0.1) and
running statistics measured on a seeded calibration batch, then perturbed: running_mean += N(0, 0.1) * std,
running_var *= U(0.5, 2); layer-norms weight ~ U(0.5, 1.5), bias ~ N(0, 0.1); ConvNeXt layer scales ~ U(0.1, 0.5),
relative position bias tables ~ N(0, 0.5), and any other parameter that is constant (e.g. ViT's zero class token)
~ N(0, 0.1).  All from a per-case torch.Generator.
"""
import argparse
import copy
import json
import math
import os
import statistics
import sys
import time
import traceback
import warnings
import zlib
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision import models as tvm
from torchvision.models import resnet as tv_resnet, vgg as tv_vgg
from torchvision.models.convnext import CNBlockConfig
from torchvision.models.efficientnet import FusedMBConvConfig, MBConvConfig, _efficientnet_conf
from torchvision.models.mobilenetv3 import _mobilenet_v3_conf
from torchvision.models.regnet import BlockParams

import onnx
from onnx import numpy_helper

from zennit.attribution import Gradient
from zennit.canonizers import MergeBatchNorm, SequentialMergeBatchNorm
from zennit.composites import EpsilonPlusFlat
from zennit.core import collect_leaves
from zennit.types import BatchNorm as ZBatchNorm, Linear as ZLinear

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo_canonizers import CANONIZERS, named_merge_canonizers  # noqa: E402

NUM_CLASSES = 10


# ---------------------------------------------------------------------------------------------------------------
# reduced builders: (model, input side).  Each uses the architecture's own classes; where the constructor has no
# width argument the hard-coded widths are narrowed by rebuilding the same modules with fewer channels.
# ---------------------------------------------------------------------------------------------------------------

def _shrink_channels_(model, k, keep=(3, NUM_CLASSES)):
    '''Replace every Conv2d / BatchNorm2d / Linear by the same module with its channel counts divided by k (counts in
    ``keep``, i.e. the image channels and the classes, stay).  Only for models without grouped convolutions whose
    widths are all divisible by k, so that concatenations and flattens stay consistent.'''
    def div(c):
        if c in keep:
            return c
        if c % k:
            raise ValueError(f'{c} channels not divisible by {k}')
        return c // k

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                if child.groups != 1:
                    raise ValueError('grouped conv')
                new = nn.Conv2d(
                    div(child.in_channels), div(child.out_channels), child.kernel_size, child.stride, child.padding,
                    child.dilation, 1, child.bias is not None, child.padding_mode,
                )
            elif isinstance(child, nn.BatchNorm2d):
                new = nn.BatchNorm2d(div(child.num_features), child.eps, child.momentum, child.affine,
                                     child.track_running_stats)
            elif isinstance(child, nn.Linear):
                new = nn.Linear(div(child.in_features), div(child.out_features), child.bias is not None)
            else:
                continue
            setattr(parent, name, new)
    return model


def _narrow_resnet(block, layers, planes, stem, **kwargs):
    '''torchvision ResNet with the stem / stage widths set through ResNet's own _make_layer.'''
    model = tv_resnet.ResNet(block, [1, 1, 1, 1], num_classes=NUM_CLASSES, **kwargs)
    model.inplanes, model.dilation = stem, 1
    model.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = model._norm_layer(stem)
    model.layer1 = model._make_layer(block, planes[0], layers[0])
    model.layer2 = model._make_layer(block, planes[1], layers[1], stride=2)
    model.layer3 = model._make_layer(block, planes[2], layers[2], stride=2)
    model.layer4 = model._make_layer(block, planes[3], layers[3], stride=2)
    model.fc = nn.Linear(planes[3] * block.expansion, NUM_CLASSES)
    for module in model.modules():  # ResNet's own init
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)
    return model


def _alexnet(full):
    if full:
        return tvm.alexnet(weights=None), 224
    # 224 px: smaller inputs end the features below 6x6, and the adaptive (6, 6) average pool does not export then
    return _shrink_channels_(tvm.AlexNet(num_classes=NUM_CLASSES), 8), 224


# VGG-11 ('A') with 8 convs; 3 instead of 5 max-pools so that a 56 px input ends at 7x7 (adaptive (7, 7) pool exports
# as at 224 px)
_VGG11_REDUCED = [8, 'M', 16, 'M', 32, 32, 'M', 32, 32, 32, 32]


def _vgg(batch_norm):
    def build(full):
        if full:
            return (tvm.vgg11_bn if batch_norm else tvm.vgg11)(weights=None), 224
        model = tv_vgg.VGG(tv_vgg.make_layers(_VGG11_REDUCED, batch_norm=batch_norm), num_classes=NUM_CLASSES)
        model.classifier = nn.Sequential(
            nn.Linear(32 * 7 * 7, 64), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(64, 64), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(64, NUM_CLASSES),
        )
        return model, 56
    return build


def _resnet(kind):
    def build(full):
        if full:
            return getattr(tvm, kind)(weights=None), 224
        if kind == 'resnet18':
            return _narrow_resnet(tv_resnet.BasicBlock, [2, 2, 2, 2], (8, 16, 32, 64), 8), 64
        if kind == 'resnet50':
            return _narrow_resnet(tv_resnet.Bottleneck, [2, 2, 2, 2], (8, 16, 32, 64), 8), 64
        if kind == 'resnext50_32x4d':  # groups 32, 4 channels per group from the second stage on, as at full size
            return _narrow_resnet(tv_resnet.Bottleneck, [2, 2, 2, 2], (16, 32, 64, 64), 16,
                                  groups=32, width_per_group=4), 64
        if kind == 'wide_resnet50_2':
            return _narrow_resnet(tv_resnet.Bottleneck, [2, 2, 2, 2], (8, 16, 32, 64), 8, width_per_group=128), 64
        raise KeyError(kind)
    return build


def _squeezenet(version):
    def build(full):
        if full:
            return getattr(tvm, f'squeezenet{version}')(weights=None), 224
        return _shrink_channels_(tvm.SqueezeNet(version, num_classes=NUM_CLASSES), 4), 64
    return build


def _densenet(full):
    if full:
        return tvm.densenet121(weights=None), 224
    return tvm.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16, num_classes=NUM_CLASSES), 64


def _googlenet(full):
    kwargs = dict(aux_logits=True, transform_input=False, init_weights=True)
    if full:
        return tvm.googlenet(weights=None, **kwargs), 224
    return _shrink_channels_(tvm.GoogLeNet(num_classes=NUM_CLASSES, **kwargs), 8), 64


def _inception_v3(full):
    kwargs = dict(aux_logits=True, transform_input=False, init_weights=True)
    if full:
        return tvm.inception_v3(weights=None, **kwargs), 299
    return _shrink_channels_(tvm.Inception3(num_classes=NUM_CLASSES, **kwargs), 8), 75


def _shufflenet(full):
    if full:
        return tvm.shufflenet_v2_x0_5(weights=None), 224
    return tvm.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=NUM_CLASSES), 64


def _mobilenet_v2(full):
    if full:
        return tvm.mobilenet_v2(weights=None), 224
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2], [6, 96, 2, 1], [6, 160, 2, 2],
               [6, 320, 1, 1]]
    return tvm.MobileNetV2(num_classes=NUM_CLASSES, width_mult=0.25, inverted_residual_setting=setting), 64


def _mobilenet_v3(arch):
    def build(full):
        if full:
            return getattr(tvm, arch)(weights=None), 224
        setting, last_channel = _mobilenet_v3_conf(arch, width_mult=0.25, reduced_tail=True)
        return tvm.MobileNetV3(setting, last_channel, num_classes=NUM_CLASSES), 64
    return build


def _mnasnet(full):
    if full:
        return tvm.mnasnet0_5(weights=None), 224
    return tvm.MNASNet(0.25, num_classes=NUM_CLASSES), 64


def _efficientnet_b0(full):
    if full:
        return tvm.efficientnet_b0(weights=None), 224
    setting, last_channel = _efficientnet_conf('efficientnet_b0', width_mult=0.25, depth_mult=0.5)
    return tvm.EfficientNet(setting, 0.2, num_classes=NUM_CLASSES, last_channel=last_channel), 64


def _efficientnet_v2_s(full):
    if full:
        return tvm.efficientnet_v2_s(weights=None), 224
    setting = [
        FusedMBConvConfig(1, 3, 1, 8, 8, 2),
        FusedMBConvConfig(4, 3, 2, 8, 16, 2),
        FusedMBConvConfig(4, 3, 2, 16, 24, 2),
        MBConvConfig(4, 3, 2, 24, 32, 2),
        MBConvConfig(6, 3, 1, 32, 40, 2),
        MBConvConfig(6, 3, 2, 40, 64, 2),
    ]
    return tvm.EfficientNet(setting, 0.2, num_classes=NUM_CLASSES, last_channel=128,
                            norm_layer=partial(nn.BatchNorm2d, eps=1e-03)), 64


def _regnet(kind):
    def build(full):
        if full:
            return getattr(tvm, kind)(weights=None), 224
        se_ratio = 0.25 if kind == 'regnet_y_400mf' else None
        params = BlockParams(depths=[1, 2, 2, 2], widths=[16, 32, 64, 128], group_widths=[8, 8, 8, 8],
                             bottleneck_multipliers=[1.0] * 4, strides=[2] * 4, se_ratio=se_ratio)
        return tvm.RegNet(params, num_classes=NUM_CLASSES, stem_width=16,
                          norm_layer=partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1)), 64
    return build


def _convnext(full):
    if full:
        return tvm.convnext_tiny(weights=None), 224
    setting = [CNBlockConfig(16, 32, 2), CNBlockConfig(32, 64, 2), CNBlockConfig(64, 128, 2),
               CNBlockConfig(128, None, 2)]
    return tvm.ConvNeXt(setting, stochastic_depth_prob=0.1, num_classes=NUM_CLASSES), 64


def _vit(full):
    if full:
        return tvm.vit_b_16(weights=None), 224
    return tvm.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                                 num_classes=NUM_CLASSES), 32


def _swin(full):
    if full:
        return tvm.swin_t(weights=None), 224
    # 64 px, patch 4, window 2: stages at 16, 8, 4 (shifted windows) and 2 (= window, no shift) as 56/28/14/7 at 224
    return tvm.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4],
                               window_size=[2, 2], stochastic_depth_prob=0.2, num_classes=NUM_CLASSES), 64


def _maxvit(full):
    if full:
        return tvm.maxvit_t(weights=None), 224
    # 64 px: stem 32, stages 16, 8, 4, 2 with partition 2 (full: 112 -> 56, 28, 14, 7 with partition 7)
    return tvm.MaxVit(input_size=(64, 64), stem_channels=8, partition_size=2, block_channels=[8, 16, 24, 32],
                      block_layers=[2, 1, 1, 1], head_dim=8, stochastic_depth_prob=0.2,
                      num_classes=NUM_CLASSES), 64


ARCHS = {
    # name: (builder, canonizer name)
    'alexnet': (_alexnet, 'SequentialMergeBatchNorm'),
    'vgg11': (_vgg(False), 'VGGCanonizer'),
    'vgg11_bn': (_vgg(True), 'VGGCanonizer'),
    'resnet18': (_resnet('resnet18'), 'ResNetCanonizer'),
    'resnet50': (_resnet('resnet50'), 'ResNetCanonizer'),
    'resnext50_32x4d': (_resnet('resnext50_32x4d'), 'ResNetCanonizer'),
    'wide_resnet50_2': (_resnet('wide_resnet50_2'), 'ResNetCanonizer'),
    'squeezenet1_0': (_squeezenet('1_0'), 'SequentialMergeBatchNorm'),
    'squeezenet1_1': (_squeezenet('1_1'), 'SequentialMergeBatchNorm'),
    'densenet121': (_densenet, 'SequentialMergeBatchNorm'),
    'googlenet': (_googlenet, 'SequentialMergeBatchNorm'),
    'inception_v3': (_inception_v3, 'SequentialMergeBatchNorm'),
    'shufflenet_v2_x0_5': (_shufflenet, 'SequentialMergeBatchNorm'),
    'mobilenet_v2': (_mobilenet_v2, 'MobileNetV2Canonizer'),
    'mobilenet_v3_small': (_mobilenet_v3('mobilenet_v3_small'), 'MobileNetV3Canonizer'),
    'mobilenet_v3_large': (_mobilenet_v3('mobilenet_v3_large'), 'MobileNetV3Canonizer'),
    'mnasnet0_5': (_mnasnet, 'MNASNetCanonizer'),
    'efficientnet_b0': (_efficientnet_b0, 'EfficientNetCanonizer'),
    'efficientnet_v2_s': (_efficientnet_v2_s, 'EfficientNetCanonizer'),
    'regnet_x_400mf': (_regnet('regnet_x_400mf'), 'RegNetCanonizer'),
    'regnet_y_400mf': (_regnet('regnet_y_400mf'), 'RegNetCanonizer'),
    'convnext_tiny': (_convnext, 'ConvNeXtCanonizer'),
    'vit_b_16': (_vit, 'VisionTransformerCanonizer'),
    'swin_t': (_swin, 'SwinTransformerCanonizer'),
    'maxvit_t': (_maxvit, 'MaxVitCanonizer'),
}


class Case:
    def __init__(self, name, arch, opset=13, dynamic=False, batch=1, targets=None, reseed=True, canonizer=None):
        self.name, self.arch, self.opset, self.dynamic = name, arch, opset, dynamic
        self.batch, self.targets, self.reseed = batch, targets, reseed
        self.builder, default_canonizer = ARCHS[arch]
        self.canonizer = canonizer or default_canonizer
        self.seed = zlib.crc32(arch.encode()) % (2 ** 31)  # variants share their architecture's weights


CASES = [Case(arch, arch) for arch in ARCHS] + [
    Case('resnet18_fresh', 'resnet18', reseed=False),
    Case('resnet18_dynamic', 'resnet18', dynamic=True),
    Case('resnet18_opset17', 'resnet18', opset=17),
    Case('convnext_tiny_opset17', 'convnext_tiny', opset=17),
    Case('vit_b_16_opset17', 'vit_b_16', opset=17),
    Case('resnet18_batch4', 'resnet18', batch=4, targets=[0, 3, 5, 7]),
    # not in the brief's list: DenseNet with the batch-norm merges Zennit's SequentialMergeBatchNorm gets wrong
    # replaced by the data-flow pairs (conv -> batch-norm of exactly that conv's output) in a NamedMergeBatchNorm
    Case('densenet121_named_merge', 'densenet121', canonizer='NamedMergeBatchNorm(data-flow)'),
]


# ---------------------------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------------------------

def reseed_(model, seed, side):
    '''"Trained-looking" weights from a seeded generator (see the module docstring).'''
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=gen) * std + mean

    def uniform(shape, low, high):
        return torch.rand(shape, generator=gen) * (high - low) + low

    done = set()
    batch_norms = []
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                batch_norms.append(module)
                if module.affine:
                    module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
                    module.bias.copy_(normal(module.bias.shape, 0.1))
            elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                if module.weight is not None:
                    module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
                    module.bias.copy_(normal(module.bias.shape, 0.1))
            elif isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(normal(module.weight.shape, math.sqrt(2.0 / fan_in)))
                if module.bias is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.1))
            else:
                continue
            done.update(id(param) for param in module.parameters(recurse=False))
        for name, param in model.named_parameters():
            if id(param) in done:
                continue
            if name.endswith('layer_scale'):
                param.copy_(uniform(param.shape, 0.1, 0.5))
            elif 'relative_position_bias_table' in name:
                param.copy_(normal(param.shape, 0.5))
            elif (param.numel() > 1 and float(param.std()) == 0.0) or float(param.abs().max()) < 1e-3:
                param.copy_(normal(param.shape, 0.1))

    if not batch_norms:
        return
    # Batch-norm statistics as after training: measured on a seeded calibration batch (only the batch-norms in train
    # mode, cumulative average), then perturbed: running_mean += N(0, 0.1) * std, running_var *= U(0.5, 2).  With
    # statistics unrelated to the activations (the same draws around 0 and 1), deep residual nets blow up at full
    # size (efficientnet_v2_s: logits ~1e6, float32 relevance inf).
    model.eval()
    momenta = [module.momentum for module in batch_norms]
    for module in batch_norms:
        module.reset_running_stats()
        module.momentum = None
        module.train()
    calibration = torch.randn(4, 3, side, side, generator=gen)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the statistics (hence the fixtures) must not depend on the thread count
    try:
        with torch.no_grad():
            model.double()(calibration.double())
    finally:
        model.float()
        torch.set_num_threads(threads)
    with torch.no_grad():
        for module, momentum in zip(batch_norms, momenta):
            module.momentum = momentum
            module.eval()
            std = module.running_var.sqrt()
            module.running_mean.add_(normal(module.running_mean.shape, 0.1) * std)
            module.running_var.mul_(uniform(module.running_var.shape, 0.5, 2.0))


# ---------------------------------------------------------------------------------------------------------------
# ONNX analysis
# ---------------------------------------------------------------------------------------------------------------

def _unqualified(qualified):
    '''torch.onnx.utils._setup_trace_module_map's scope name of a module (last non-numeric atom onwards).'''
    atoms = qualified.split('.')
    for i in reversed(range(len(atoms))):
        if not atoms[i].isnumeric():
            return '.'.join(atoms[i:])
    return qualified


def called_modules(model, x):
    '''Names of the modules whose forward runs (containers such as ModuleList are never called).'''
    called, handles = set(), []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda module, input, name=name: called.add(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return called


def onnx_scope(called, module_name):
    '''The node-name prefix torch 1.13's exporter gives the nodes traced inside module ``module_name``: one path
    component (see _unqualified) per ancestor whose forward was called (``called``, from called_modules).'''
    atoms = module_name.split('.')
    parts = []
    for i in range(len(atoms)):
        prefix = '.'.join(atoms[:i + 1])
        if i == len(atoms) - 1 or prefix in called:
            parts.append(_unqualified(prefix))
    return '/' + '/'.join(parts)


def onnx_summary(path):
    model = onnx.load(path)
    onnx.checker.check_model(model)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    # data-independent values: initializers, Constant / Shape outputs (the exporter keeps shape arithmetic, e.g.
    # Swin's attention mask, unfolded) and whatever is computed from those alone (e.g. Identity of an initializer)
    constant = set(initializers)
    for node in graph.node:
        if node.op_type in ('Constant', 'Shape') or (node.input and all(n in constant for n in node.input if n)):
            constant.update(node.output)
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[info.name] = [dim.dim_value if dim.HasField('dim_value') else dim.dim_param
                             for dim in info.type.tensor_type.shape.dim]
    activation_adds = [
        node.name for node in graph.node
        if node.op_type == 'Add' and not any(name in constant for name in node.input)
    ]
    equal_shape_adds = [
        name for name in activation_adds
        for node in [next(n for n in graph.node if n.name == name)]
        if shapes.get(node.input[0]) is not None and shapes.get(node.input[0]) == shapes.get(node.input[1])
    ]
    return {
        'ops': sorted({node.op_type for node in graph.node}),
        'op_counts': {op: sum(node.op_type == op for node in graph.node)
                      for op in sorted({node.op_type for node in graph.node})},
        'nodes': len(graph.node),
        'params': int(sum(int(np.prod(init.dims)) for init in graph.initializer)),
        'bytes': os.path.getsize(path),
        'activation_adds': activation_adds,
        'equal_shape_activation_adds': equal_shape_adds,
        'node_names': [node.name for node in graph.node],
        'node_ops': {node.name: node.op_type for node in graph.node},
    }


# ---------------------------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------------------------

def onehot(targets, classes, dtype):
    out = torch.zeros(len(targets), classes, dtype=dtype)
    out[torch.arange(len(targets)), torch.tensor(targets)] = 1
    return out


def plain_gradient(model, x, targets):
    x = x.detach().clone().requires_grad_(True)
    output = model(x)
    grad, = torch.autograd.grad(output, x, grad_outputs=onehot(targets, output.shape[1], output.dtype))
    return output.detach(), grad


def canonizers_for(case, model):
    if case.canonizer == 'NamedMergeBatchNorm(data-flow)':
        return named_merge_canonizers(flow_merge_pairs(model))()
    return CANONIZERS[case.canonizer]()


def flow_merge_pairs(model):
    '''[([linear], batch_norm)] for every batch-norm whose input is exactly a linear module's output and the only use
    of that output (one forward; uses are counted in the autograd graph).'''
    leaves = {module: name for name, module in model.named_modules() if not list(module.children())}
    outputs, candidates, handles = {}, [], []

    def post(module, input, output):
        if isinstance(module, ZLinear):
            outputs[id(output)] = (leaves[module], output, output.grad_fn)

    def pre(module, input):
        if isinstance(module, ZBatchNorm) and id(input[0]) in outputs and outputs[id(input[0])][1] is input[0]:
            linear, _, grad_fn = outputs[id(input[0])]
            candidates.append((linear, leaves[module], grad_fn))

    for module in leaves:
        handles += [module.register_forward_hook(post), module.register_forward_pre_hook(pre)]
    try:
        x = torch.zeros(1, 3, *model._zoo_hw, dtype=next(model.parameters()).dtype, requires_grad=True)
        with torch.enable_grad():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    uses, seen, stack = {}, set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is not None:
                uses[child] = uses.get(child, 0) + 1
                stack.append(child)
    return [([linear], batch_norm) for linear, batch_norm, grad_fn in candidates if uses.get(grad_fn) == 1]


def sequential_merge_pairs(model):
    '''The (linear, batch-norm) pairs Zennit's SequentialMergeBatchNorm merges (leaf order).'''
    names = {module: name for name, module in model.named_modules()}
    pairs, last = [], None
    linear_type, batch_norm_type = SequentialMergeBatchNorm.linear_type, SequentialMergeBatchNorm.batch_norm_type
    for leaf in collect_leaves(model):
        if isinstance(last, linear_type) and isinstance(leaf, batch_norm_type):
            pairs.append(([names[last]], names[leaf]))
        last = leaf
    return pairs


def zennit_attribution(case, model, x, targets, store_layers):
    '''EpsilonPlusFlat with the case's canonizers.  Returns output, relevance, and per-leaf info.'''
    composite = EpsilonPlusFlat(canonizers=canonizers_for(case, model))
    calls, grads, order, versions, outputs_kept = {}, {}, [], {}, {}
    with Gradient(model=model, composite=composite) as attributor:
        leaves = [(name, module) for name, module in model.named_modules() if not list(module.children())]
        sums = [name for name, module in leaves if type(module).__name__ == 'Sum']
        first_layer = next((name for name, module in model.named_modules() if isinstance(module, ZLinear)), None)

        def store(name):
            def hook(module, input, output):
                calls[name] = calls.get(name, 0) + 1
                if calls[name] == 1:
                    order.append(name)
                if store_layers and isinstance(output, torch.Tensor) and output.requires_grad:
                    outputs_kept[name] = output
                    versions[name] = output._version
                    # a tensor hook (not retain_grad): it sees the gradient of this very value even if a later
                    # functional in-place op (F.relu(x, inplace=True) after a batch-norm) modifies the tensor
                    output.register_hook(lambda grad: grads.__setitem__(name, grad.detach().clone()))
            return hook

        handles = [module.register_forward_hook(store(name)) for name, module in leaves]
        try:
            output, relevance = attributor(
                x.detach().clone(), lambda out: onehot(targets, out.shape[1], out.dtype))
        finally:
            for handle in handles:
                handle.remove()
    inplace_modified = sorted(name for name, tensor in outputs_kept.items() if tensor._version != versions[name])
    first_executed_linear = next((name for name in order if isinstance(dict(leaves)[name], ZLinear)), None)
    return {
        'output': output.detach(), 'relevance': relevance.detach(), 'calls': calls, 'grads': grads,
        'order': order, 'sums': sums, 'leaves': leaves, 'first_layer': first_layer,
        'first_executed_linear': first_executed_linear, 'inplace_modified': inplace_modified,
    }


def file_conv_weights(onnx_path, called):
    '''module name -> (weight, bias) of its Conv node in the ONNX file, as float64 tensors: the exporter folded the
    batch-norms into these in float32, so they are what the engine computes with.'''
    proto = onnx.load(onnx_path)
    values = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:  # equal initializers shared through Identity (fresh models)
        if node.op_type == 'Identity' and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    convs = {node.name: node for node in proto.graph.node if node.op_type == 'Conv'}

    def lookup(module_name):
        node = convs.get(onnx_scope(called, module_name) + '/Conv')
        if node is None or len(node.input) < 3 or node.input[1] not in values or node.input[2] not in values:
            return None
        return tuple(torch.from_numpy(values[name].copy()).double() for name in node.input[1:3])
    return lookup


def exact_merge_attribution(case, model, x64, targets, store_layers, file_weights=None, perturb=None):
    '''Zennit's merge leaves the batch-norm as x / sqrt(1 + eps) instead of the identity (running_var = 1, eps kept),
    so Zennit's canonized model is not exactly the folded ONNX graph.  This is the same attribution with the merged
    batch-norms made exact identities (eps = 0 after the merge) and, where ``file_weights`` (file_conv_weights) has
    them, the merged layers' weights taken from the ONNX file.  ``perturb`` (a function of a float64 tensor) is applied
    to every parameter, merged ones included.  Returns None if the canonizers merge nothing.'''
    original = MergeBatchNorm.merge_batch_norm
    model64 = copy.deepcopy(model).double().eval()
    names = {id(module): name for name, module in model64.named_modules()}
    merged, from_file = [], []
    if perturb is not None:
        with torch.no_grad():
            for parameter in model64.parameters():
                parameter.copy_(perturb(parameter))

    def exact(modules, batch_norm):
        original(modules, batch_norm)
        batch_norm.eps = 0.0
        merged.append(batch_norm)
        for module in modules:
            weights = file_weights(names[id(module)]) if file_weights else None
            # only where the exporter folded this very batch-norm: its weights are the merge's, rounded
            if weights is None or weights[0].shape != module.weight.shape or not all(
                    rel_error(mine, theirs) <= 1e-6 for mine, theirs in zip(weights, (module.weight, module.bias))):
                continue
            weight, bias = weights
            module.weight.data = perturb(weight) if perturb else weight
            module.bias = nn.Parameter(perturb(bias) if perturb else bias)
            from_file.append(names[id(module)])

    MergeBatchNorm.merge_batch_norm = staticmethod(exact)
    try:
        r = zennit_attribution(case, model64, x64, targets, store_layers=store_layers)
    finally:
        MergeBatchNorm.merge_batch_norm = staticmethod(original)
    if not merged:
        return None
    r['merged'], r['merged_from_file'] = len(merged), len(from_file)
    return r


# float32's unit roundoff: a relative change every float32 computation may make to each parameter
UNIT_ROUNDOFF_F32 = 2.0 ** -24


def conditioning(attribute, reference, draws=3):
    '''How far the float64 reference moves when every parameter is multiplied by (1 + u·N(0, 1)), u = float32's unit
    roundoff (as if the weights had been rounded again): the largest relative change over ``draws`` seeds, at the
    input and per stored module.  A float32 computation cannot be expected closer to the reference than this.
    ``attribute(perturb)`` runs the reference attribution with the parameters perturbed.'''
    worst, layers = 0.0, {}
    for seed in range(draws):
        generator = torch.Generator().manual_seed(seed)

        def perturb(t):
            return t * (1 + UNIT_ROUNDOFF_F32 * torch.randn(t.shape, generator=generator, dtype=t.dtype))
        r = attribute(perturb)
        worst = max(worst, rel_error(r['relevance'], reference['relevance']))
        for name, grad in r['grads'].items():
            if name in reference['grads'] and r['calls'].get(name) == 1:
                layers[name] = max(layers.get(name, 0.0), rel_error(grad, reference['grads'][name]))
    return {'draws': draws, 'unit_roundoff': UNIT_ROUNDOFF_F32, 'relevance': worst, 'layers': layers}


def canonizers_alone(case, model, x64, output64, summary, called):
    '''Apply the case's canonizers without a composite and run the model: does the canonized model compute the plain
    output, and how many Sum modules run, matching which ONNX Adds of two activations.'''
    model = copy.deepcopy(model).double().eval()
    instances, handles, calls = [], [], {}
    try:
        for canonizer in canonizers_for(case, model):
            instances += canonizer.apply(model)
        sums = [name for name, module in model.named_modules() if type(module).__name__ == 'Sum']
        modules = dict(model.named_modules())
        for name in sums:
            handles.append(modules[name].register_forward_hook(
                lambda module, input, output, name=name: calls.__setitem__(name, calls.get(name, 0) + 1)))
        with torch.no_grad():
            output = model(x64)
    except Exception as exc:
        return {'ok': False, 'error': one_line(exc)}
    finally:
        for handle in handles:
            handle.remove()
        for instance in instances:
            instance.remove()
    executed = [name for name in sums if calls.get(name)]
    matched = {}
    for name in executed:
        block = name.rsplit('.', 1)[0]
        prefix = onnx_scope(called, block) + '/'
        adds = [node for node in summary['activation_adds']
                if node.startswith(prefix) and '/' not in node[len(prefix):]]
        index = sorted(n for n in executed if n.rsplit('.', 1)[0] == block).index(name)
        if index < len(adds):
            matched[name] = adds[index]
    return {
        'ok': True, 'output_error': rel_error(output, output64), 'residual_adds': len(executed),
        'sum_onnx_nodes': matched,
        'unmatched_activation_adds': sorted(set(summary['activation_adds']) - set(matched.values())),
    }


def rel_error(a, b):
    scale = float(b.abs().max())
    return float((a.double() - b.double()).abs().max()) / (scale if scale > 0 else 1.0)


def one_line(exc):
    text = f'{type(exc).__name__}: {exc}'.strip().splitlines()
    return text[0] if text else type(exc).__name__


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array)


# ---------------------------------------------------------------------------------------------------------------
# one case
# ---------------------------------------------------------------------------------------------------------------

def run_case(case, out_root, full):
    started = time.time()
    phases, last = {}, [started]

    def mark(phase):
        now = time.time()
        phases[phase] = round(phases.get(phase, 0.0) + now - last[0], 3)
        last[0] = now

    out = os.path.join(out_root, case.name)
    os.makedirs(out, exist_ok=True)

    torch.manual_seed(case.seed)
    model, side = case.builder(full)
    model.eval()
    if case.reseed:
        reseed_(model, case.seed, side)
    model._zoo_hw = (side, side)
    x = torch.randn(case.batch, 3, side, side, generator=torch.Generator().manual_seed(case.seed + 1))
    np.save(os.path.join(out, 'input.npy'), x.numpy().astype(np.float32))

    # export exactly as a user would (float32 model, default constant folding)
    onnx_path = os.path.join(out, 'model.onnx')
    export_kwargs = dict(opset_version=case.opset, input_names=['input'], output_names=['output'])
    if case.dynamic:
        export_kwargs['dynamic_axes'] = {'input': {0: 'batch'}, 'output': {0: 'batch'}}
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, x, onnx_path, **export_kwargs)
    export_seconds = time.time() - t0
    mark('build_export')
    called = called_modules(model, x)
    summary = onnx_summary(onnx_path)
    mark('onnx_summary')

    # float64 references on a copy of the exported weights
    model64 = copy.deepcopy(model).double().eval()
    x64 = x.double()
    output64, grad64 = None, None
    with torch.no_grad():
        output64 = model64(x64)
    targets = list(case.targets) if case.targets is not None else [int(i) for i in output64.argmax(1)]
    output64, grad64 = plain_gradient(model64, x64, targets)
    save(os.path.join(out, 'gradient', 'output.npy'), output64.numpy())
    save(os.path.join(out, 'gradient', 'relevance.npy'), grad64.numpy())
    # PyTorch's own float32 gradient: at full size a ReLU or max-pool input within float32's rounding of its kink
    # takes the other branch, so float32 gradients differ from the float64 one by far more than rounding
    output32, grad32 = plain_gradient(model, x, targets)
    mark('gradient')

    manifest = {
        'name': case.name,
        'arch': case.arch,
        'reduced': not full,
        'seed': case.seed,
        'reseeded': case.reseed,
        'opset': case.opset,
        'input': 'input.npy',
        'input_shape': list(x.shape),
        'layout': 'NCHW',
        'num_classes': int(output64.shape[1]),
        'targets': targets,
        'dynamic_batch': case.dynamic,
        'canonizer': case.canonizer,
        'onnx': {
            'file': 'model.onnx', 'bytes': summary['bytes'], 'params': summary['params'], 'ops': summary['ops'],
            'op_counts': summary['op_counts'], 'nodes': summary['nodes'],
            'activation_adds': summary['activation_adds'],
        },
        'params_torch': int(sum(p.numel() for p in model.parameters())),
        'float32_output_error': rel_error(output32, output64),
        'gradient': {
            'output': 'gradient/output.npy', 'relevance': 'gradient/relevance.npy',
            'relevance_sum': float(grad64.sum()), 'canonizer': None, 'composite': None, 'dtype': 'float64',
            'f32_error': rel_error(grad32, grad64),
        },
        'export_seconds': round(export_seconds, 3),
        'torch': torch.__version__, 'torchvision': torchvision.__version__, 'onnx_version': onnx.__version__,
        'torch_threads': torch.get_num_threads(),
    }

    # Zennit EpsilonPlusFlat, float64 (with layers) then float32
    zennit = {'ok': True}
    # diagnostics: which of SequentialMergeBatchNorm's (leaf-order) merges are not conv -> batch-norm in the data flow
    flow_pairs = flow_merge_pairs(copy.deepcopy(model))
    seq_pairs = sequential_merge_pairs(model)
    manifest['bn_merges_data_flow'] = len(flow_pairs)
    manifest['bn_merges_leaf_order_not_data_flow'] = [
        bn for linears, bn in seq_pairs if (linears, bn) not in flow_pairs and bn in called]
    try:
        r64 = zennit_attribution(case, copy.deepcopy(model).double().eval(), x64, targets, store_layers=not full)
    except Exception as exc:  # Zennit's own failure: record it, keep the gradient reference
        zennit.update(ok=False, error=one_line(exc))
        r64 = None
    if r64 is not None:
        leaves = dict(r64['leaves'])
        zennit['canonized_output_error'] = rel_error(r64['output'], output64)
        mark('zennit_f64')
        file_weights = file_conv_weights(onnx_path, called)
        exact = exact_merge_attribution(case, model, x64, targets, store_layers=not full, file_weights=file_weights)
        mark('zennit_f64_exact_bn')
        if exact is not None:
            save(os.path.join(out, 'epsilon_plus_flat_exact_bn', 'output.npy'), exact['output'].numpy())
            save(os.path.join(out, 'epsilon_plus_flat_exact_bn', 'relevance.npy'), exact['relevance'].numpy())
            if not full:  # the same modules as the plain run's layers below
                for name in exact['order']:
                    if exact['calls'][name] == 1 and name in exact['grads']:
                        save(os.path.join(out, 'epsilon_plus_flat_exact_bn', 'layers', f'{name}.npy'), exact['grads'][name].numpy())
            manifest['epsilon_plus_flat_exact_bn'] = {
                'output': 'epsilon_plus_flat_exact_bn/output.npy',
                'relevance': 'epsilon_plus_flat_exact_bn/relevance.npy',
                'output_error_vs_plain': rel_error(exact['output'], output64),
                'dtype': 'float64',
                'merged': exact['merged'], 'merged_weights_from_file': exact['merged_from_file'],
            }
            zennit['bn_identity_eps_effect'] = {'relevance': rel_error(exact['relevance'], r64['relevance']),
                                                'output': rel_error(exact['output'], r64['output'])}
        else:
            zennit['bn_identity_eps_effect'] = None
        # the reference's own sensitivity to float32-sized changes of the weights (with --full at the input only)
        def perturbed(perturb):
            if exact is not None:
                return exact_merge_attribution(case, model, x64, targets, store_layers=not full,
                                               file_weights=file_weights, perturb=perturb)
            model64 = copy.deepcopy(model).double().eval()
            with torch.no_grad():
                for parameter in model64.parameters():
                    parameter.copy_(perturb(parameter))
            return zennit_attribution(case, model64, x64, targets, store_layers=not full)
        manifest['conditioning'] = conditioning(perturbed, exact if exact is not None else r64)
        mark('conditioning')
        zennit['first_layer'] = r64['first_layer']
        zennit['first_layer_is_first_executed_linear'] = r64['first_layer'] == r64['first_executed_linear']
        save(os.path.join(out, 'epsilon_plus_flat', 'output.npy'), r64['output'].numpy())
        save(os.path.join(out, 'epsilon_plus_flat', 'relevance.npy'), r64['relevance'].numpy())
        zennit.update({
            'output': 'epsilon_plus_flat/output.npy', 'relevance': 'epsilon_plus_flat/relevance.npy',
            'relevance_sum': float(r64['relevance'].sum()), 'relevance_abs_max': float(r64['relevance'].abs().max()),
            'composite': 'epsilon_plus_flat', 'dtype': 'float64',
        })
        executed_sums = [name for name in r64['sums'] if r64['calls'].get(name, 0) > 0]
        manifest['residual_adds'] = len(executed_sums)
        # Sum modules <-> ONNX Add nodes: the k-th Sum of a block is the k-th activation Add in the block's scope
        sum_nodes = {}
        by_block = {}
        for name in executed_sums:
            by_block.setdefault(name.rsplit('.', 1)[0], []).append(name)
        for block, names in by_block.items():
            prefix = onnx_scope(called, block) + '/'
            adds = [node for node in summary['activation_adds']
                    if node.startswith(prefix) and '/' not in node[len(prefix):]]
            for name, node in zip(sorted(names), adds):
                sum_nodes[name] = node
        manifest['sum_onnx_nodes'] = sum_nodes
        # informative: ONNX shape inference does not reach every value (e.g. after Swin's ScatterND mask)
        manifest['onnx_equal_shape_activation_adds'] = len(summary['equal_shape_activation_adds'])
        manifest['unmatched_activation_adds'] = sorted(set(summary['activation_adds']) - set(sum_nodes.values()))
        zennit['inplace_modified_outputs'] = r64['inplace_modified']
        if not full:
            layers = {}
            for name in r64['order']:
                if r64['calls'][name] != 1 or name not in r64['grads']:
                    continue
                array = r64['grads'][name].numpy()
                save(os.path.join(out, 'epsilon_plus_flat', 'layers', f'{name}.npy'), array)
                layers[name] = {'file': f'layers/{name}.npy', 'shape': list(array.shape), 'sum': float(array.sum()),
                                'abs_max': float(np.abs(array).max())}
            zennit['layers'] = layers
        # modules: leaf module -> its ONNX nodes (by the exporter's scope names) and how often Zennit's forward ran it
        modules = {}
        for name, module in r64['leaves']:
            prefix = onnx_scope(called, name) + '/'
            nodes = [node for node in summary['node_names']
                     if node.startswith(prefix) and '/' not in node[len(prefix):]]
            if name in sum_nodes:
                nodes = [sum_nodes[name]]
            modules[name] = {'type': type(module).__name__, 'calls': r64['calls'].get(name, 0), 'onnx_nodes': nodes,
                             'ops': sorted({summary['node_ops'][node] for node in nodes})}
        manifest['modules'] = modules
        mark('layers_modules')

        # float32: the relevance error figure and the timing
        try:
            model32 = copy.deepcopy(model).eval()
            runs = 3 if full else 1
            times = []
            for _ in range(runs):
                t0 = time.time()
                r32 = zennit_attribution(case, model32, x, targets, store_layers=False)
                times.append(time.time() - t0)
            zennit['f32_error'] = rel_error(r32['relevance'], r64['relevance'])
            manifest['zennit_seconds_f32'] = round(statistics.median(times), 4)
            if not full:  # per-layer float32 error (a tolerance hint for each stored tensor)
                r32 = zennit_attribution(case, copy.deepcopy(model).eval(), x, targets, store_layers=True)
                for name, entry in zennit['layers'].items():
                    if name in r32['grads']:
                        entry['f32_error'] = rel_error(r32['grads'][name], r64['grads'][name])
            mark('zennit_f32')
        except Exception as exc:
            zennit['f32_failed'] = one_line(exc)
    else:
        # the canonizers alone (no composite, no hooks): do they apply, and which adds become Sums?
        zennit['canonizers_alone'] = canonizers_alone(case, model, x64, output64, summary, called)
        manifest['residual_adds'] = zennit['canonizers_alone'].get('residual_adds')
    manifest['zennit'] = zennit
    manifest['zennit_f32_error'] = zennit.get('f32_error')
    mark('rest')
    manifest['phase_seconds'] = phases
    manifest['generation_seconds'] = round(time.time() - started, 3)
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--full', action='store_true', help='full-size models (224 px, 299 for inception_v3, '
                        '1000 classes) for timing; float64 references without per-layer files')
    parser.add_argument('--only', default='', help='comma-separated case names')
    parser.add_argument('--list', action='store_true', help='list the case names and exit')
    args = parser.parse_args()

    if args.list:
        print('\n'.join(case.name for case in CASES))
        return 0
    # one thread by default: these models are tiny, and OpenMP threads on a busy machine wait for each other
    torch.set_num_threads(int(os.environ.get('ZOO_THREADS', '1')))
    cases = CASES
    if args.only:
        wanted = [name.strip() for name in args.only.split(',') if name.strip()]
        unknown = set(wanted) - {case.name for case in CASES}
        if unknown:
            parser.error(f'unknown case(s): {", ".join(sorted(unknown))}')
        cases = [case for case in CASES if case.name in wanted]
    if args.full:  # variants are about export options, not size
        cases = [case for case in cases if case.name == case.arch]

    os.makedirs(args.out_dir, exist_ok=True)
    failures = []
    started = time.time()
    for case in cases:
        try:
            m = run_case(case, args.out_dir, args.full)
            z = m['zennit']
            status = 'ok' if z['ok'] else f"zennit failed: {z['error']}"
            extra = f"f32_error={z.get('f32_error', float('nan')):.2e}" if z['ok'] else ''
            print(f"{case.name:28s} {m['generation_seconds']:7.2f}s  {m['onnx']['bytes'] / 1e6:6.2f} MB  "
                  f"sums={m['residual_adds']}  {extra}  {status}", flush=True)
        except Exception:
            failures.append(case.name)
            print(f'{case.name}: FAILED', file=sys.stderr)
            traceback.print_exc()
    print(f'{len(cases) - len(failures)}/{len(cases)} cases in {time.time() - started:.1f}s', flush=True)
    if failures:
        print(f'failed: {", ".join(failures)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
