"""The racecar reconstruction loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch

REDUCTIONS = ("sum", "mean")


def racecar_loss(
    states: Sequence[torch.Tensor],
    reconstructions: Sequence[torch.Tensor],
    lambdas: float | Sequence[float] | torch.Tensor,
    reduction: str = "sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_m lambda_m * ||d_m - d'_m||^2, computed in float32.

    reduction="sum": 0.5 * sum over batch and elements (TensorFlow's l2_loss, as the reference code),
    hence tiny lambdas. reduction="mean": the mean over batch and elements, so one lambda transfers
    across architectures and batch sizes. Returns (weighted total, unweighted per-layer terms).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if len(states) != len(reconstructions):
        raise ValueError(f"{len(states)} states but {len(reconstructions)} reconstructions")
    per_layer = torch.stack([reconstruction_term(d, r, reduction) for d, r in zip(states, reconstructions)])
    return weigh_terms(per_layer, lambdas)


def reconstruction_term(d: torch.Tensor, r: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """||d - r||^2 of one state in the chosen convention, in float32."""
    r, d = r.float(), d.float()
    return _SquaredError.apply(r, d, term_scale(d, reduction))


def term_scale(d: torch.Tensor, reduction: str) -> float:
    """The factor on sum((d - r)^2) in the chosen convention."""
    return 0.5 if reduction == "sum" else 1.0 / max(d.numel(), 1)


class _SquaredError(torch.autograd.Function):
    """scale * sum((r - d)^2). Autograd's mse_loss backward zero-fills and writes a gradient for each
    input in a separate kernel; here the difference is formed once and the state's gradient is its
    negation, which saves a pass and two fills per state on every RR step. Keeps r and d, tensors
    the graph holds anyway."""

    @staticmethod
    def forward(ctx, r, d, scale: float):
        ctx.save_for_backward(r, d)
        ctx.scale = scale
        with torch.autocast(r.device.type, enabled=False):  # the term stays float32
            diff = (r - d).flatten()
            return torch.dot(diff, diff) * scale

    @staticmethod
    def backward(ctx, grad):
        r, d = ctx.saved_tensors
        grad_r = torch.sub(r, d).mul_(grad * (2.0 * ctx.scale))
        grad_d = grad_r.neg() if ctx.needs_input_grad[1] else None
        return (grad_r if ctx.needs_input_grad[0] else None), grad_d, None


def weigh_terms(per_layer: torch.Tensor, lambdas: float | Sequence[float] | torch.Tensor):
    """(sum_m lambda_m * term_m, terms)."""
    if isinstance(lambdas, (int, float)):
        return float(lambdas) * per_layer.sum(), per_layer
    lam = torch.as_tensor(lambdas, dtype=per_layer.dtype, device=per_layer.device)
    if lam.numel() != per_layer.numel():
        raise ValueError(f"{lam.numel()} lambdas given for {per_layer.numel()} layers")
    return (lam * per_layer).sum(), per_layer
