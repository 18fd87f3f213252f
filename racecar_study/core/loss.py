"""The racecar reconstruction loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

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
    # mse_loss is one fused kernel whose backward reuses its inputs (tensors autograd holds anyway),
    # where (d - r).pow(2) would keep an extra full-size difference per state.
    per_layer = torch.stack([reconstruction_term(d, r, reduction) for d, r in zip(states, reconstructions)])
    return weigh_terms(per_layer, lambdas)


def reconstruction_term(d: torch.Tensor, r: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """||d - r||^2 of one state in the chosen convention, in float32."""
    scale = 0.5 if reduction == "sum" else 1.0
    return F.mse_loss(r.float(), d.float(), reduction=reduction) * scale


def weigh_terms(per_layer: torch.Tensor, lambdas: float | Sequence[float] | torch.Tensor):
    """(sum_m lambda_m * term_m, terms)."""
    if isinstance(lambdas, (int, float)):
        return float(lambdas) * per_layer.sum(), per_layer
    lam = torch.as_tensor(lambdas, dtype=per_layer.dtype, device=per_layer.device)
    if lam.numel() != per_layer.numel():
        raise ValueError(f"{lam.numel()} lambdas given for {per_layer.numel()} layers")
    return (lam * per_layer).sum(), per_layer
