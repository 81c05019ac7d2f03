"""The reference side of the analysis bench (bench/analysis-bench.ts): zennit-crp's FeatureVisualization.run on
Zennit 0.5.1, timed on the same data the engine analyses, in this run, on every core:

  example   the bundled example model (rebuilt in PyTorch from examples/shapes/model.onnx's weights) on the
            example's data set (an ImageFolder written by examples/shapes/write-data.ts), EpsilonPlusFlat,
            layers features.0 and features.3
  resnet50  torchvision's ResNet50 (seeded, as bench/zennit_bench.py exports it) on N random 3×224×224 images with
            random labels (an .npz the engine reads too), EpsilonPlusFlat with ResNetCanonizer, layers layer3, layer4

    PYTHONPATH=zennit-0.5.1/src:zennit-crp python3 crp_bench.py CASE DATA [--onnx FILE] [--batch B] [--samples N]

For resnet50, DATA (.npz) and the ONNX file are made first when missing (N random samples, seeded).

Prints one JSON object: {"case", "samples", "seconds", "samples_per_s", "threads", "torch"}.
"""
import argparse
import json
import os
import tempfile
import time
from collections import OrderedDict

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper
from torch import nn
from crp.attribution import CondAttribution
from crp.concepts import ChannelConcept
from crp.visualization import FeatureVisualization
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer


def example_model(onnx_file):
    model = nn.Sequential(OrderedDict([
        ('features', nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))),
        ('classifier', nn.Sequential(nn.Flatten(), nn.Linear(1024, 32), nn.ReLU(), nn.Linear(32, 4))),
    ]))
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(onnx_file).graph.initializer}
    model.load_state_dict(weights)
    return model.eval()


class NpzDataset(torch.utils.data.Dataset):
    def __init__(self, file):
        data = np.load(file)
        self.x, self.y = torch.from_numpy(data['x']), data['y']

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def make_resnet_files(model, onnx_file, data_file, samples):
    '''The ONNX export (as bench/zennit_bench.py writes it) and N random images with random labels.'''
    if not os.path.exists(onnx_file):
        os.makedirs(os.path.dirname(onnx_file), exist_ok=True)
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        torch.onnx.export(model, x, onnx_file, opset_version=13, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
    if not os.path.exists(data_file):
        g = torch.Generator().manual_seed(2)
        x = torch.randn(samples, 3, 224, 224, generator=g).numpy()
        y = torch.randint(0, 1000, (samples,), generator=g).numpy()
        np.savez(data_file, x=x, y=y)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('case', choices=['example', 'resnet50'])
    parser.add_argument('data')
    parser.add_argument('--onnx')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--samples', type=int, default=256)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case == 'example':
        model = example_model(args.onnx)
        dataset = torchvision.datasets.ImageFolder(args.data, transform=torchvision.transforms.ToTensor())
        layers, composite = ['features.0', 'features.3'], EpsilonPlusFlat()
    else:
        torch.manual_seed(0)
        model = torchvision.models.resnet50(weights=None).eval()
        make_resnet_files(model, args.onnx, args.data, args.samples)
        dataset = NpzDataset(args.data)
        layers, composite = ['layer3', 'layer4'], EpsilonPlusFlat(canonizers=[ResNetCanonizer()])
    attribution = CondAttribution(model)
    with tempfile.TemporaryDirectory() as tmp:
        fv = FeatureVisualization(attribution, dataset, {layer: ChannelConcept() for layer in layers}, path=tmp)
        t0 = time.perf_counter()
        fv.run(composite, 0, len(dataset), batch_size=args.batch, checkpoint=10 ** 6)
        seconds = time.perf_counter() - t0
    print(json.dumps({'case': args.case, 'samples': len(dataset), 'seconds': seconds,
                      'samples_per_s': len(dataset) / seconds, 'threads': torch.get_num_threads(),
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
