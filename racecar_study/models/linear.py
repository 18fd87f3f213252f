"""`linear`: one fully connected layer, no activation (the paper's MNIST SVD test: 784 -> 10)."""

from collections import OrderedDict

from torch import nn

from racecar_study.core.net import RacecarNet
from racecar_study.models.layers import boolean
from racecar_study.models.registry import register_model


@register_model("linear")
def linear(input_shape: tuple[int, int, int], num_classes: int, bias: bool = True) -> RacecarNet:
    c, h, w = input_shape
    head = nn.Linear(c * h * w, num_classes, bias=boolean("bias", bias))
    return RacecarNet(nn.Sequential(OrderedDict(flatten=nn.Flatten(), head=head)))
