"""`convnet`: stages of conv-BN-activation-pool, then Flatten and one Linear to the logits.

Flatten (not global average pooling) feeds the classifier: its reverse keeps where a feature
was, whereas pooling's reverse broadcasts one value per channel, so the last feature map's
reconstruction would be spatially flat. With pool="none" each stage downsamples by a stride-2 conv.
"""

from collections import OrderedDict

from torch import nn

from racecar_study.core.net import RacecarNet
from racecar_study.models.layers import (
    boolean,
    choice,
    flat_size,
    make_activation,
    positive_int,
    positive_ints,
)
from racecar_study.models.registry import register_model

POOLS = {"max": lambda: nn.MaxPool2d(2), "avg": lambda: nn.AvgPool2d(2), "none": None}


@register_model("convnet")
def convnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    channels: list[int] = (32, 64),
    kernel: int = 3,
    pool: str = "max",
    batch_norm: bool = True,
    activation: str = "relu",
) -> RacecarNet:
    channels = positive_ints("channels", channels)
    kernel = positive_int("kernel", kernel)
    pool = choice("pool", pool, list(POOLS))
    batch_norm = boolean("batch_norm", batch_norm)
    layers = OrderedDict()
    prev = input_shape[0]
    for i, ch in enumerate(channels, 1):
        stride = 2 if pool == "none" else 1
        layers[f"conv{i}"] = nn.Conv2d(prev, ch, kernel, stride, kernel // 2, bias=not batch_norm)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm2d(ch)
        layers[f"act{i}"] = make_activation(activation)
        if POOLS[pool] is not None:
            layers[f"pool{i}"] = POOLS[pool]()
        prev = ch
    layers["flatten"] = nn.Flatten()
    features = flat_size(nn.Sequential(layers), input_shape)
    layers["head"] = nn.Linear(features, num_classes)
    return RacecarNet(nn.Sequential(layers))
