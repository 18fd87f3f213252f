"""RR: racecar training, the task loss plus the reverse-pass reconstruction loss."""

from racecar_study.core.loss import REDUCTIONS, weigh_terms
from racecar_study.core.methods.base import Method, StepOutput, register_method


@register_method("rr")
class RacecarMethod(Method):
    state_metrics = ("recon_err", "reg_term")
    weighed_by_lam = True

    def validate(self, net):
        lam = self.cfg.lam
        if self.cfg.reduction not in REDUCTIONS:
            raise ValueError(f"method.reduction must be one of {REDUCTIONS}, got {self.cfg.reduction!r}")
        lams = lam if isinstance(lam, (list, tuple)) else [lam]
        if any(v < 0 for v in lams):
            raise ValueError("method.lam must be >= 0")
        if isinstance(lam, (list, tuple)) and len(lam) != net.num_states:
            raise ValueError(
                f"method.lam has {len(lam)} values but the network has {net.num_states} "
                f"reconstructed states ({', '.join(net.state_names)})"
            )

    def step(self, net, x, y):
        out = net.racecar(x, reduction=self.cfg.reduction, keep_reconstructions=False)
        task = self.task_loss(out.logits, y)
        reg, per_layer = weigh_terms(out.terms, self.cfg.lam)
        return StepOutput(task + reg, task, reg, out.logits, per_layer)
