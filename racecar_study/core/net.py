"""RacecarNet: a sequential network with a racecar reverse pass through its own weights."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from racecar_study.core.fused import ChainFuser
from racecar_study.core.loss import reconstruction_term
from racecar_study.core.plan import ReversiblePlan, Trace
from racecar_study.core.rebuild import Rebuilder


@dataclass
class RacecarOutput:
    logits: torch.Tensor
    states: list[torch.Tensor]  # d_1 .. d_n
    reconstructions: list[torch.Tensor]  # d'_1 .. d'_n, aligned with states
    terms: torch.Tensor | None = None  # per-state reconstruction terms, when asked for

    def __iter__(self):
        return iter((self.logits, self.states, self.reconstructions))


class RacecarNet(nn.Module):
    """Wraps an `nn.Sequential` of supported modules (nested Sequentials and residual blocks too).

    `net(x)` is the plain forward pass and costs nothing extra. `net.racecar(x)` also runs the
    reverse pass and returns `(logits, states, reconstructions)`.
    """

    def __init__(self, body: nn.Sequential | list[nn.Module], rebuild: bool = True, fuse: bool = True):
        super().__init__()
        # Rebuild re-applied norm chains in backward instead of keeping their outputs (rebuild.py):
        # bitwise the same gradients. ResNet-20: peak 1.70x of Std's instead of 1.84x, for about 5%
        # more step time; set False where time matters more than memory.
        self.rebuild = rebuild
        # Fuse each re-applied chain with its loss term into one compiled kernel per direction, with
        # the adjoints channels-last on CPU (fused.py): ResNet-20's RR step 2.23x -> 1.98x a Std
        # step. Chains too small, of other shapes or under autocast run eagerly either way.
        self.fuse = fuse
        self.body = body if isinstance(body, nn.Sequential) else nn.Sequential(*body)
        self.plan = ReversiblePlan([("body", self.body)])
        self.state_names: list[str] = [self.plan.segments[0].unit.name, *self.plan.state_names()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def racecar(
        self, x: torch.Tensor, reduction: str | None = None, keep_reconstructions: bool = True
    ) -> RacecarOutput:
        """Forward and reverse pass. With `reduction`, the per-state reconstruction terms are built
        as the reverse pass goes (`output.terms`): autograd then runs each term's backward just in
        time, which lowers the backward pass's peak memory (ResNet-20: 2.8x -> 1.84x of Std's).
        `keep_reconstructions=False` (training, which needs only the terms) returns no
        reconstructions, so each is freed as soon as the reverse pass has used it."""
        trace = Trace(keep_recons=keep_reconstructions)
        if reduction is not None:
            trace.term_fn = partial(reconstruction_term, reduction=reduction)
            if self.fuse and not keep_reconstructions:  # training: terms only
                trace.fuser = ChainFuser(reduction)
        trace.add_state(x)
        logits, start, ctxs = self.plan.forward(x, trace)
        if self.rebuild and torch.is_grad_enabled():
            trace.rebuild = Rebuilder()
        with trace.rebuild or contextlib.nullcontext():
            first = self.plan.reverse(start, trace, ctxs)
            if trace.fuse(0, [], first) is None:  # the input's term (no nonlinearity)
                trace.set_recon(0, trace.match_layout(0, first))
        recons = trace.recons if keep_reconstructions else []
        out = RacecarOutput(logits, trace.states, recons)  # type: ignore[arg-type]
        if reduction is not None:
            out.terms = torch.stack(trace.terms)  # type: ignore[arg-type]
        return out

    @property
    def num_states(self) -> int:
        return len(self.state_names)

    def linear_layers(self) -> list[nn.Module]:
        """Every Linear/Conv2d in forward order (blocks included): the weights a regulariser sees."""
        return [m for m in self.body.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]

    def first_layer(self) -> nn.Module:
        """The first Linear/Conv2d the input meets (inside a leading block, if there is one)."""
        return self.linear_layers()[0]
