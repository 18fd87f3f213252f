"""`lenet`: LeNet-5-like CNN for 28x28 digits; any input with H, W >= 12 (sizes by a dummy forward)."""

from collections import OrderedDict

from torch import nn

from racecar_study.core.net import RacecarNet
from racecar_study.models.layers import flat_size, make_activation
from racecar_study.models.registry import register_model


@register_model("lenet")
def lenet(input_shape: tuple[int, int, int], num_classes: int, activation: str = "relu") -> RacecarNet:
    features = OrderedDict(
        conv1=nn.Conv2d(input_shape[0], 6, 5, padding=2),
        act1=make_activation(activation),
        pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(6, 16, 5),
        act2=make_activation(activation),
        pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(),
    )
    n = flat_size(nn.Sequential(features), input_shape)
    layers = OrderedDict(
        features,
        fc1=nn.Linear(n, 120),
        act3=make_activation(activation),
        fc2=nn.Linear(120, 84),
        act4=make_activation(activation),
        head=nn.Linear(84, num_classes),
    )
    return RacecarNet(nn.Sequential(layers))
