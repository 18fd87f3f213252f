"""A sequence of modules compiled once into segments that run forward and in reverse.

Segment m is `pre_m` (structural ops), the unit A_m (a linear layer or a block) and `post_m`
(the pointwise f_m). The states are the tensors between segments: d_1 = input, d_{m+1} =
post_m(A_m pre_m(d_m) + b_m). The reverse pass (METHOD.md) is

    d'_m = post_{m-1}( pre_m^T( A_m^T( d'_{m+1} - b_m ) ) ),   post_0 = identity.

Structural ops after the last unit (a tail) run forward only: the reverse starts from the state
before them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from racecar_study.core.fused import ChainFuser
from racecar_study.core.rebuild import Rebuilder
from racecar_study.core.rules import ReverseRule, Role, UnsupportedModuleError, memory_format_of, rule_for


@dataclass
class Trace:
    """States and reconstructions collected by one racecar pass, in forward order."""

    states: list[torch.Tensor] = field(default_factory=list)
    recons: list[torch.Tensor | None] = field(default_factory=list)
    # Builds a loss term as each reconstruction appears, right after its tensor: autograd then runs
    # that term's backward just in time instead of every term's backward at once.
    term_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    terms: list[torch.Tensor | None] = field(default_factory=list)
    # When set (and active around the reverse pass), re-applied norm chains are rebuilt in backward.
    rebuild: Rebuilder | None = None
    keep_recons: bool = True  # False: a reconstruction is dropped once its term is built
    # When set, a chain and its term run as one compiled kernel where fused.py supports them
    # (training: terms built, reconstructions not kept).
    fuser: ChainFuser | None = None

    def add_state(self, t: torch.Tensor) -> int:
        self.states.append(t)
        self.recons.append(None)
        self.terms.append(None)
        return len(self.states) - 1

    def set_recon(self, slot: int, r: torch.Tensor) -> None:
        if self.keep_recons or self.term_fn is None:
            self.recons[slot] = r
        if self.term_fn is not None:
            self.terms[slot] = self.term_fn(self.states[slot], r)

    def fused(self) -> bool:
        return self.fuser is not None and self.fuser.active

    def match_layout(self, slot: int, r: torch.Tensor) -> torch.Tensor:
        """`r` in its state's memory layout (a fused pass's adjoints may leave it channels-last): the
        eager ops that follow would otherwise mix layouts, which is slow."""
        fmt = memory_format_of(self.states[slot])
        return r if r.dim() != 4 or memory_format_of(r) == fmt else r.contiguous(memory_format=fmt)

    def fuse(self, slot: int, modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor | None:
        """The reconstruction `modules`(x) of state `slot` with its term from one fused kernel, or
        None where the chain is not fused (nothing is recorded then)."""
        if self.fuser is None:  # RacecarNet makes one only for passes that build terms, keeping no recons
            return None
        out = self.fuser(modules, x, self.states[slot], self.rebuild)
        if out is None:
            return None
        r, self.terms[slot] = out
        return r


@dataclass
class _Op:
    module: nn.Module
    rule: ReverseRule
    name: str

    @property
    def role(self) -> Role:
        return self.rule.role


@dataclass
class _Segment:
    pre: list[_Op]
    unit: _Op
    post: list[_Op]
    post_pointwise: list[_Op]  # only the ops re-applied in reverse


def _reapply_ops(ops: list[_Op], r: torch.Tensor) -> torch.Tensor:
    for op in ops:
        r = op.rule.reapply(op.module, r)
    return r


def _flatten(modules: Iterable[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    out = []
    for name, m in modules:
        if type(m) is nn.Sequential:
            out.extend(_flatten((f"{name}.{k}" if name else k, c) for k, c in m.named_children()))
        else:
            out.append((name, m))
    return out


class ReversiblePlan:
    """Compiled form of a module sequence. Holds references to the modules, not ownership."""

    def __init__(self, named_modules: Iterable[tuple[str, nn.Module]]):
        ops = [_Op(m, rule_for(m), name) for name, m in _flatten(named_modules)]
        self.segments: list[_Segment] = []
        self.tail: list[_Op] = []
        pending: list[_Op] = []  # structural/transparent ops waiting for the next unit
        current: _Segment | None = None
        for op in ops:
            if op.role in (Role.LINEAR, Role.BLOCK):
                current = _Segment(pending, op, [], [])
                self.segments.append(current)
                pending = []
            elif op.role is Role.POINTWISE:
                if current is None:
                    raise UnsupportedModuleError(
                        f"pointwise module {type(op.module).__name__} ({op.name}) before the first "
                        "linear layer: the input gets no nonlinearity in the reverse pass"
                    )
                blocking = [p for p in pending if p.role is Role.STRUCTURAL]
                if blocking:
                    raise UnsupportedModuleError(
                        f"pointwise module {type(op.module).__name__} ({op.name}) follows structural "
                        f"module {type(blocking[0].module).__name__}; put norms/activations before "
                        "pooling/reshaping"
                    )
                current.post.extend(pending)
                pending = []
                current.post.append(op)
                current.post_pointwise.append(op)
            else:
                pending.append(op)
        if not self.segments:
            raise UnsupportedModuleError("the network has no linear layer (Linear, Conv2d or a block)")
        self.tail = pending
        self.ops = ops

    @property
    def unit_names(self) -> list[str]:
        return [s.unit.name for s in self.segments]

    # -- forward ---------------------------------------------------------------------------------

    def forward_segment(self, m: int, d: torch.Tensor, trace: Trace) -> tuple[torch.Tensor, Any]:
        """Segment m forward: pre, unit, post. Returns d_{m+1} and what its reverse needs."""
        seg = self.segments[m]
        pre_ctx = []
        for op in seg.pre:
            c: dict[str, Any] = {}
            d = op.rule.forward(op.module, d, c)
            pre_ctx.append(c)
        # "fused": whether this pass fuses its chains (fused.py), whose kernels take channels-last
        # tensors; a rule may then run its adjoint in that layout.
        unit_ctx: dict[str, Any] = {"fused": trace.fused}
        if seg.unit.role is Role.BLOCK:
            d = seg.unit.module.racecar_forward(d, trace, unit_ctx)
        else:
            d = seg.unit.rule.forward(seg.unit.module, d, unit_ctx)
        for op in seg.post:
            d = op.module(d)
        return d, (pre_ctx, unit_ctx)

    def forward(self, x: torch.Tensor, trace: Trace) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """Run forward, adding d_2..d_n to `trace` (the caller owns d_1). Returns the output,
        the state the reverse starts from (before the tail), and the per-segment contexts."""
        ctxs: list[Any] = []
        d = x
        last = len(self.segments) - 1
        for m in range(len(self.segments)):
            d, ctx = self.forward_segment(m, d, trace)
            slot = trace.add_state(d) if m < last else None
            ctxs.append((*ctx, slot))
        start = d
        for op in self.tail:
            d = op.rule.forward(op.module, d, {})
        return d, start, ctxs

    # -- reverse ---------------------------------------------------------------------------------

    def reverse_segment(self, m: int, r: torch.Tensor, trace: Trace, ctx: Any) -> torch.Tensor:
        """Segment m in reverse: pre_m^T(A_m^T(r - b_m)), before post_{m-1} is re-applied."""
        seg = self.segments[m]
        pre_ctx, unit_ctx = ctx[0], ctx[1]
        if seg.unit.role is Role.BLOCK:
            r = seg.unit.module.racecar_reverse(r, trace, unit_ctx)
        else:
            b = seg.unit.rule.bias(seg.unit.module, r)
            if b is not None:
                r = r - b
            r = seg.unit.rule.adjoint(seg.unit.module, r, unit_ctx)
        for op, c in zip(reversed(seg.pre), reversed(pre_ctx)):
            if op.role is Role.STRUCTURAL:
                r = op.rule.adjoint(op.module, r, c)
        return r

    def reapply_post(self, m: int, r: torch.Tensor, trace: Trace | None = None) -> torch.Tensor:
        """post_m (norms, activations) applied to a reverse tensor. A chain that starts with a rule
        that keeps its input anyway (a norm) is rebuilt in backward when `trace.rebuild` is set."""
        ops = self.segments[m].post_pointwise
        if trace is not None and trace.rebuild is not None and ops and ops[0].rule.keeps_input:
            params = [p for op in ops for p in op.module.parameters()]
            return trace.rebuild.chain(partial(_reapply_ops, ops), r, params)
        return _reapply_ops(ops, r)

    def reconstruct(self, m: int, r: torch.Tensor, trace: Trace, slot: int) -> torch.Tensor:
        """post_m applied to a reverse tensor, recorded as the reconstruction of state `slot` (with
        its loss term): one fused kernel where the chain allows it, else the eager ops."""
        fused = trace.fuse(slot, [op.module for op in self.segments[m].post_pointwise], r)
        if fused is not None:
            return fused
        r = trace.match_layout(slot, r)
        r = self.reapply_post(m, r, trace)
        trace.set_recon(slot, r)
        return r

    def reverse(self, r: torch.Tensor, trace: Trace, ctxs: list[Any]) -> torch.Tensor:
        """Reverse from the output state back to the input; writes d'_2..d'_n into `trace` and
        returns the input's reconstruction with no nonlinearity (the caller's post applies)."""
        for m in range(len(self.segments) - 1, -1, -1):
            r = self.reverse_segment(m, r, trace, ctxs[m])
            if m > 0:
                r = self.reconstruct(m - 1, r, trace, ctxs[m - 1][2])
        return r

    def state_names(self) -> list[str]:
        """Names of the states this plan adds, in forward order (each named after its consumer)."""
        names = []
        for m, seg in enumerate(self.segments):
            if seg.unit.role is Role.BLOCK:
                names.extend(seg.unit.module.internal_state_names(seg.unit.name))
            if m + 1 < len(self.segments):
                names.append(self.segments[m + 1].unit.name)
        return names
