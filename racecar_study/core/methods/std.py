"""Std: the plain network, lambda = 0."""

from racecar_study.core.methods.base import Method, StepOutput, register_method


@register_method("std")
class StdMethod(Method):
    def step(self, net, x, y):
        logits = net(x)
        task = self.task_loss(logits, y)
        return StepOutput(task, task, task.new_zeros(()), logits)
