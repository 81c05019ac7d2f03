"""The reference side of `npm run bench`: exports torchvision's VGG16 and ResNet50 (seeded weights, eval mode) as
users do, with torch.onnx.export (opset 13, dynamic batch), and times Zennit 0.5.1 on them in this run: the forward
pass and the attribution (VGG16: EpsilonGammaBox, low -3, high 3; ResNet50: EpsilonPlusFlat with ResNetCanonizer),
one-hot target 0, at batch 1 and at batch BATCH. PyTorch uses every core, as a notebook would.

    PYTHONPATH=zennit-0.5.1/src python3 zennit_bench.py OUT_DIR [--models vgg16,resnet50] [--repeat N] [--batch B]

Writes OUT_DIR/<model>/model.onnx and input.npy (kept: the export runs once), and prints one JSON object:
{model: {"onnx", "input", "composite", "times": {batch: {"forward_s", "attribution_s"}}}} (medians).
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torchvision
from zennit.attribution import Gradient
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

MODELS = {
    'vgg16': ('epsilon_gamma_box', lambda: EpsilonGammaBox(low=-3.0, high=3.0)),
    'resnet50': ('epsilon_plus_flat', lambda: EpsilonPlusFlat(canonizers=[ResNetCanonizer()])),
}


def export(name, folder):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    os.makedirs(folder, exist_ok=True)
    onnx_file = os.path.join(folder, 'model.onnx')
    input_file = os.path.join(folder, 'input.npy')
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    if not os.path.exists(onnx_file):
        torch.onnx.export(model, x, onnx_file, opset_version=13, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
        np.save(input_file, x.numpy())
    return model, torch.from_numpy(np.load(input_file))


def median_seconds(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    # PyTorch's default here is one thread (it counts physical cores): give it every core, as the engine has
    torch.set_num_threads(os.cpu_count())
    parser = argparse.ArgumentParser()
    parser.add_argument('out')
    parser.add_argument('--models', default='vgg16,resnet50')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--batch', type=int, default=16)
    args = parser.parse_args()
    result = {}
    for name in args.models.split(','):
        composite_name, make_composite = MODELS[name]
        folder = os.path.join(args.out, name)
        model, x1 = export(name, folder)
        times = {}
        for batch in (1, args.batch):
            x = x1.repeat(batch, 1, 1, 1)
            one_hot = torch.zeros(batch, 1000)
            one_hot[:, 0] = 1

            def forward():
                with torch.no_grad():
                    model(x)

            with Gradient(model, make_composite()) as attributor:
                attribution = median_seconds(lambda: attributor(x, one_hot), args.repeat)
            times[batch] = {'forward_s': median_seconds(forward, args.repeat), 'attribution_s': attribution}
        result[name] = {
            'onnx': os.path.join(folder, 'model.onnx'),
            'input': os.path.join(folder, 'input.npy'),
            'composite': composite_name,
            'times': times,
            'torch': torch.__version__,
            'threads': torch.get_num_threads(),
        }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
