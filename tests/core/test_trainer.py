"""The trainer: bitwise equal to a plain loop for std, every method trains, checkpoints resume exactly."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from racecar_study.core import (
    Callback,
    MethodConfig,
    RacecarNet,
    TrainConfig,
    Trainer,
    build_method,
    method_names,
)
from racecar_study.core.callbacks import Checkpoint, CsvMetrics
from racecar_study.core.methods import method_class
from racecar_study.core.trainer import PER_STATE_METRICS


def _net() -> RacecarNet:
    return RacecarNet(
        nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))
    )


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.flatten(1)[:, :3].argmax(1)).long()
    return x, y


def test_std_is_bitwise_identical_to_a_plain_loop():
    x, y = _data()
    torch.manual_seed(3)
    net = _net()
    Trainer(
        net, build_method(MethodConfig("std")), TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=3)
    ).fit((x, y))

    torch.manual_seed(3)
    ref = _net()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        ref.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 16):
            idx = order[i : i + 16]
            loss = F.cross_entropy(ref(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for (k, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("name", method_names())
def test_every_method_trains(name):
    x, y = _data(120)
    torch.manual_seed(0)
    net = _net()
    cfg = MethodConfig(name, lam=1e-3, reduction="mean", pre_epochs=1)
    tr = Trainer(net, build_method(cfg), TrainConfig(epochs=8, batch_size=30, lr=1e-2))
    hist = tr.fit((x, y), (x[:40], y[:40]))
    assert hist[-1]["task_loss"] < hist[0]["task_loss"]
    for key in ("task_loss", "reg_loss", "recon_err_0", "recon_err_1", "val_acc", "lr"):
        assert key in hist[-1], key
    if name in ("rr", "ort"):
        assert hist[-1]["reg_loss"] > 0
    # the per-state metrics it declares (the pre-launch metric check reads them) are what it reports
    reported = {k.rpartition("_")[0] for k in hist[-1] if k.rpartition("_")[0] in PER_STATE_METRICS}
    assert reported == set(method_class(name).state_metrics)
    assert {f"{stem}_1" for stem in reported} <= set(hist[-1])


@pytest.mark.parametrize("name", method_names())
def test_lambda_moves_exactly_the_methods_that_declare_it(name):
    """`weighed_by_lam` (the spec refuses such a method with no lambda, as it would train as std)
    is true exactly where method.lam changes the loss of a step."""
    x, y = _data(30)
    losses = []
    for lam in (0.0, 1.0):
        torch.manual_seed(0)
        net = _net()
        method = build_method(MethodConfig(name, lam=lam, reduction="mean"))
        losses.append(method.step(net, x, y).loss.item())
    assert (losses[0] != losses[1]) == method_class(name).weighed_by_lam, losses


@pytest.mark.parametrize("name", method_names())
def test_a_last_batch_of_one_sample_is_skipped(name):
    """61 samples at batch 20: the fourth batch would hold one, on which batch norm cannot train
    (torch raises). It is skipped; a new shuffle puts that sample in another batch next epoch."""
    x, y = _data(61)
    cfg = MethodConfig(name, lam=1e-3, reduction="mean", pre_epochs=1)
    tr = Trainer(_net(), build_method(cfg), TrainConfig(epochs=2, batch_size=20, lr=1e-2))
    assert len(tr.fit((x, y))) == 2
    assert [len(b[0]) for b in tr.batches((x, y), shuffle=True)] == [20, 20, 20]
    assert [len(b[0]) for b in tr.batches((x, y), shuffle=False)] == [20, 20, 20, 1]  # evaluation sees all


@pytest.mark.parametrize(("optimizer", "pre_lr"), [("sgd", None), ("adamw", 0.05)])
def test_pretraining_uses_the_training_optimizer(optimizer, pre_lr, monkeypatch):
    """Pre's autoencoder phase runs with the optimizer the run trains with, at pre_lr if given."""
    from racecar_study.core.methods import pre

    asked, build = [], pre.build_optimizer

    def spy(params, cfg):
        asked.append((cfg.optimizer, cfg.lr, cfg.momentum))
        return build(params, cfg)

    monkeypatch.setattr(pre, "build_optimizer", spy)
    x, y = _data(60)
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=1, batch_size=30, lr=0.05, optimizer=optimizer, momentum=0.5)
    tr = Trainer(_net(), build_method(MethodConfig("pre", pre_epochs=8, pre_lr=pre_lr)), cfg)
    tr.fit((x, y))
    assert asked == [(optimizer, pre_lr or 0.05, 0.5)]  # one pretrained layer: the classifier is not
    losses = [r["recon_loss"] for r in tr.pretrain_history]
    assert len(losses) == 8 and losses[-1] < 0.9 * losses[0], losses


def test_a_fit_that_fails_mid_epoch_keeps_the_last_whole_epochs_checkpoint(tmp_path):
    """An error part-way through epoch 3 leaves checkpoint.pt at epoch 2 with epoch 2's weights,
    not the half-trained ones (which a resume would take for epoch 2's)."""
    x, y = _data(120)

    def trainer(epochs, callbacks=()):
        torch.manual_seed(0)
        return Trainer(
            _net(), build_method(MethodConfig("std")), TrainConfig(epochs=epochs, batch_size=30), callbacks
        )

    tr = trainer(5, [Checkpoint(tmp_path / "c.pt", every=1), CsvMetrics(tmp_path / "m.csv")])
    step, calls = tr.method.step, []

    def failing(net, xb, yb):
        calls.append(1)
        if len(calls) == 4 * 2 + 3:  # 4 batches per epoch: the third batch of epoch 3
            raise RuntimeError("boom")
        return step(net, xb, yb)

    tr.method.step = failing
    with pytest.raises(RuntimeError, match="boom"):
        tr.fit((x, y))
    assert tr.interrupted
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    reference = trainer(2)
    reference.fit((x, y))
    assert saved["epoch"] == 2
    for key, value in reference.net.state_dict().items():
        assert torch.equal(saved["model"][key], value), key
    assert len((tmp_path / "m.csv").read_text().strip().splitlines()) == 1 + 2


class _StopAt(Callback):
    """Simulates a killed run: stops after `epoch` epochs."""

    def __init__(self, epoch):
        self.at = epoch

    def on_epoch_end(self, trainer, metrics):
        trainer.should_stop = trainer.epoch >= self.at


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    x, y = _data()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=1e-2, schedule="cosine")
    mcfg = MethodConfig("rr", lam=1e-3)
    torch.manual_seed(0)
    full = Trainer(_net(), build_method(mcfg), cfg)
    full.fit((x, y))

    torch.manual_seed(0)
    first = Trainer(_net(), build_method(mcfg), cfg, [Checkpoint(tmp_path / "ck.pt"), _StopAt(2)])
    first.fit((x, y))
    torch.manual_seed(123)
    resumed = Trainer(_net(), build_method(mcfg), cfg)
    resumed.load_checkpoint(tmp_path / "ck.pt")
    assert resumed.epoch == 2
    resumed.fit((x, y))
    for (k, a), b in zip(full.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_metrics_csv_has_one_row_per_epoch(tmp_path):
    x, y = _data()
    torch.manual_seed(0)
    Trainer(
        _net(),
        build_method(MethodConfig("rr", lam=1e-4)),
        TrainConfig(epochs=3, batch_size=20),
        [CsvMetrics(tmp_path / "m.csv")],
    ).fit((x, y), (x, y))
    lines = (tmp_path / "m.csv").read_text().strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch,")


def test_bad_config_is_a_value_error():
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(_net(), build_method(MethodConfig("std")), TrainConfig(optimizer="lbfgs"))
    with pytest.raises(ValueError, match="unknown method"):
        build_method(MethodConfig("xx"))
    with pytest.raises(ValueError, match="lambdas|values"):
        Trainer(_net(), build_method(MethodConfig("rr", lam=[1.0])), TrainConfig())


def test_bf16_autocast_keeps_racecar_loss_in_float32():
    x, y = _data(32)
    torch.manual_seed(0)
    tr = Trainer(_net(), build_method(MethodConfig("rr", lam=1e-3)), TrainConfig(epochs=1, precision="bf16"))
    with tr._autocast():
        out = tr.method.step(tr.net, x, y)
    assert out.reg_loss.dtype == torch.float32 and torch.isfinite(out.loss)
