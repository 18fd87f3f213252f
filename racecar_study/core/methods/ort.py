"""Ort: SRIP orthogonality regularisation (Bansal et al. 2018)."""

import torch

from racecar_study.core.methods.base import Method, StepOutput, register_method


def srip_penalty(weight: torch.Tensor, iters: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """sigma_max(W W^T - I)^2 with W as (out, rest): out-channels are the Gram dimension.
    sigma_max by power iteration from a random vector, differentiable as in the reference."""
    w = weight.reshape(weight.shape[0], -1).float()
    gram = w @ w.t() - torch.eye(w.shape[0], device=w.device, dtype=w.dtype)
    v = torch.randn(w.shape[0], 1, generator=generator).to(w.device)
    for _ in range(iters):
        v = gram @ v
        v = v / v.norm().clamp_min(1e-12)
    sigma = (gram @ v).norm()  # |largest eigenvalue| of the symmetric Gram residual
    return sigma**2


@register_method("ort")
class OrtMethod(Method):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.generator = torch.Generator().manual_seed(int(cfg.extra.get("seed", 0)))

    def validate(self, net):
        if self.cfg.ort_weight < 0:
            raise ValueError("method.ort_weight must be >= 0")

    def step(self, net, x, y):
        logits = net(x)
        task = self.task_loss(logits, y)
        reg = sum(
            srip_penalty(m.weight, self.cfg.ort_power_iters, self.generator) for m in net.linear_layers()
        )
        reg = self.cfg.ort_weight * reg
        return StepOutput(task + reg, task, reg, logits)
