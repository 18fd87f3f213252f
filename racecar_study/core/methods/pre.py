"""Pre: greedy layer-wise autoencoder pretraining with tied (transposed) weights, then Std training.

Layer m is trained to reconstruct its input d_m through its own reverse (the same tied-weight
decoder the racecar pass uses), with the layers below frozen. The classifier layer is not
pretrained. Pretraining uses the training optimizer at `pre_lr` (default: the training lr).
"""

import dataclasses

import torch

from racecar_study.core.methods.base import Method, StepOutput, register_method
from racecar_study.core.optim import build_optimizer
from racecar_study.core.plan import Trace


@register_method("pre")
class PretrainMethod(Method):
    def validate(self, net):
        if self.cfg.pre_epochs < 0:
            raise ValueError("method.pre_epochs must be >= 0")

    def prepare(self, net, trainer):
        plan = net.plan
        # the training optimizer (kind, momentum, weight decay), at pre_lr if given
        cfg = dataclasses.replace(trainer.cfg, lr=self.cfg.pre_lr or trainer.cfg.lr)
        net.train()
        for m in range(len(plan.segments) - 1):
            seg = plan.segments[m]
            params = [p for op in (seg.unit, *seg.post) for p in op.module.parameters()]
            if not params:
                continue
            opt = build_optimizer(params, cfg)
            for epoch in range(1, self.cfg.pre_epochs + 1):
                # summed on the device: no host sync per batch
                total, count = torch.zeros((), device=trainer.device), 0
                for x, _y in trainer.batches(trainer.train_data, shuffle=True):
                    with torch.no_grad():
                        d = x
                        for k in range(m):
                            d, _ = plan.forward_segment(k, d, Trace())
                    trace = Trace()
                    h, ctx = plan.forward_segment(m, d, trace)
                    r = plan.reverse_segment(m, h, trace, ctx)
                    if m > 0:
                        r = plan.reapply_post(m - 1, r)
                    loss = (d - r).pow(2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, count = total + loss.detach() * len(x), count + len(x)
                loss_mean = total.item() / max(count, 1)
                trainer.record_pretrain({"layer": m, "epoch": epoch, "recon_loss": loss_mean})
        net.zero_grad(set_to_none=True)

    def step(self, net, x, y):
        logits = net(x)
        task = self.task_loss(logits, y)
        return StepOutput(task, task, task.new_zeros(()), logits)
