"""Composite reversible units: the residual block and the CIFAR 'option A' shortcut."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from racecar_study.core.plan import ReversiblePlan, Trace
from racecar_study.core.rules import ReverseRule, Role, memory_format_of, register_rule, rule_for


class ResidualBlock(nn.Module):
    """y = shortcut(x) + branch(x). Put the post-addition activation after the block, as its own
    module, so the block stays the linear unit of its segment.

    Reverse (the adjoint of the linear part, METHOD.md): x' = shortcut^T(y') + branch^T(y'), where
    branch^T is the racecar reverse of the branch: its internal states are reconstructed and enter
    the loss like any other state; the branch's trailing norm is not re-applied (as at the end of
    any plan). An identity shortcut reverses to y'.
    """

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self._branch_plan = ReversiblePlan([("branch", branch)])
        # Identity and weight-free shortcuts reverse by their rule; anything else is compiled.
        self._shortcut_rule = None
        self._shortcut_plan = None
        if type(self.shortcut) is nn.Sequential or (
            not isinstance(self.shortcut, nn.Identity) and rule_for(self.shortcut).role is not Role.STRUCTURAL
        ):
            self._shortcut_plan = ReversiblePlan([("shortcut", self.shortcut)])
        elif not isinstance(self.shortcut, nn.Identity):
            self._shortcut_rule = rule_for(self.shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.branch(x)

    def racecar_forward(self, x: torch.Tensor, trace: Trace, ctx: dict[str, Any]) -> torch.Tensor:
        h, _, ctx["branch"] = self._branch_plan.forward(x, trace)
        if self._shortcut_plan is not None:
            s, _, ctx["shortcut"] = self._shortcut_plan.forward(x, trace)
        elif self._shortcut_rule is not None:
            ctx["shortcut"] = {}
            s = self._shortcut_rule.forward(self.shortcut, x, ctx["shortcut"])
        else:
            s = x
        return s + h

    def racecar_reverse(self, r: torch.Tensor, trace: Trace, ctx: dict[str, Any]) -> torch.Tensor:
        back = self._branch_plan.reverse(r, trace, ctx["branch"])
        if self._shortcut_plan is not None:
            return back + self._shortcut_plan.reverse(r, trace, ctx["shortcut"])
        if self._shortcut_rule is not None:
            return back + self._shortcut_rule.adjoint(self.shortcut, r, ctx["shortcut"])
        return back + r

    def internal_state_names(self, prefix: str) -> list[str]:
        names = [f"{prefix}.{n}" for n in self._branch_plan.state_names()]
        if self._shortcut_plan is not None:
            names += [f"{prefix}.{n}" for n in self._shortcut_plan.state_names()]
        return names


@register_rule(ResidualBlock)
class ResidualBlockRule(ReverseRule):
    role = Role.BLOCK


class ChannelPadShortcut(nn.Module):
    """CIFAR ResNet 'option A' shortcut: subsample by `stride` and zero-pad channels to `out_channels`.
    Weight-free and linear, so it reverses by its adjoint (slice the channels, scatter back)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        return F.pad(y, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, stride={self.stride}"


@register_rule(ChannelPadShortcut)
class ChannelPadShortcutRule(ReverseRule):
    role = Role.STRUCTURAL

    def forward(self, module, x, ctx):
        ctx["in_shape"] = x.shape
        return module(x)

    def adjoint(self, module, y, ctx):
        extra = module.out_channels - module.in_channels
        lo = extra // 2
        kept = y[:, lo : lo + module.in_channels]
        out = torch.empty(ctx["in_shape"], dtype=y.dtype, device=y.device, memory_format=memory_format_of(y))
        out.zero_()  # in y's layout: a channels-last reverse pass stays so
        out[:, :, :: module.stride, :: module.stride] = kept
        return out
