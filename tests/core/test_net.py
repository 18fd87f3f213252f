"""RacecarNet: the reverse pass against an independent oracle, and its promises."""

import pytest
import torch
from torch import nn

from racecar_study.core import ChannelPadShortcut, RacecarNet, ResidualBlock, UnsupportedModuleError


def _linear_net() -> RacecarNet:
    """Only linear operations, no biases: the reverse pass is exactly the VJP of the forward map."""
    return RacecarNet(
        nn.Sequential(
            nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1, bias=False),
            nn.AvgPool2d(2),
            ResidualBlock(
                nn.Sequential(
                    nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False),
                    nn.Conv2d(8, 8, 3, padding=1, bias=False),
                ),
                ChannelPadShortcut(6, 8, 2),
            ),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 5, bias=False),
        )
    ).double()


def test_reverse_equals_autograd_vjp():
    torch.manual_seed(0)
    net = _linear_net()
    x = torch.randn(3, 1, 17, 17, dtype=torch.float64, requires_grad=True)
    logits, states, recons = net.racecar(x)
    (vjp,) = torch.autograd.grad(net(x), x, logits.detach())
    assert torch.allclose(recons[0], vjp, atol=1e-12)
    # every intermediate reconstruction is the VJP of the map from that state to the output
    for d, r in zip(states[1:], recons[1:]):
        assert r.shape == d.shape


def test_reverse_with_biases_and_nonlinearities_follows_the_formula():
    torch.manual_seed(1)
    l1, l2 = nn.Linear(6, 5), nn.Linear(5, 3)
    bn = nn.BatchNorm1d(5)
    net = RacecarNet(nn.Sequential(l1, bn, nn.ReLU(), l2))
    x = torch.randn(8, 6)
    logits, states, recons = net.racecar(x)
    d2 = torch.relu(bn(l1(x)))
    assert torch.allclose(states[1], d2)
    r2 = (logits - l2.bias) @ l2.weight
    mu, var = r2.mean(0), r2.var(0, unbiased=False)
    d2r = torch.relu((r2 - mu) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias)
    assert torch.allclose(recons[1], d2r, atol=1e-6)
    assert torch.allclose(recons[0], (d2r - l1.bias) @ l1.weight, atol=1e-6)


def test_plain_forward_matches_racecar_logits():
    torch.manual_seed(0)
    net = RacecarNet(
        nn.Sequential(
            nn.Conv2d(1, 3, 3),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(3 * 3 * 3, 4),
        )
    )
    x = torch.randn(4, 1, 8, 8)
    net.eval()
    assert torch.equal(net(x), net.racecar(x).logits)


def test_reverse_pass_keeps_running_statistics():
    torch.manual_seed(0)
    net = RacecarNet(
        nn.Sequential(
            nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3), nn.BatchNorm1d(3)
        )
    )
    x = torch.randn(10, 1, 4, 4)
    net.train()
    net(x)  # one plain forward: what the running stats must look like after a racecar pass too
    expected = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(0)
    net2 = RacecarNet(
        nn.Sequential(
            nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3), nn.BatchNorm1d(3)
        )
    )
    net2.train()
    net2.racecar(x)  # forward + reverse: only the forward may update the statistics
    for k, v in net2.state_dict().items():
        assert torch.equal(v, expected[k]), k
    net2.eval()
    before = {k: v.clone() for k, v in net2.state_dict().items()}
    net2.racecar(x)
    for k, v in net2.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_gradients_flow_through_reverse_and_states():
    torch.manual_seed(0)
    l1 = nn.Linear(4, 3)
    net = RacecarNet(nn.Sequential(l1, nn.Tanh(), nn.Linear(3, 2)))
    _, states, recons = net.racecar(torch.randn(5, 4))
    loss = sum(((d - r) ** 2).sum() for d, r in zip(states, recons))
    loss.backward()
    assert l1.weight.grad is not None and l1.weight.grad.abs().sum() > 0


def test_unsupported_module_names_its_type():
    with pytest.raises(UnsupportedModuleError, match="LSTM.*supported: .*Linear"):
        RacecarNet(nn.Sequential(nn.Linear(3, 3), nn.LSTM(3, 3)))


def test_pointwise_before_first_linear_is_rejected():
    with pytest.raises(UnsupportedModuleError, match="before the first linear"):
        RacecarNet(nn.Sequential(nn.ReLU(), nn.Linear(3, 3)))


def test_state_names_align_with_states():
    net = _linear_net()
    out = net.racecar(torch.randn(2, 1, 17, 17, dtype=torch.float64))
    assert len(net.state_names) == len(out.states) == len(out.reconstructions)
    assert net.state_names[0] == "body.0"
    assert any(".branch." in n for n in net.state_names)


def test_inline_terms_equal_racecar_loss():
    from racecar_study.core import racecar_loss
    from racecar_study.models import build_model

    torch.manual_seed(0)
    net = build_model("resnet", (3, 12, 12), 4, depth=8)
    x = torch.randn(4, 3, 12, 12)
    out = net.racecar(x, reduction="sum")
    _, per_layer = racecar_loss(out.states, out.reconstructions, 1.0, "sum")
    assert torch.allclose(out.terms, per_layer)
