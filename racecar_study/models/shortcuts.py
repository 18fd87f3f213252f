"""Option-B ResNet shortcut: a 1x1 projection conv and its batch norm, as one reversible unit.

`ResidualBlock` accepts a single module as its shortcut and finds its rule by type, so a plain
`nn.Sequential(conv, bn)` has no rule there. This unit compiles the two into a plan of its own and
reverses through it: conv^T of the reverse tensor, the trailing BN not re-applied (as at the end
of any plan) and no internal states.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from racecar_study.core.plan import ReversiblePlan, Trace
from racecar_study.core.rules import ReverseRule, Role, register_rule


class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self._plan = ReversiblePlan([("conv", self.conv), ("bn", self.bn)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def racecar_forward(self, x: torch.Tensor, trace: Trace, ctx: dict[str, Any]) -> torch.Tensor:
        y, _, ctx["plan"] = self._plan.forward(x, trace)
        return y

    def racecar_reverse(self, r: torch.Tensor, trace: Trace, ctx: dict[str, Any]) -> torch.Tensor:
        return self._plan.reverse(r, trace, ctx["plan"])

    def internal_state_names(self, prefix: str) -> list[str]:
        return []


@register_rule(ProjectionShortcut)
class ProjectionShortcutRule(ReverseRule):
    role = Role.BLOCK
