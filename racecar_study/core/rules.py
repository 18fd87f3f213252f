"""Reverse rules: how each torch module type takes part in the racecar reverse pass.

Every supported module type maps to one `ReverseRule`. A rule says which role the module plays
(see `Role`) and, for linear and structural modules, how to apply the adjoint of its linear part.
Adding a layer type is one `@register_rule(ModuleType)` class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class Role(enum.Enum):
    LINEAR = "linear"  # d_{m+1} = f(A d + b): carries a lambda, reverse is A^T(y - b)
    POINTWISE = "pointwise"  # part of f_m; re-applied (forward) in the reverse pass
    STRUCTURAL = "structural"  # linear, weight-free reshaping/pooling; reverse is its adjoint
    TRANSPARENT = "transparent"  # identity in reverse (dropout)
    BLOCK = "block"  # composite with its own reverse (residual block)


class UnsupportedModuleError(TypeError):
    """A module type with no reverse rule."""


class ReverseRule:
    """How one module type runs forward (saving what its adjoint needs) and in reverse."""

    role: Role
    # Pointwise rules only: the backward of `reapply` keeps its input, so the chain of pointwise
    # modules it starts can be rebuilt from that input instead of keeping its output (rebuild.py).
    keeps_input: bool = False

    def forward(self, module: nn.Module, x: torch.Tensor, ctx: dict[str, Any]) -> torch.Tensor:
        return module(x)

    def adjoint(self, module: nn.Module, y: torch.Tensor, ctx: dict[str, Any]) -> torch.Tensor:
        """Adjoint of the linear part applied to `y` (bias not involved)."""
        raise NotImplementedError

    def bias(self, module: nn.Module, y: torch.Tensor) -> torch.Tensor | None:
        """The forward bias shaped to broadcast against the output `y`, or None."""
        return None

    def reapply(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A pointwise module applied in the reverse pass."""
        return module(x)


_RULES: dict[type[nn.Module], ReverseRule] = {}


def register_rule(*module_types: type[nn.Module]) -> Callable[[type[ReverseRule]], type[ReverseRule]]:
    def wrap(cls: type[ReverseRule]) -> type[ReverseRule]:
        for t in module_types:
            _RULES[t] = cls()
        return cls

    return wrap


def supported_types() -> list[type[nn.Module]]:
    return list(_RULES)


def rule_for(module: nn.Module) -> ReverseRule:
    # Exact type first, then the nearest registered base class (subclasses inherit their base's rule).
    for t in type(module).__mro__:
        if t in _RULES:
            return _RULES[t]
    names = ", ".join(sorted(t.__name__ for t in _RULES))
    raise UnsupportedModuleError(
        f"no reverse rule for module type {type(module).__name__}; supported: {names}"
    )


# --- linear layers ------------------------------------------------------------------------------


@register_rule(nn.Linear)
class LinearRule(ReverseRule):
    role = Role.LINEAR

    def adjoint(self, module, y, ctx):
        return y @ module.weight

    def bias(self, module, y):
        return module.bias


def _conv_output_padding(module: nn.Conv2d, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> list[int]:
    # conv_transpose2d's output size is ambiguous when stride > 1; pick the padding that
    # recovers the forward input's exact size.
    pads = []
    for i in range(2):
        s, p, d, k = module.stride[i], module.padding[i], module.dilation[i], module.kernel_size[i]
        pads.append(in_hw[i] - ((out_hw[i] - 1) * s - 2 * p + d * (k - 1) + 1))
    return pads


# An adjoint with at most this many output channels (an image's input layer) runs channels-last on
# CPU: ResNet-20's first-layer adjoint (16 -> 3 channels, batch 128) 8.9 -> 4.4 ms with the
# conversions, an RR step 1.5% faster (interleaved in one process, four pairs).
FEW_CHANNELS = 4


def memory_format_of(t: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-D tensor laid out so (and not also plainly contiguous), else contiguous."""
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


@register_rule(nn.Conv2d)
class Conv2dRule(ReverseRule):
    role = Role.LINEAR

    def forward(self, module, x, ctx):
        ctx["in_hw"] = tuple(x.shape[-2:])
        return module(x)

    def adjoint(self, module, y, ctx):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise UnsupportedModuleError(
                "Conv2d reverse needs padding_mode='zeros' and numeric padding, "
                f"got padding_mode={module.padding_mode!r} padding={module.padding!r}"
            )
        # conv_transpose2d for every stride: a stride-1 adjoint written as a convolution with the
        # flipped, transposed kernel costs the same forward and backward at equal channel counts,
        # and 1.4x as much where the reverse output has few channels (an RGB input's 3), measured.
        # On CPU, oneDNN's channels-last kernels are the faster ones: a fused reverse pass (fused.py,
        # whose kernels take either layout) runs its adjoints channels-last, and every reverse pass
        # does so where the output has few channels (NCHW's path for those is slow).
        out_pad = _conv_output_padding(module, ctx["in_hw"], tuple(y.shape[-2:]))
        cpu4d = y.device.type == "cpu" and y.dim() == 4
        few = cpu4d and module.in_channels <= FEW_CHANNELS
        fused = ctx.get("fused")
        if cpu4d and (few or (fused is not None and fused())):
            y = y.contiguous(memory_format=torch.channels_last)
        out = F.conv_transpose2d(
            y,
            module.weight,
            stride=module.stride,
            padding=module.padding,
            output_padding=out_pad,
            groups=module.groups,
            dilation=module.dilation,
        )
        return out.contiguous() if few else out

    def bias(self, module, y):
        return None if module.bias is None else module.bias.view(1, -1, 1, 1)


# --- pointwise: norms and activations ------------------------------------------------------------


@register_rule(nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.Sigmoid, nn.ELU, nn.Identity)
class ActivationRule(ReverseRule):
    role = Role.POINTWISE


@register_rule(nn.BatchNorm1d, nn.BatchNorm2d)
class BatchNormRule(ReverseRule):
    """Reverse batch norm normalises with the reverse tensor's own batch statistics (as the
    reference code does) and never touches the running statistics used at inference."""

    role = Role.POINTWISE
    keeps_input = True

    def reapply(self, module, x):
        if x.numel() // x.shape[1] < 2:
            raise ValueError(
                "the reverse pass normalises with batch statistics: it needs more than one value per "
                f"channel, got a tensor of shape {tuple(x.shape)}"
            )
        return F.batch_norm(x, None, None, module.weight, module.bias, True, 0.0, module.eps)


# --- structural: weight-free linear operators ---------------------------------------------------


@register_rule(nn.Flatten)
class FlattenRule(ReverseRule):
    role = Role.STRUCTURAL

    def forward(self, module, x, ctx):
        ctx["in_shape"] = x.shape[1:]
        return module(x)

    def adjoint(self, module, y, ctx):
        return y.reshape(y.shape[0], *ctx["in_shape"])


@register_rule(nn.Unflatten)
class UnflattenRule(FlattenRule):
    pass


@register_rule(nn.MaxPool2d)
class MaxPool2dRule(ReverseRule):
    """Adjoint of max pooling: scatter-add into the forward argmax positions (max-unpool with the
    forward indices; the add keeps it exact when windows overlap)."""

    role = Role.STRUCTURAL

    def forward(self, module, x, ctx):
        y, idx = F.max_pool2d(
            x,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            ceil_mode=module.ceil_mode,
            return_indices=True,
        )
        ctx["in_shape"] = x.shape
        ctx["indices"] = idx
        return y

    def adjoint(self, module, y, ctx):
        n, c, h, w = ctx["in_shape"]
        out = y.new_zeros(n, c, h * w)
        out.scatter_add_(2, ctx["indices"].flatten(2), y.flatten(2))
        return out.view(n, c, h, w)


class _VjpAdjointRule(ReverseRule):
    """Adjoint of a linear, weight-free op through its vector-Jacobian product. The op is linear,
    so linearising at zero is exact and independent of the data."""

    role = Role.STRUCTURAL

    def forward(self, module, x, ctx):
        ctx["in_shape"] = x.shape
        return module(x)

    def adjoint(self, module, y, ctx):
        _, vjp = torch.func.vjp(module, y.new_zeros(ctx["in_shape"]))
        return vjp(y)[0]


@register_rule(nn.AvgPool2d)
class AvgPool2dRule(_VjpAdjointRule):
    def adjoint(self, module, y, ctx):
        if not (module.count_include_pad and not module.ceil_mode and module.divisor_override is None):
            return super().adjoint(module, y, ctx)
        k = nn.modules.utils._pair(module.kernel_size)
        s = nn.modules.utils._pair(module.stride if module.stride is not None else module.kernel_size)
        p = nn.modules.utils._pair(module.padding)
        n, c, h, w = ctx["in_shape"]
        kernel = y.new_full((c, 1, *k), 1.0 / (k[0] * k[1]))
        out_pad = [(h, w)[i] - ((y.shape[-2 + i] - 1) * s[i] - 2 * p[i] + k[i]) for i in range(2)]
        return F.conv_transpose2d(y, kernel, stride=s, padding=p, output_padding=out_pad, groups=c)


@register_rule(nn.AdaptiveAvgPool2d)
class AdaptiveAvgPool2dRule(_VjpAdjointRule):
    def adjoint(self, module, y, ctx):
        n, c, h, w = ctx["in_shape"]
        if tuple(y.shape[-2:]) == (1, 1):  # global average pooling <-> broadcast
            return (y / (h * w)).expand(n, c, h, w)
        return super().adjoint(module, y, ctx)


# --- transparent ----------------------------------------------------------------------------------


@register_rule(nn.Dropout, nn.Dropout1d, nn.Dropout2d)
class DropoutRule(ReverseRule):
    role = Role.TRANSPARENT
