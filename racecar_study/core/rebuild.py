"""Reverse-pass tensors rebuilt during backward instead of kept from the forward pass.

A norm re-applied in the reverse pass keeps its input for its backward anyway. The chain it
starts (norm, then activation) is therefore run without recording a graph, and its output, a
reconstruction d'_m that the loss term and the next adjoint also keep, is not stored: those
consumers get a token, and when backward first needs the tensor the chain is run again from
the kept input (a few elementwise passes, no convolution). The rebuilt tensor is bitwise the
same, so gradients are unchanged; the reverse pass keeps one full-size tensor fewer per norm
(ResNet-20, batch 128: an RR step's peak went from 1.84x to 1.70x of Std's,
benchmarks/core_overhead.py). Chains below MIN_NUMEL elements are kept as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch
from torch.autograd.graph import get_gradient_edge


class _Rebuild:
    """One chain output: how to run it again from its input, and its graph while backward needs it."""

    __slots__ = ("fn", "src", "autocast", "src_", "out_")

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], src: torch.Tensor):
        dev = src.device.type
        self.fn, self.src = fn, src
        self.autocast = (dev, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev))
        self.src_: torch.Tensor | None = None
        self.out_: torch.Tensor | None = None

    def graph(self) -> torch.Tensor:
        """The chain's output, run again with a graph from a detached copy of the input (once)."""
        if self.out_ is None:
            dev, enabled, dtype = self.autocast
            with torch.enable_grad(), torch.autocast(dev, dtype=dtype, enabled=enabled):
                self.src_ = self.src.detach().requires_grad_(self.src.requires_grad)
                self.out_ = self.fn(self.src_)
        return self.out_

    def release(self) -> None:
        self.src_ = self.out_ = None

    def tensor(self) -> torch.Tensor:
        return self.graph().detach()


class _Recompute:
    """A tensor that a consumer saved, computed again when its backward unpacks it (no graph)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., torch.Tensor], args: tuple):
        self.fn, self.args = fn, args

    def tensor(self) -> torch.Tensor:
        with torch.no_grad():
            return self.fn(*self.args)


class _Chain(torch.autograd.Function):
    """out = fn(src), recording nothing; backward runs fn again (or reuses the rebuilt graph)."""

    @staticmethod
    def forward(ctx, src, rebuild: _Rebuild, *params):
        ctx.save_for_backward(src)  # autograd frees it after backward (or keeps it: retain_graph)
        ctx.rebuild, ctx.fn, ctx.rebuild_params = rebuild, rebuild.fn, params  # params: leaves
        with torch.no_grad():
            return rebuild.fn(src)

    @staticmethod
    def backward(ctx, grad):
        # The token's graph if a consumer rebuilt it; run again after a retained backward.
        rb: _Rebuild = ctx.rebuild or _Rebuild(ctx.fn, ctx.saved_tensors[0])
        ctx.rebuild = None  # else the graph, alive until the loss is dropped, would keep src
        out = get_gradient_edge(rb.graph())  # an edge, so that the output is freed as soon as
        inputs = [rb.src_, *ctx.rebuild_params]  # the chain's own backward has used it
        rb.release()
        needs = [t.requires_grad for t in inputs]
        wanted = [t for t in inputs if t.requires_grad]
        found = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        del inputs, wanted
        src_grad, *param_grads = (next(found) if n else None for n in needs)
        return (src_grad, None, *param_grads)


# Below this many elements a chain output is kept: rebuilding it would cost more Python
# bookkeeping (a custom Function, a hook on every saved tensor) than the memory is worth.
MIN_NUMEL = 1 << 16


class Rebuilder:
    """One per reverse pass (a context manager around it). The first chain large enough to rebuild
    installs saved-tensor hooks that pack its output, wherever a consumer saves it, as its token."""

    def __init__(self, min_numel: int | None = None):
        outputs: dict[int, tuple[weakref.ref, _Rebuild | _Recompute]] = {}

        def pack(t: torch.Tensor):  # a closure, not a bound method: no cycle through self
            hit = outputs.get(id(t))
            return hit[1] if hit is not None and hit[0]() is t else t

        self._outputs, self.min_numel = outputs, MIN_NUMEL if min_numel is None else min_numel
        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, _unpack)
        self._active = False

    def __enter__(self) -> Rebuilder:
        return self

    def __exit__(self, *exc) -> None:
        if self._active:
            self._hooks.__exit__(*exc)
            self._active = False
        self._outputs.clear()  # tokens already packed keep their own _Rebuild

    def chain(
        self, fn: Callable[[torch.Tensor], torch.Tensor], src: torch.Tensor, params: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """fn(src), whose output is rebuilt in backward instead of kept (fn: pointwise modules
        whose parameters are `params`; it must not be random)."""
        if not torch.is_grad_enabled() or src.numel() < self.min_numel:
            return fn(src)
        rb = _Rebuild(fn, src)
        params = [p for p in params if p.requires_grad]
        out = _Chain.apply(src, rb, *params)
        self._token(out, rb)
        return out

    def recompute(self, out: torch.Tensor, fn: Callable[..., torch.Tensor], *args) -> None:
        """Consumers that save `out` get a token instead, and `fn(*args)` computes it again when their
        backward needs it. `fn` must return `out` bitwise, and `args` be tensors kept anyway."""
        if torch.is_grad_enabled() and out.numel() >= self.min_numel:
            self._token(out, _Recompute(fn, args))

    def _token(self, out: torch.Tensor, token: _Rebuild | _Recompute) -> None:
        if not self._active:
            self._hooks.__enter__()
            self._active = True
        self._outputs[id(out)] = (weakref.ref(out), token)


def _unpack(saved):
    return saved.tensor() if isinstance(saved, (_Rebuild, _Recompute)) else saved
