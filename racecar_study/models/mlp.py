"""`mlp`: fully connected layers (Linear, BN, activation, dropout) and a Linear that gives the logits."""

from collections import OrderedDict

from torch import nn

from racecar_study.core.net import RacecarNet
from racecar_study.models.layers import boolean, make_activation, positive_ints, probability
from racecar_study.models.registry import register_model


@register_model("mlp")
def mlp(
    input_shape: tuple[int, int, int],
    num_classes: int,
    widths: list[int] = (256, 128),
    batch_norm: bool = True,
    activation: str = "relu",
    dropout: float = 0.0,
) -> RacecarNet:
    widths = positive_ints("widths", widths)
    batch_norm = boolean("batch_norm", batch_norm)
    dropout = probability("dropout", dropout)
    layers = OrderedDict(flatten=nn.Flatten())
    prev = input_shape[0] * input_shape[1] * input_shape[2]
    for i, width in enumerate(widths, 1):
        layers[f"fc{i}"] = nn.Linear(prev, width)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm1d(width)
        layers[f"act{i}"] = make_activation(activation)
        if dropout:
            layers[f"drop{i}"] = nn.Dropout(dropout)
        prev = width
    layers["head"] = nn.Linear(prev, num_classes)
    return RacecarNet(nn.Sequential(layers))
