"""A re-applied chain and its reconstruction term, fused into one compiled kernel each way.

The reverse pass re-applies each state's norm and activation (BN -> ReLU) to the adjoint's output
and adds the term scale * ||d - d'||^2. In eager PyTorch that is about a dozen passes over
full-size tensors per state: the norm's statistics and output, the activation, the difference and
its square-sum; in backward the term's two gradients, their accumulation with the next adjoint's,
the activation's and the norm's backward. Here Inductor (torch.compile) turns the forward into
one kernel (statistics, then normalise, activate, difference and sum in one loop) and the backward
into one (the term's gradient folded into the chain's). The kernels take either memory layout, so a
fused pass runs its convolution adjoints channels-last, oneDNN's faster layout on CPU (rules.py),
while the states stay as the forward pass made them. On ResNet-20 (batch 128, CPU) this takes an
RR step from about 2.2x a Std step to about 2x (benchmarks/core_overhead.py).

The chain's output d' is not kept for the next adjoint's backward: the Rebuilder (rebuild.py)
hands that consumer a token, and the output is recomputed from the kept input and statistics by
the same arithmetic, bitwise the same. Gradients agree with the eager path to float32 rounding
(the kernels sum in another order; tests/core/test_fused.py).

A chain is fused where its modules match a supported pattern (a BatchNorm1d/2d with affine
parameters, then ReLU; either alone; or no module, the term by itself), the tensors are float32
with at least MIN_NUMEL values, and autocast is off; anything else takes the eager path. If
torch.compile cannot build the kernels here (no C++ compiler, an unsupported backend), a one-time
warning says so and every chain takes the eager path.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from racecar_study.core.logs import quiet_logger
from racecar_study.core.loss import term_scale

# Below this many values a chain stays eager: a fused call costs about 0.1 ms of Python and guard
# checks, more than it saves on a small tensor (the peak MLP's 100 x 784 input term at 1 << 16 took
# its RR step from 1.77x to 2.05x a Std step), and compiling costs seconds once per process and shape.
MIN_NUMEL = 1 << 18


def _channel_view(x: torch.Tensor) -> list[int]:
    return [1, -1] + [1] * (x.dim() - 2)


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0, *range(2, x.dim())]


def _forward(x, d, w, b, eps: float, scale: float, norm: bool, act: bool):
    """(d', term, mean, rstd): d' = act(norm(x)) with batch statistics, term = scale * ||d' - d||^2."""
    mean = rstd = None
    if norm:
        var, mean = torch.var_mean(x, dim=_reduce_dims(x), correction=0, keepdim=True)
        rstd = torch.rsqrt(var + eps)
    r = _output(x, mean, rstd, w, b, norm, act)
    diff = r - d
    return r, (diff * diff).sum() * scale, mean, rstd


def _output(x, mean, rstd, w, b, norm: bool, act: bool):
    """d' from the input and statistics; `_forward` computes it so too, so its recomputation for a
    token (rebuild.py) is bitwise the same."""
    z = x
    if norm:
        z = (x - mean) * (rstd * w.view(_channel_view(x))) + b.view(_channel_view(x))
    return torch.relu(z) if act else z


def _backward(x, d, w, b, mean, rstd, grad_r, c, norm: bool, act: bool):
    """Gradients for x, d, w, b given d''s gradient from its consumers and c = 2 * scale * grad_term.
    Without a norm, `x` is d' itself (kept instead of the input: ReLU's mask is d' > 0)."""
    if norm:
        xhat = (x - mean) * rstd
        z = xhat * w.view(_channel_view(x)) + b.view(_channel_view(x))
        r = torch.relu(z) if act else z
    else:
        r = x
    grad_d = (d - r) * c  # d's layout
    g = grad_r - grad_d
    if act:
        g = torch.where(r > 0, g, 0.0)  # as ReLU's own backward: through where the output is positive
    if not norm:
        return g, grad_d, None, None
    dims, n = _reduce_dims(x), x.numel() // x.shape[1]
    sum_g = g.sum(dims, keepdim=True)
    sum_gx = (g * xhat).sum(dims, keepdim=True)
    grad_x = (w.view(_channel_view(x)) * rstd) * (g - sum_g / n - xhat * (sum_gx / n))
    return grad_x, grad_d, sum_gx.flatten(), sum_g.flatten()


def _own_code(fn, tag: str):
    """`fn` with a code object of its own. Dynamo keeps compiled graphs per code object, with a cap
    on recompilations: one code object per pattern and shape compiles one static kernel each."""
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{tag}", co_qualname=f"{fn.__qualname__}_{tag}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


@dataclass(frozen=True)
class _Pattern:
    norm: bool
    act: bool

    @property
    def tag(self) -> str:
        return "_".join(["norm"] * self.norm + ["relu"] * self.act) or "term"


class _Kernels:
    """The compiled forward, output and backward of one pattern and shape (compiled on first call).
    Static shapes: a kernel compiled for symbolic sizes ran ResNet-20's RR step 3% slower."""

    def __init__(self, pattern: _Pattern, tag: str):
        self.pattern = pattern
        self.forward = torch.compile(_own_code(_forward, tag), dynamic=False)
        self.output = torch.compile(_own_code(_output, tag), dynamic=False)
        self.backward = torch.compile(_own_code(_backward, tag), dynamic=False)


_KERNELS: dict[tuple, _Kernels] = {}


def _kernels(pattern: _Pattern, x: torch.Tensor, d: torch.Tensor) -> _Kernels:
    key = (pattern, tuple(x.shape), x.stride(), d.stride(), x.device)
    if key not in _KERNELS:
        tag = f"{pattern.tag}_{len(_KERNELS)}"
        _KERNELS[key] = _Kernels(pattern, tag)
    return _KERNELS[key]


class _ChainTerm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, d, w, b, kernels: _Kernels, eps: float, scale: float):
        p = kernels.pattern
        r, term, mean, rstd = kernels.forward(x, d, w, b, eps, scale, p.norm, p.act)
        # A norm's backward needs its input; without one, d' serves (and is the tensor the next
        # adjoint keeps anyway).
        ctx.save_for_backward(x if p.norm else r, d, w, b, mean, rstd)
        ctx.kernels, ctx.scale = kernels, scale
        if mean is not None:
            ctx.mark_non_differentiable(mean, rstd)
        return r, term, mean, rstd

    @staticmethod
    def backward(ctx, grad_r, grad_term, _grad_mean, _grad_rstd):
        x, d, w, b, mean, rstd = ctx.saved_tensors
        p = ctx.kernels.pattern
        if grad_r is None:  # d' feeds nothing but its term
            grad_r = torch.zeros_like(x)
        c = grad_term * (2.0 * ctx.scale)
        gx, gd, gw, gb = ctx.kernels.backward(x, d, w, b, mean, rstd, grad_r, c, p.norm, p.act)
        return gx, gd, gw, gb, None, None, None


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def pattern_of(modules: Sequence[nn.Module]) -> _Pattern | None:
    """The fused pattern of a chain of pointwise modules, or None where it has none."""
    types_ = [type(m) for m in modules]
    norm = bool(types_) and types_[0] in _NORMS
    if norm:
        bn = modules[0]
        if bn.weight is None or bn.bias is None:
            return None
        types_ = types_[1:]
    if types_ not in ([], [nn.ReLU]):
        return None
    return _Pattern(norm, bool(types_))


class ChainFuser:
    """Fuses re-applied chains with their terms for one racecar pass (see the module docstring)."""

    _broken: str | None = None  # why torch.compile failed here, once it has
    _probed: set[str] = set()  # device types whose compiler has built and run a kernel pair

    def __init__(self, reduction: str, min_numel: int | None = None):
        self.reduction = reduction
        self.min_numel = MIN_NUMEL if min_numel is None else min_numel

    @property
    def active(self) -> bool:
        """False once compiling has failed in this process (every chain then runs eagerly)."""
        return ChainFuser._broken is None

    def applies(self, modules: Sequence[nn.Module], x: torch.Tensor, d: torch.Tensor) -> _Pattern | None:
        if not self.active or x.numel() < self.min_numel or x.shape != d.shape:
            return None
        if x.dtype != torch.float32 or d.dtype != torch.float32 or x.dim() < 2:
            return None
        if torch.is_autocast_enabled(x.device.type):
            return None
        return pattern_of(modules)

    def __call__(self, modules: Sequence[nn.Module], x: torch.Tensor, d: torch.Tensor, rebuild=None):
        """(d', term) for the chain `modules` applied to `x` and its state `d`, or None where the
        chain is not fused (the caller then takes the eager path)."""
        pattern = self.applies(modules, x, d)
        if pattern is None or not self._compiler_works(x.device):
            return None
        w = b = None
        eps = 0.0
        if pattern.norm:
            bn = modules[0]
            w, b, eps = bn.weight, bn.bias, float(bn.eps)
        kernels = _kernels(pattern, x, d)
        scale = term_scale(d, self.reduction)
        try:
            r, term, mean, rstd = _ChainTerm.apply(x, d, w, b, kernels, eps, scale)
        except Exception as e:  # noqa: BLE001  (a compiler or backend failure: fall back for good)
            self._give_up(e)
            return None
        if rebuild is not None and pattern.norm:
            rebuild.recompute(r, kernels.output, x, mean, rstd, w, b, pattern.norm, pattern.act)
        return r, term

    @classmethod
    def _compiler_works(cls, device: torch.device) -> bool:
        """Build and run one small kernel pair, forward and backward, once per device type: a
        compiler failure in a training step's backward could not fall back any more."""
        if cls._broken is not None:
            return False
        if device.type in cls._probed:
            return True
        try:
            # Inductor's first import logs "No CUDA runtime is found" on CPU-only installs: not news
            with quiet_logger("torch.utils.cpp_extension"), torch.enable_grad():
                x = torch.linspace(-1, 1, 64, device=device).view(8, 8).requires_grad_()
                d = torch.zeros(8, 8, device=device)
                kernels = _kernels(_Pattern(False, True), x, d)
                r, term, _, _ = _ChainTerm.apply(x, d, None, None, kernels, 0.0, 0.5)
                (r.sum() + term).backward()
        except Exception as e:  # noqa: BLE001
            cls._give_up(e)
            return False
        cls._probed.add(device.type)
        return True

    @classmethod
    def _give_up(cls, e: Exception) -> None:
        cls._broken = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        warnings.warn(
            f"racecar: fused reverse kernels unavailable here ({cls._broken}); using the eager reverse pass",
            RuntimeWarning,
            stacklevel=3,
        )
