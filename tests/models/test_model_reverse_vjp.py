"""Nets made of linear operations only: the reverse pass must equal autograd's vector-Jacobian product.

Each reconstruction d'_m must be J_m^T y, with J_m the Jacobian of the logits y with respect to the
state d_m (biases zeroed, float64). Max pooling is linear at the data point (fixed argmax), so it is
included. peak_mlp has no linear variant (BN and ReLU are fixed) and is not checked here.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from racecar_study.core import ResidualBlock
from racecar_study.core.plan import Trace
from racecar_study.models import build_model
from racecar_study.models.shortcuts import projection_shortcut

LINEAR = {"batch_norm": False, "activation": "identity"}
VARIANTS = [
    ("linear", (1, 6, 6), {"bias": False}),
    ("mlp", (1, 6, 6), {"widths": [7, 5], **LINEAR}),
    ("convnet", (2, 8, 8), {"channels": [3, 4], "pool": "max", **LINEAR}),
    ("convnet", (2, 8, 8), {"channels": [3, 4], "pool": "avg", **LINEAR}),
    ("convnet", (2, 9, 7), {"channels": [3, 4], "pool": "none", "kernel": 5, **LINEAR}),
    ("lenet", (1, 12, 12), {"activation": "identity"}),
    ("resnet", (2, 8, 8), {"depth": 8, "shortcut": "A", **LINEAR}),
    ("resnet", (2, 7, 9), {"depth": 14, "shortcut": "B", **LINEAR}),
]


@pytest.mark.parametrize("arch,shape,options", VARIANTS, ids=lambda v: str(v))
def test_reverse_is_vjp(arch, shape, options):
    torch.manual_seed(0)
    net = build_model(arch, shape, 3, **options).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    x = torch.randn(2, *shape, dtype=torch.float64, requires_grad=True)
    out = net.racecar(x)
    cotangent = out.logits.detach()
    for name, state, recon in zip(net.state_names, out.states, out.reconstructions):
        (vjp,) = torch.autograd.grad(out.logits, state, cotangent, retain_graph=True)
        assert torch.allclose(recon, vjp, rtol=1e-9, atol=1e-10), name


def test_projection_shortcut_reverses_through_its_conv():
    torch.manual_seed(0)
    sc = projection_shortcut(2, 4, stride=2).double()
    block = ResidualBlock(nn.Sequential(nn.Conv2d(2, 4, 3, 2, 1, bias=False)), sc).double()
    x = torch.randn(3, 2, 7, 7, dtype=torch.float64)
    ctx, trace = {}, Trace()
    y = block.racecar_forward(x, trace, ctx)
    assert torch.allclose(y, block(x)) and trace.states == []
    r = torch.randn_like(y)
    _, vjp_short = torch.func.vjp(lambda t: F.conv2d(t, sc[0].weight, stride=2), x)
    _, vjp_branch = torch.func.vjp(lambda t: F.conv2d(t, block.branch[0].weight, stride=2, padding=1), x)
    assert torch.allclose(block.racecar_reverse(r, trace, ctx), vjp_short(r)[0] + vjp_branch(r)[0])
