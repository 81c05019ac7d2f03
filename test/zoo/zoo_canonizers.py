"""Zennit canonizers for the residual blocks of torchvision 0.14 architectures that Zennit 0.5.1 does not cover.

Each canonizer follows zennit.torchvision.ResNetBasicBlockCanonizer: an AttributeCanonizer that overloads a block's
``forward`` with a copy of torchvision's own forward in which every add of two activations of the same shape (the
residual/skip connections) goes through a ``zennit.layer.Sum`` module attached to the block, as
``Sum(torch.stack([a, b], dim=-1))``.  Zennit's composites map ``Sum`` to the ``Norm`` rule.  Adds of a parameter or a
constant (biases, position embeddings, attention bias or mask, GELU's 1 + erf) are untouched.

Attribute names: ``canonizer_sum`` for a block with one residual add (as in Zennit's ResNet canonizers);
``canonizer_sum1`` / ``canonizer_sum2`` for blocks with two (attention, then MLP).  The Sum is only attached to block
instances that actually take the residual path (e.g. ``use_res_connect``), so every attached Sum runs.

The forwards are copies of torchvision 0.14.1's (torchvision/models/*.py) and must stay in sync with it.
"""
import torch
from torchvision.models.convnext import CNBlock
from torchvision.models.efficientnet import FusedMBConv, MBConv as EfficientNetMBConv
from torchvision.models.maxvit import MBConv as MaxVitMBConv, PartitionAttentionLayer
from torchvision.models.mnasnet import _InvertedResidual as MNASNetInvertedResidual
from torchvision.models.mobilenetv2 import InvertedResidual as MobileNetV2InvertedResidual
from torchvision.models.mobilenetv3 import InvertedResidual as MobileNetV3InvertedResidual
from torchvision.models.regnet import ResBottleneckBlock
from torchvision.models.swin_transformer import SwinTransformerBlock
from torchvision.models.vision_transformer import EncoderBlock

from zennit.canonizers import AttributeCanonizer, NamedMergeBatchNorm, SequentialMergeBatchNorm
from zennit.layer import Sum
from zennit.torchvision import ResNetCanonizer, VGGCanonizer


def _sum(module, name, a, b):
    '''a + b through the block's Sum module ``name``.'''
    return getattr(module, name)(torch.stack([a, b], dim=-1))


class _SumBlockCanonizer(AttributeCanonizer):
    '''Base: overload ``forward`` and attach ``sum_names`` Sum modules to instances of ``block_types``.'''
    block_types = ()
    sum_names = ('canonizer_sum',)

    def __init__(self):
        super().__init__(self._attribute_map)

    @classmethod
    def applies(cls, module):
        return True

    @classmethod
    def _attribute_map(cls, name, module):
        if isinstance(module, cls.block_types) and cls.applies(module):
            attributes = {'forward': cls.forward.__get__(module)}
            attributes.update({sum_name: Sum() for sum_name in cls.sum_names})
            return attributes
        return None

    def copy(self):
        return self.__class__()


class MobileNetV2Canonizer(_SumBlockCanonizer):
    '''torchvision.models.mobilenetv2.InvertedResidual: ``x + self.conv(x)``.'''
    block_types = (MobileNetV2InvertedResidual,)

    @classmethod
    def applies(cls, module):
        return module.use_res_connect

    @staticmethod
    def forward(self, x):
        return _sum(self, 'canonizer_sum', x, self.conv(x))


class MobileNetV3Canonizer(_SumBlockCanonizer):
    '''torchvision.models.mobilenetv3.InvertedResidual: ``result += input``.'''
    block_types = (MobileNetV3InvertedResidual,)

    @classmethod
    def applies(cls, module):
        return module.use_res_connect

    @staticmethod
    def forward(self, input):
        result = self.block(input)
        return _sum(self, 'canonizer_sum', input, result)


class MNASNetCanonizer(_SumBlockCanonizer):
    '''torchvision.models.mnasnet._InvertedResidual: ``self.layers(input) + input``.'''
    block_types = (MNASNetInvertedResidual,)

    @classmethod
    def applies(cls, module):
        return module.apply_residual

    @staticmethod
    def forward(self, input):
        return _sum(self, 'canonizer_sum', input, self.layers(input))


class EfficientNetCanonizer(_SumBlockCanonizer):
    '''torchvision.models.efficientnet.MBConv and FusedMBConv: stochastic depth on the block, then ``+= input``.'''
    block_types = (EfficientNetMBConv, FusedMBConv)

    @classmethod
    def applies(cls, module):
        return module.use_res_connect

    @staticmethod
    def forward(self, input):
        result = self.block(input)
        result = self.stochastic_depth(result)
        return _sum(self, 'canonizer_sum', input, result)


class RegNetCanonizer(_SumBlockCanonizer):
    '''torchvision.models.regnet.ResBottleneckBlock: ``proj(x) + f(x)`` or ``x + f(x)``, then the activation.'''
    block_types = (ResBottleneckBlock,)

    @staticmethod
    def forward(self, x):
        if self.proj is not None:
            x = _sum(self, 'canonizer_sum', self.proj(x), self.f(x))
        else:
            x = _sum(self, 'canonizer_sum', x, self.f(x))
        return self.activation(x)


class ConvNeXtCanonizer(_SumBlockCanonizer):
    '''torchvision.models.convnext.CNBlock: ``layer_scale * block(input)``, stochastic depth, ``+= input``.'''
    block_types = (CNBlock,)

    @staticmethod
    def forward(self, input):
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        return _sum(self, 'canonizer_sum', input, result)


class VisionTransformerCanonizer(_SumBlockCanonizer):
    '''torchvision.models.vision_transformer.EncoderBlock: ``x + input`` after attention and ``x + y`` after the MLP.
    The attention call keeps torchvision's keyword arguments (query=, key=, value=).'''
    block_types = (EncoderBlock,)
    sum_names = ('canonizer_sum1', 'canonizer_sum2')

    @staticmethod
    def forward(self, input):
        torch._assert(input.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {input.shape}")
        x = self.ln_1(input)
        x, _ = self.self_attention(query=x, key=x, value=x, need_weights=False)
        x = self.dropout(x)
        x = _sum(self, 'canonizer_sum1', input, x)

        y = self.ln_2(x)
        y = self.mlp(y)
        return _sum(self, 'canonizer_sum2', x, y)


class SwinTransformerCanonizer(_SumBlockCanonizer):
    '''torchvision.models.swin_transformer.SwinTransformerBlock (v1): two pre-norm residual adds.'''
    block_types = (SwinTransformerBlock,)
    sum_names = ('canonizer_sum1', 'canonizer_sum2')

    @classmethod
    def applies(cls, module):
        # SwinTransformerBlockV2 (post-norm) subclasses SwinTransformerBlock and has another forward.
        return type(module) is SwinTransformerBlock

    @staticmethod
    def forward(self, x):
        x = _sum(self, 'canonizer_sum1', x, self.stochastic_depth(self.attn(self.norm1(x))))
        x = _sum(self, 'canonizer_sum2', x, self.stochastic_depth(self.mlp(self.norm2(x))))
        return x


class MaxVitMBConvCanonizer(_SumBlockCanonizer):
    '''torchvision.models.maxvit.MBConv: ``res + x`` with ``res = proj(x)`` (identity or [avg-pool,] 1x1 conv).'''
    block_types = (MaxVitMBConv,)

    @staticmethod
    def forward(self, x):
        res = self.proj(x)
        x = self.stochastic_depth(self.layers(x))
        return _sum(self, 'canonizer_sum', res, x)


class MaxVitPartitionAttentionCanonizer(_SumBlockCanonizer):
    '''torchvision.models.maxvit.PartitionAttentionLayer: two residual adds between partition and departition.'''
    block_types = (PartitionAttentionLayer,)
    sum_names = ('canonizer_sum1', 'canonizer_sum2')

    @staticmethod
    def forward(self, x):
        gh, gw = self.grid_size[0] // self.p, self.grid_size[1] // self.p
        torch._assert(
            self.grid_size[0] % self.p == 0 and self.grid_size[1] % self.p == 0,
            "Grid size must be divisible by partition size. Got grid size of {} and partition size of {}".format(
                self.grid_size, self.p
            ),
        )
        x = self.partition_op(x, self.p)
        x = self.partition_swap(x)
        x = _sum(self, 'canonizer_sum1', x, self.stochastic_dropout(self.attn_layer(x)))
        x = _sum(self, 'canonizer_sum2', x, self.stochastic_dropout(self.mlp_layer(x)))
        x = self.departition_swap(x)
        x = self.departition_op(x, self.p, gh, gw)
        return x


def _with_merge(*sum_canonizers):
    return lambda: [SequentialMergeBatchNorm(), *(canonizer() for canonizer in sum_canonizers)]


# canonizer lists (fresh instances per call) by name, as used in the manifests
CANONIZERS = {
    'ResNetCanonizer': lambda: [ResNetCanonizer()],
    'VGGCanonizer': lambda: [VGGCanonizer()],
    'SequentialMergeBatchNorm': lambda: [SequentialMergeBatchNorm()],
    'MobileNetV2Canonizer': _with_merge(MobileNetV2Canonizer),
    'MobileNetV3Canonizer': _with_merge(MobileNetV3Canonizer),
    'MNASNetCanonizer': _with_merge(MNASNetCanonizer),
    'EfficientNetCanonizer': _with_merge(EfficientNetCanonizer),
    'RegNetCanonizer': _with_merge(RegNetCanonizer),
    'ConvNeXtCanonizer': _with_merge(ConvNeXtCanonizer),
    'VisionTransformerCanonizer': _with_merge(VisionTransformerCanonizer),
    'SwinTransformerCanonizer': _with_merge(SwinTransformerCanonizer),
    # leaf order is data flow in MaxVit too: a projecting MBConv's 1x1 conv is separated from the next leaf
    # batch-norm (layers.pre_norm, which normalizes the block input) by the stochastic_depth leaf
    'MaxVitCanonizer': _with_merge(MaxVitMBConvCanonizer, MaxVitPartitionAttentionCanonizer),
}


def named_merge_canonizers(name_map):
    '''A NamedMergeBatchNorm with an explicit [([linear names], batch-norm name), ...] map.'''
    return lambda: [NamedMergeBatchNorm(name_map)]
