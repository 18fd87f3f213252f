"""Data-dependent orthogonality: how far each layer's A^T A is from the identity on the data it sees."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from racecar_study.core.analysis._util import analysis_mode

__all__ = ["apply_linear_operator", "apply_adjoint", "orthogonality_residuals"]


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.cpu().double() if t.device.type == "mps" else t.double()  # MPS has no float64


def apply_linear_operator(layer: nn.Linear | nn.Conv2d, d: torch.Tensor) -> torch.Tensor:
    """A d: the layer without its bias, in float64."""
    w = _f64(layer.weight)
    d = d.to(w.device, w.dtype)
    if isinstance(layer, nn.Linear):
        return F.linear(d, w)
    return layer._conv_forward(d, w, None)  # honours padding_mode and string padding


def apply_adjoint(layer: nn.Linear | nn.Conv2d, y: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:
    """A^T y, with the output shaped like the forward input `in_shape`."""
    w = _f64(layer.weight)
    y = y.to(w.device, w.dtype)
    if isinstance(layer, nn.Linear):
        return y @ w
    if layer.padding_mode == "zeros" and not isinstance(layer.padding, str):
        pads = [
            in_shape[-2 + i]
            - (
                (y.shape[-2 + i] - 1) * layer.stride[i]
                - 2 * layer.padding[i]
                + layer.dilation[i] * (layer.kernel_size[i] - 1)
                + 1
            )
            for i in range(2)
        ]
        return F.conv_transpose2d(
            y,
            w,
            stride=layer.stride,
            padding=layer.padding,
            output_padding=pads,
            groups=layer.groups,
            dilation=layer.dilation,
        )
    # Other padding modes: the adjoint of the (linear) map through its vector-Jacobian product.
    _, vjp = torch.func.vjp(lambda t: layer._conv_forward(t, w, None), y.new_zeros(in_shape))
    return vjp(y)[0]


def orthogonality_residuals(net: nn.Module, x: torch.Tensor) -> list[float]:
    """Per Linear/Conv2d, in the order the forward pass reaches them: ||A^T A d - d|| / ||d||
    averaged over the batch, d being the layer's actual input (bias excluded). Runs in eval mode;
    samples with d = 0 are left out of the average (nan if all are). A layer called twice
    contributes one entry per call."""
    layers = (
        net.linear_layers()
        if hasattr(net, "linear_layers")
        else [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    )
    seen: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append((mod, args[0]))) for m in layers]
    try:
        with analysis_mode(net):
            net(x)
            out = []
            for layer, d in seen:
                d = _f64(d)
                back = apply_adjoint(layer, apply_linear_operator(layer, d), d.shape)
                num = (back - d).flatten(1).norm(dim=1)
                den = d.flatten(1).norm(dim=1)
                ok = den > 0
                out.append(float((num[ok] / den[ok]).mean()) if ok.any() else float("nan"))
    finally:
        for h in hooks:
            h.remove()
    return out
