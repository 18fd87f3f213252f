"""Option-B ResNet shortcut: a 1x1 projection conv and its batch norm.

`ResidualBlock` compiles a Sequential shortcut into a plan of its own: its reverse is conv^T of
the reverse tensor, the trailing BN not re-applied (as at the end of any plan), no internal states.
"""

from __future__ import annotations

from torch import nn


def projection_shortcut(in_channels: int, out_channels: int, stride: int = 2) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))
