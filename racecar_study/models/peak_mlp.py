"""`peak_mlp`: the paper's peak-test net, in -> hidden (BN, ReLU) -> classes (BN, ReLU).

The logits come after BN and ReLU, exactly as in the paper; that is what the reverse pass starts from.
"""

from collections import OrderedDict

from torch import nn

from racecar_study.core.net import RacecarNet
from racecar_study.models.layers import positive_int
from racecar_study.models.registry import register_model


@register_model("peak_mlp")
def peak_mlp(input_shape: tuple[int, int, int], num_classes: int, hidden: int = 128) -> RacecarNet:
    c, h, w = input_shape
    hidden = positive_int("hidden", hidden)
    layers = OrderedDict(
        flatten=nn.Flatten(),
        fc1=nn.Linear(c * h * w, hidden),
        bn1=nn.BatchNorm1d(hidden),
        act1=nn.ReLU(),
        fc2=nn.Linear(hidden, num_classes),
        bn2=nn.BatchNorm1d(num_classes),
        act2=nn.ReLU(),
    )
    return RacecarNet(nn.Sequential(layers))
