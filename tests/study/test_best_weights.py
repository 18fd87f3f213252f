"""The best weights a trial keeps for its MLflow model survive a restart through its checkpoint."""

import torch
from torch import nn

from racecar_study.study.best import BestWeights
from racecar_study.study.hooks import TrialInfo
from racecar_study.study.spec import StudySpec
from racecar_study.study.tracking_hooks import TrackingTrial


def _net(fill: float) -> nn.Module:
    net = nn.Linear(3, 2)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(fill)
    return net


def test_offer_keeps_only_better_values_by_mode():
    best = BestWeights("max")
    assert best.offer(0.5, 1, _net(1.0))
    assert not best.offer(0.4, 2, _net(2.0))
    assert not best.offer(True, 3, _net(3.0)) and not best.offer(None, 3, _net(3.0))
    assert best.offer(0.9, 4, _net(4.0))
    assert (best.value, best.epoch) == (0.9, 4)
    assert torch.equal(best.state["weight"], torch.full((2, 3), 4.0))
    low = BestWeights("min")
    low.offer(0.5, 1, _net(1.0))
    assert not low.offer(0.6, 2, _net(2.0)) and low.offer(0.1, 3, _net(3.0))


def test_copies_are_detached_from_the_live_weights():
    best, net = BestWeights("max"), _net(1.0)
    best.offer(1.0, 1, net)
    with torch.no_grad():
        net.weight.fill_(7.0)
    assert torch.equal(best.state["weight"], torch.full((2, 3), 1.0))


def test_saved_with_a_checkpoint_and_loaded_after_a_restart(tmp_path):
    best = BestWeights("max")
    assert not best.load(tmp_path)  # nothing saved yet
    best.offer(0.8, 5, _net(5.0))
    best.save(tmp_path)
    again = BestWeights("max")
    assert again.load(tmp_path)
    assert (again.value, again.epoch) == (0.8, 5)
    assert torch.equal(again.state["bias"], torch.full((2,), 5.0))
    assert not again.offer(0.7, 9, _net(9.0))  # the restored best still wins


class _Run:
    net, trainer = _net(0.0), None


def test_tracking_trial_resumes_its_best_from_the_checkpoint(tmp_path):
    saved = BestWeights("max")
    saved.offer(0.9, 3, _net(3.0))
    saved.save(tmp_path)
    spec = StudySpec.model_validate({"name": "t", "data": {"name": "peak"}, "model": {"arch": "peak_mlp"}})
    info = TrialInfo("t1", "trial_1", spec, {}, {}, True, "node", "host", _Run(), checkpoint_dir=tmp_path)
    hook = TrackingTrial()
    hook.on_trial_start(info)
    assert (hook.best.value, hook.best.epoch) == (0.9, 3)
    assert torch.equal(hook.best.state["weight"], torch.full((2, 3), 3.0))
