"""Every registered architecture x every method: one training step, reverse shapes, forward parity."""

import math

import pytest
import torch

from racecar_study.core.methods import MethodConfig, build_method, method_names
from racecar_study.models import build_model, list_models


def input_shape_for(arch: str) -> tuple[int, int, int]:
    if arch in ("resnet", "resnet20"):
        return (3, 32, 32)
    if arch.startswith("resnet"):  # the deeper fixed-depth aliases: a small image keeps the suite fast
        return (3, 8, 8)
    return (1, 28, 28)


def _net_and_batch(arch):
    torch.manual_seed(0)
    shape = input_shape_for(arch)
    net = build_model(arch, shape, 10)
    x = torch.randn(4, *shape)
    y = torch.randint(0, 10, (4,))
    return net, x, y


@pytest.mark.parametrize("method_name", method_names())
@pytest.mark.parametrize("arch", list_models())
def test_one_step_trains(arch, method_name):
    net, x, y = _net_and_batch(arch)
    method = build_method(MethodConfig(name=method_name, lam=0.1, reduction="mean"))
    method.validate(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in net.parameters()]
    net.train()
    out = method.step(net, x, y)
    for t in (out.loss, out.task_loss, out.reg_loss):
        assert math.isfinite(t.item())
    if out.per_layer is not None:
        assert out.per_layer.shape == (net.num_states,) and torch.isfinite(out.per_layer).all()
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    assert net.first_layer().weight.grad.abs().sum() > 0
    for (name, p), old in zip(net.named_parameters(), before):
        if p.grad is not None and p.grad.abs().sum() > 0:
            assert not torch.equal(p.detach(), old), f"{name} did not change"


@pytest.mark.parametrize("arch", list_models())
def test_reverse_shapes_match_forward(arch):
    net, x, _ = _net_and_batch(arch)
    out = net.racecar(x)
    assert len(out.states) == len(out.reconstructions) == net.num_states == len(net.lambda_layers)
    assert net.lambda_layers == net.state_names
    for name, s, r in zip(net.state_names, out.states, out.reconstructions):
        assert r.shape == s.shape, name
        assert torch.isfinite(r).all(), name
    assert out.logits.shape == (4, 10)


@pytest.mark.parametrize("arch", list_models())
def test_forward_equals_racecar_logits(arch):
    net, x, _ = _net_and_batch(arch)
    with torch.no_grad():
        net.eval()
        assert torch.allclose(net(x), net.racecar(x).logits, atol=1e-6)
        net.train()  # batch statistics: the same batch gives the same normalisation
        assert torch.allclose(net(x), net.racecar(x).logits, atol=1e-6)


@pytest.mark.parametrize("arch", list_models())
def test_reverse_pass_leaves_running_stats_alone(arch):
    net, x, _ = _net_and_batch(arch)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    with torch.no_grad():
        net(x)
        plain = {k: v.clone() for k, v in net.state_dict().items()}
        net.load_state_dict(start)
        net.racecar(x)
    for k, v in net.state_dict().items():
        assert torch.equal(v, plain[k]), k


VARIANTS = [
    ("resnet", (3, 16, 16), {"depth": 8, "shortcut": "B"}),
    ("resnet", (3, 16, 16), {"depth": 8, "batch_norm": False, "shortcut": "B", "activation": "tanh"}),
    ("resnet", (3, 16, 16), {"depth": 8, "width": 2, "activation": "silu"}),
    ("mlp", (1, 8, 8), {"dropout": 0.3, "activation": "leaky_relu"}),
    ("mlp", (1, 8, 8), {"batch_norm": False, "activation": "tanh", "widths": [16, 16, 16]}),
    ("convnet", (3, 12, 12), {"pool": "avg", "kernel": 5, "activation": "gelu"}),
    ("convnet", (3, 12, 12), {"pool": "none", "batch_norm": False, "channels": [4, 8, 8]}),
    ("lenet", (3, 32, 32), {"activation": "tanh"}),
]


@pytest.mark.parametrize("arch,shape,options", VARIANTS, ids=lambda v: str(v))
def test_option_variants_take_a_racecar_step(arch, shape, options):
    torch.manual_seed(0)
    net = build_model(arch, shape, 5, **options)
    x, y = torch.randn(4, *shape), torch.randint(0, 5, (4,))
    out = net.racecar(x)
    assert all(r.shape == s.shape for s, r in zip(out.states, out.reconstructions))
    net.eval()  # dropout makes train-mode passes differ
    with torch.no_grad():
        assert torch.allclose(net(x), net.racecar(x).logits, atol=1e-6)
    net.train()
    step = build_method(MethodConfig(name="rr", lam=1.0, reduction="mean")).step(net, x, y)
    assert torch.isfinite(step.loss)
    step.loss.backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("arch", list_models())
def test_layerwise_pretraining_runs(arch):
    """`pre` pretrains every layer through its own reverse before the supervised epochs."""
    from racecar_study.core.trainer import TrainConfig, Trainer

    net, x, y = _net_and_batch(arch)
    method = build_method(MethodConfig(name="pre", pre_epochs=2))
    trainer = Trainer(net, method, TrainConfig(epochs=1, batch_size=4, device="cpu"))
    trainer.fit((x, y))
    rows = trainer.pretrain_history
    layers = sorted({r["layer"] for r in rows})
    assert layers == list(range(len(net.plan.segments) - 1))  # the classifier is not pretrained
    assert [r["epoch"] for r in rows] == [1, 2] * len(layers)
    assert all(math.isfinite(r["recon_loss"]) for r in rows)
