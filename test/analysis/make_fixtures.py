"""Data-set analysis references (zennit-crp's FeatureVisualization on Zennit 0.5.1, float64): relevance and activation
maximization (RelMax, ActMax) and their per-class statistics (RelStats, ActStats) over a small synthetic labelled image
data set, for a small CNN trained on it for a few seconds and exported to ONNX.

    PYTHONPATH=zennit-0.5.1/src:zennit-crp python3 make_fixtures.py OUT_DIR [--list]

Writes OUT_DIR/analysis_shapes/:
  images/<class>/<index>.png  the data set as a torchvision ImageFolder tree (uint8 RGB, 16x16); ImageFolder's order
                              (class folders sorted, files sorted) is the data-set order
  data.npz                    x (float32, N x 3 x 16 x 16, = image / 255, no mean/std) and y (int64), data-set order
  classes.json                the class names in label order (= the folder names, which sort in label order)
  model.onnx                  the trained float32 model (opset 13, dynamic batch)
  expected.json               zennit-crp's results (float64 copy of the model, x as float64, EpsilonPlusFlat, each
                              sample's own label as the target, max_target 'sum', abs_norm True), channel-major

zennit-crp's semantics, as checked here against an independent float64 computation of all samples at once:
  - relevance at a layer = the gradient arriving at the module's *output* tensor (FeatVisHook's tensor hook), i.e. the
    relevance at the conv/linear output (features.0 and features.3 are the conv outputs, pre-ReLU), with the initial
    relevance = the target's logit (CondAttribution's default init: the prediction at the target, zero elsewhere);
  - activation = the module's output (pre-ReLU);
  - per sample and channel: the sum over the spatial positions (max_target 'sum'), then abs_norm divides each sample's
    channel vector by (sum over channels of |value| + 1e-10), for relevance and activation alike;
  - rf = torch.argmax over the flattened spatial positions of the channel's relevance (activation) map (0 for Linear);
  - RelMax/ActMax keep the top 40 (SAMPLE_SIZE) samples per channel, descending; RelStats/ActStats keep the top 40 per
    class and channel (each class has exactly 40 samples here, so all of them, descending);
  - compute_stats: per class the mean of the top mean_N values, stored in a float32 tensor, classes sorted descending.
Equal values have no defined order in zennit-crp (torch.argsort, flipped for RelMax/ActMax); `ties` marks them.
"""
import json
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

CASE = 'analysis_shapes'
# alphabetical, so ImageFolder's sorted class folders are the label order and the folder names are the class names
CLASSES = ['circle', 'cross', 'square', 'triangle']
PER_CLASS = 40
SIZE = 16
DATA_SEED = 2024
# 30 epochs (about half a second) reach ~98% training accuracy; with this seed 12 of classifier.1's 32 units and one of
# features.3's channels are never active (their relevance is 0 for every sample: ties that the test must allow)
MODEL_SEED = 6
EPOCHS = 30
TRAIN_BATCH = 16
LEARNING_RATE = 3e-3
BATCH_SIZE = 16
LAYERS = ['features.0', 'features.3', 'classifier.1']
NODES = {'features.0': '/features/features.0/Conv', 'features.3': '/features/features.3/Conv',
         'classifier.1': '/classifier/classifier.1/Gemm'}
TOP_N = 5
MEAN_N = 10
TIE_REL = 1e-12


def draw_shape(rng, label):
    '''One uint8 RGB 16x16 image: the shape drawn at 4x scale with random position/size/colours, box-downsampled, with
    light Gaussian noise.'''
    scale = 4
    side = SIZE * scale
    background = tuple(int(v) for v in rng.randint(0, 90, size=3))
    colour = tuple(int(v) for v in rng.randint(130, 256, size=3))
    image = Image.new('RGB', (side, side), background)
    draw = ImageDraw.Draw(image)
    r = int(rng.randint(14, 27))
    cx, cy = (int(v) for v in rng.randint(r + 2, side - r - 2, size=2))
    name = CLASSES[label]
    if name == 'circle':
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif name == 'square':
        s = int(r * 0.85)
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=colour)
    elif name == 'triangle':
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif name == 'cross':
        t = max(3, r // 3)
        draw.rectangle((cx - r, cy - t, cx + r, cy + t), fill=colour)
        draw.rectangle((cx - t, cy - r, cx + t, cy + r), fill=colour)
    else:
        raise ValueError(name)
    image = image.resize((SIZE, SIZE), Image.BOX)
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, 6, size=(SIZE, SIZE, 3))
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def make_dataset(case_dir):
    '''Images in data-set order (class-major: index = label * 40 + j), written as images/<class>/<index:03d>.png and
    data.npz; returns x (float32 NCHW, image / 255) and y (int64).'''
    rng = np.random.RandomState(DATA_SEED)
    images, labels = [], []
    for label in range(len(CLASSES)):
        for _ in range(PER_CLASS):
            images.append(draw_shape(rng, label))
            labels.append(label)
    images = np.stack(images)  # N x H x W x 3 uint8
    y = np.array(labels, dtype=np.int64)
    x = (images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)).astype(np.float32)
    for index, (image, label) in enumerate(zip(images, y)):
        folder = os.path.join(case_dir, 'images', CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image, 'RGB').save(os.path.join(folder, f'{index:03d}.png'))
    np.savez(os.path.join(case_dir, 'data.npz'), x=x, y=y)
    with open(os.path.join(case_dir, 'classes.json'), 'w') as f:
        json.dump(CLASSES, f)
        f.write('\n')
    return x, y


def check_image_folder(case_dir, x, y):
    '''torchvision's ImageFolder with ToTensor() yields exactly x and y, in this order.'''
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import ToTensor
    folder = ImageFolder(os.path.join(case_dir, 'images'), transform=ToTensor())
    assert folder.classes == CLASSES, folder.classes
    assert folder.class_to_idx == {name: i for i, name in enumerate(CLASSES)}, folder.class_to_idx
    assert len(folder) == len(x), (len(folder), len(x))
    xs, ys = zip(*(folder[i] for i in range(len(folder))))
    xs = torch.stack(xs).numpy()
    assert xs.dtype == np.float32 and np.array_equal(xs, x), 'ImageFolder + ToTensor differs from data.npz x'
    assert np.array_equal(np.array(ys), y), 'ImageFolder labels differ from data.npz y'
    npz = np.load(os.path.join(case_dir, 'data.npz'))
    assert npz['x'].dtype == np.float32 and npz['y'].dtype == np.int64
    assert np.array_equal(npz['x'], x) and np.array_equal(npz['y'], y)


def build_model():
    torch.manual_seed(MODEL_SEED)
    return nn.Sequential(OrderedDict([
        ('features', nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))),
        ('classifier', nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, len(CLASSES)))),
    ]))


def train(model, x, y):
    '''A few epochs of Adam in float32; returns the training accuracy (eval mode, whole set).'''
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(MODEL_SEED)
    model.train()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(xt), generator=generator)
        total = 0.
        for start in range(0, len(xt), TRAIN_BATCH):
            batch = order[start:start + TRAIN_BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        print(f'  epoch {epoch + 1}: loss {total / len(xt):.4f}')
    model.eval()
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).double().mean())
    return accuracy


def check_onnx(path, model):
    '''Module names survive in the node names (/features/features.3/Conv), the initializers are the model's weights.'''
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    nodes = [node.name for node in graph.node]
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            expected = '/' + name.split('.')[0] + '/' + name + '/' + ('Conv' if isinstance(module, nn.Conv2d) else 'Gemm')
            if expected not in nodes:
                raise RuntimeError(f'ONNX node {expected} not found in {nodes}')
    for layer, node in NODES.items():
        assert node in nodes, (layer, node, nodes)
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for name, param in model.state_dict().items():
        if name not in initializers or not np.array_equal(initializers[name], param.numpy()):
            raise RuntimeError(f'ONNX initializer {name} missing or different')
    return nodes


class Float64Dataset:
    '''(3x16x16 float64 tensor, int label) per index: the float32 inputs, widened.'''

    def __init__(self, x, y):
        self.x = x.astype(np.float64)
        self.y = y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return torch.from_numpy(self.x[index]), int(self.y[index])


def run_crp(model, x, y, tmp):
    from crp.attribution import CondAttribution
    from crp.concepts import ChannelConcept
    from crp.visualization import FeatureVisualization
    from zennit.composites import EpsilonPlusFlat
    dataset = Float64Dataset(x, y)
    attribution = CondAttribution(model)
    fv = FeatureVisualization(attribution, dataset, layer_map={layer: ChannelConcept() for layer in LAYERS}, path=tmp)
    assert fv.RelMax.max_target == 'sum' and fv.RelMax.abs_norm is True
    fv.run(EpsilonPlusFlat(), 0, len(dataset), batch_size=BATCH_SIZE, checkpoint=500)
    return fv


def load_targets(path):
    '''crp.helper.load_stat_targets without np.int (targets.npy holds the targets as strings after collect_results).'''
    return np.load(os.path.join(str(path), 'targets.npy')).astype(np.int64)


def compute_stats(path, layer, concept_id, top_n=TOP_N, mean_n=MEAN_N):
    '''FeatureVisualization.compute_stats(concept_id, layer, mode, top_N, mean_N, norm=False), reimplemented exactly:
    per target the mean of its top mean_N values, in a float32 tensor; targets sorted descending, the first top_N.
    Returns [(class, float32 value, float64 mean)] and whether two float32 values tie.'''
    from crp.helper import load_statistics
    targets = load_targets(path)
    rel_target = torch.zeros(len(targets))
    means = []
    for i, t in enumerate(targets):
        _, rel_c_sorted, _ = load_statistics(path, layer, t)
        means.append(float(rel_c_sorted[:mean_n, concept_id].mean()))
        rel_target[i] = means[-1]
    args = torch.argsort(rel_target, descending=True)[:top_n]
    values = rel_target.numpy()
    tied = len(np.unique(values)) < len(values)
    return [(int(targets[a]), float(rel_target[a]), means[a]) for a in args.tolist()], tied


def tie_info(values):
    '''values: [K] sorted descending. (any two equal within TIE_REL relative, smallest relative adjacent gap).'''
    a, b = values[:-1], values[1:]
    scale = np.maximum(np.abs(a), np.abs(b))
    gaps = np.where(scale > 0, np.abs(a - b) / np.where(scale > 0, scale, 1), 0.)
    tied = bool(np.any((a == b) | (np.abs(a - b) <= TIE_REL * scale)))
    return tied, float(gaps.min()) if len(gaps) else float('inf')


def independent_values(model, x, y):
    '''All samples at once, without zennit-crp: the relevance (EpsilonPlusFlat, initial relevance = the target's logit)
    and the activation at each layer's output. Returns {layer: (relevance, activation)} as float64 arrays.'''
    from zennit.composites import EpsilonPlusFlat
    modules = dict(model.named_modules())
    outputs = {}

    def store(layer):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[layer] = output
        return hook

    handles = [modules[layer].register_forward_hook(store(layer)) for layer in LAYERS]
    try:
        with EpsilonPlusFlat().context(model) as modified:
            data = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
            out = modified(data)
            rows = torch.arange(len(y))
            init = torch.zeros_like(out)
            init[rows, torch.from_numpy(y)] = out[rows, torch.from_numpy(y)].detach()
            out.backward(init)
    finally:
        for handle in handles:
            handle.remove()
    logits = out.detach()[rows, torch.from_numpy(y)].numpy()
    return {layer: (outputs[layer].grad.detach().numpy(), outputs[layer].detach().numpy()) for layer in LAYERS}, logits


def channel_values(tensor):
    '''zennit-crp's ChannelConcept.reference_sampling per sample: spatial sum, abs_norm over channels; rf = argmax.'''
    flat = tensor.reshape(tensor.shape[0], tensor.shape[1], -1)
    summed = flat.sum(-1)
    normed = summed / (np.abs(summed).sum(-1, keepdims=True) + 1e-10)
    return normed, flat


def check_against(name, d, v, rf, full, flat, failures, samples=None):
    '''zennit-crp's [K, C] arrays against the independent per-sample values: each kept (sample, value) pair matches,
    the values are the top K of the candidates (all samples or `samples`), the rf is the argmax where unique.'''
    worst = 0.
    rf_checked = rf_bad = 0
    for c in range(v.shape[1]):
        candidates = full[:, c] if samples is None else full[samples, c]
        top = np.sort(candidates)[::-1][:v.shape[0]]
        scale = max(float(np.abs(candidates).max()), 1e-300)
        worst = max(worst, float(np.abs(top - v[:, c]).max()) / scale,
                    float(np.abs(full[d[:, c], c] - v[:, c]).max()) / scale)
        for k in range(v.shape[0]):
            spatial = flat[d[k, c], c]
            if np.sum(spatial == spatial.max()) == 1:
                rf_checked += 1
                rf_bad += int(np.argmax(spatial) != rf[k, c])
    if worst > 1e-10:
        failures.append(f'{name}: values differ from the independent computation ({worst:.2e})')
    if rf_bad:
        failures.append(f'{name}: {rf_bad} of {rf_checked} rf differ')
    return worst


def main():
    out = sys.argv[1]
    if '--list' in sys.argv:
        print(CASE)
        return
    t_start = time.time()
    torch.set_num_threads(1)
    torch.set_grad_enabled(True)
    case_dir = os.path.join(out, CASE)
    os.makedirs(case_dir, exist_ok=True)
    timing = OrderedDict()

    t0 = time.time()
    x, y = make_dataset(case_dir)
    check_image_folder(case_dir, x, y)
    timing['data'] = time.time() - t0
    print(f'data set: {len(x)} images {x.shape[1:]} of {len(CLASSES)} classes {CLASSES}; ImageFolder + ToTensor == '
          f'data.npz')

    t0 = time.time()
    model = build_model()
    accuracy = train(model, x, y)
    timing['training'] = time.time() - t0
    print(f'training accuracy {accuracy:.4f} ({EPOCHS} epochs of Adam, {timing["training"]:.1f}s)')
    onnx_path = os.path.join(case_dir, 'model.onnx')
    torch.onnx.export(model, torch.from_numpy(x[:1]), onnx_path, opset_version=13, input_names=['input'],
                      output_names=['output'], dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
    nodes = check_onnx(onnx_path, model)
    print(f'ONNX nodes: {" ".join(nodes)}')

    model = model.double().eval()
    failures = []
    t0 = time.time()
    from crp.helper import load_maximization, load_statistics
    with tempfile.TemporaryDirectory() as tmp:
        fv = run_crp(model, x, y, tmp)
        timing['zennit-crp'] = time.time() - t0
        independent, logits = independent_values(model, x, y)
        negative = int((logits < 0).sum())
        print(f'target logits (the initial relevance): min {logits.min():.4g} max {logits.max():.4g}, '
              f'{negative} negative')
        expected = OrderedDict([
            ('case', CASE), ('composite', 'epsilon_plus_flat'), ('max_target', 'sum'), ('abs_norm', True),
            ('top', fv.RelMax.SAMPLE_SIZE), ('samples', len(x)), ('batch_size', BATCH_SIZE), ('layers', LAYERS),
            ('classes', CLASSES), ('per_class', PER_CLASS), ('train_accuracy', accuracy),
            ('stats', {'top_N': TOP_N, 'mean_N': MEAN_N, 'norm': False}), ('tie_relative', TIE_REL),
            ('target_logits_negative', negative), ('results', OrderedDict()),
        ])
        paths = {'relmax': fv.RelMax.PATH, 'actmax': fv.ActMax.PATH, 'relstats': fv.RelStats.PATH,
                 'actstats': fv.ActStats.PATH}
        stat_targets = {mode: load_targets(paths[mode]).tolist() for mode in ('relstats', 'actstats')}
        print(f'targets.npy order: {stat_targets}')
        tie_counts = OrderedDict()
        worst = 0.
        for layer in LAYERS:
            rel, act = independent[layer]
            entry = OrderedDict([('module', layer), ('node', NODES[layer]), ('shape', list(rel.shape[1:]))])
            ties = OrderedDict()
            gaps = OrderedDict()
            boundary = OrderedDict()
            for mode, tensor in (('rel', rel), ('act', act)):
                full, flat = channel_values(tensor)
                d, v, rf = (np.array(a) for a in load_maximization(paths[mode + 'max'], layer))
                channels = v.shape[1]
                entry['channels'] = channels
                worst = max(worst, check_against(f'{layer} {mode}max', d, v, rf, full, flat, failures))
                entry[mode + 'max'] = {'samples': d.T.tolist(), 'values': v.T.tolist(), 'rf': rf.T.tolist()}
                info = [tie_info(v[:, c]) for c in range(channels)]
                ties[mode + 'max'] = [t for t, _ in info]
                gaps[mode + 'max'] = [g for _, g in info]
                # is the last kept value tied with a sample that was not kept?
                bounds = []
                for c in range(channels):
                    rest = np.delete(full[:, c], d[:, c])
                    last = v[-1, c]
                    bounds.append(bool(np.any(np.abs(rest - last) <= TIE_REL * max(abs(last), 1e-300))))
                boundary[mode + 'max'] = bounds
                stats = OrderedDict()
                ties[mode + 'stats'] = OrderedDict()
                gaps[mode + 'stats'] = OrderedDict()
                for t in stat_targets[mode + 'stats']:
                    d, v, rf = (np.array(a) for a in load_statistics(paths[mode + 'stats'], layer, t))
                    assert v.shape == (PER_CLASS, channels), v.shape
                    worst = max(worst, check_against(f'{layer} {mode}stats {t}', d, v, rf, full, flat, failures,
                                                     samples=np.nonzero(y == t)[0]))
                    stats[str(t)] = {'samples': d.T.tolist(), 'values': v.T.tolist(), 'rf': rf.T.tolist()}
                    info = [tie_info(v[:, c]) for c in range(channels)]
                    ties[mode + 'stats'][str(t)] = [t_ for t_, _ in info]
                    gaps[mode + 'stats'][str(t)] = [g for _, g in info]
                entry[mode + 'stats'] = OrderedDict(sorted(stats.items(), key=lambda kv: int(kv[0])))
                classes, class_ties = [], []
                for c in range(channels):
                    ranked, tied = compute_stats(paths[mode + 'stats'], layer, c)
                    classes.append([{'class': cls, 'value': value, 'value64': mean} for cls, value, mean in ranked])
                    class_ties.append(tied)
                entry[mode + 'classes'] = classes
                ties[mode + 'classes'] = class_ties
            entry['ties'] = ties
            entry['boundary_ties'] = boundary
            entry['min_relative_gap'] = gaps
            expected['results'][layer] = entry
            counts = OrderedDict()
            for key, value in ties.items():
                if isinstance(value, dict):
                    counts[key] = {cls: sum(flags) for cls, flags in value.items()}
                else:
                    counts[key] = sum(value)
            counts['boundary'] = {key: sum(flags) for key, flags in boundary.items()}
            tie_counts[layer] = counts
        print(f'zennit-crp vs. the independent all-samples computation (relevance at the module outputs, spatial sum, '
              f'abs_norm): max difference {worst:.2e} of the channel\'s max |value|')
        expected['independent_max_difference'] = worst
        timing['total'] = time.time() - t_start
        expected['timing_seconds'] = {key: round(value, 2) for key, value in timing.items()}

    with open(os.path.join(case_dir, 'expected.json'), 'w') as f:
        json.dump(expected, f)
        f.write('\n')

    print(f'training accuracy {accuracy:.4f}')
    for layer in LAYERS:
        entry = expected['results'][layer]
        print(f'{layer} ({entry["node"]}): {entry["channels"]} channels, output {entry["shape"]}; channel 0 top-3: '
              f'RelMax {entry["relmax"]["samples"][0][:3]} ({", ".join(f"{v:.4g}" for v in entry["relmax"]["values"][0][:3])}), '
              f'ActMax {entry["actmax"]["samples"][0][:3]} ({", ".join(f"{v:.4g}" for v in entry["actmax"]["values"][0][:3])})')
        print(f'  tied channels: {json.dumps(tie_counts[layer])}')
        print(f'  channel 0 classes: relevance '
              f'{[(e["class"], round(e["value"], 4)) for e in entry["relclasses"][0]]}, activation '
              f'{[(e["class"], round(e["value"], 4)) for e in entry["actclasses"][0]]}')
    print('timing: ' + ', '.join(f'{key} {value:.1f}s' for key, value in timing.items()))
    if failures:
        print('FAILED: ' + '; '.join(failures))
        sys.exit(1)


if __name__ == '__main__':
    main()
