"""CIFAR ResNets (He et al. 2016, section 4.2): depth 6n+2, stages of 16/32/64 x `width` channels.

Block: ResidualBlock(conv3x3(stride)-BN-act-conv3x3-BN, shortcut), then the post-add activation as
its own module. Shortcut "A" zero-pads channels (parameter-free), "B" projects by a 1x1 conv and
BN. `batch_norm=False` with `activation="identity"` makes the net linear (used to check the reverse
pass against autograd); convs get a bias only without BN.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict

from torch import nn

from racecar_study.core.blocks import ChannelPadShortcut, ResidualBlock
from racecar_study.core.net import RacecarNet
from racecar_study.models.layers import boolean, choice, make_activation, positive_int
from racecar_study.models.registry import ModelError, register_model
from racecar_study.models.shortcuts import projection_shortcut

SHORTCUTS = ("A", "B")


def _conv_bn(i: int, cin: int, cout: int, stride: int, batch_norm: bool) -> list[tuple[str, nn.Module]]:
    """conv{i} (3x3) and, with batch_norm, bn{i}."""
    layers = [(f"conv{i}", nn.Conv2d(cin, cout, 3, stride, 1, bias=not batch_norm))]
    return (layers + [(f"bn{i}", nn.BatchNorm2d(cout))]) if batch_norm else layers


def _block(cin: int, cout: int, stride: int, shortcut: str, batch_norm: bool, activation: str):
    first, second = _conv_bn(1, cin, cout, stride, batch_norm), _conv_bn(2, cout, cout, 1, batch_norm)
    branch = nn.Sequential(OrderedDict([*first, ("act1", make_activation(activation)), *second]))
    if stride == 1 and cin == cout:
        short = None  # identity
    elif shortcut == "A":
        short = ChannelPadShortcut(cin, cout, stride)
    elif batch_norm:
        short = projection_shortcut(cin, cout, stride)
    else:
        short = nn.Conv2d(cin, cout, 1, stride)  # the projection without its norm
    return ResidualBlock(branch, short)


@register_model("resnet")
def resnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 20,
    width: int = 1,
    shortcut: str = "A",
    batch_norm: bool = True,
    activation: str = "relu",
) -> RacecarNet:
    depth = positive_int("depth", depth)
    if depth < 8 or (depth - 2) % 6:
        raise ModelError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}")
    width = positive_int("width", width)
    shortcut = choice("shortcut", shortcut, SHORTCUTS)
    batch_norm = boolean("batch_norm", batch_norm)
    blocks_per_stage = (depth - 2) // 6
    stem = _conv_bn(1, input_shape[0], 16 * width, 1, batch_norm)
    layers = OrderedDict([*stem, ("act1", make_activation(activation))])
    cin = 16 * width
    for stage, cout in enumerate((16 * width, 32 * width, 64 * width), 1):
        stage_layers = OrderedDict()
        for j in range(1, blocks_per_stage + 1):
            stride = 2 if stage > 1 and j == 1 else 1
            stage_layers[f"block{j}"] = _block(cin, cout, stride, shortcut, batch_norm, activation)
            stage_layers[f"act{j}"] = make_activation(activation)
            cin = cout
        layers[f"layer{stage}"] = nn.Sequential(stage_layers)
    layers["pool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(cin, num_classes)
    net = RacecarNet(nn.Sequential(layers))
    for m in net.linear_layers():  # as the reference CIFAR ResNets: He-normal conv and linear weights
        nn.init.kaiming_normal_(m.weight)
    return net


def _fixed_depth(depth: int):
    def build(input_shape, num_classes, **options):
        return resnet(input_shape, num_classes, depth=depth, **options)

    sig = inspect.signature(resnet)
    # The registry reads options from the signature: the alias offers every resnet option but depth.
    build.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "depth"])
    build.__doc__ = f"CIFAR ResNet-{depth}."
    return build


for _depth in (20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}")(_fixed_depth(_depth))
