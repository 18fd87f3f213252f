"""Contract: every registered module type honours its reverse rule.

Linear and structural ops: the reverse is the adjoint, <A x, y> = <x, A^T y> in float64, with
A x taken as the forward's Jacobian-vector product at the data (exact for a linear op, and the
right linearisation for max pooling, whose adjoint uses the forward indices).
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from racecar_study.core import ChannelPadShortcut, ResidualBlock
from racecar_study.core.rules import Role, rule_for, supported_types


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# One or more (module, input shape) examples per registered type; a new rule needs an entry here.
EXAMPLES: dict[type, list[tuple[nn.Module, tuple[int, ...]]]] = {
    nn.Linear: [(nn.Linear(7, 5), (4, 7)), (nn.Linear(3, 6, bias=False), (2, 3))],
    nn.Conv2d: [
        (nn.Conv2d(3, 4, 3), (2, 3, 9, 9)),
        (nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 10, 10)),
        (nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 11, 11)),
        (nn.Conv2d(4, 6, 3, stride=3, padding=2, dilation=2), (2, 4, 13, 12)),
        (nn.Conv2d(4, 6, (3, 1), stride=(2, 1), padding=(1, 0), groups=2), (2, 4, 9, 7)),
        (nn.Conv2d(2, 2, 5, stride=2, padding=2, bias=False), (1, 2, 8, 8)),
    ],
    nn.Flatten: [(nn.Flatten(), (3, 2, 4, 5))],
    nn.Unflatten: [(nn.Unflatten(1, (2, 5)), (3, 10))],
    nn.MaxPool2d: [
        (nn.MaxPool2d(2), (2, 3, 8, 8)),
        (nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 9)),
        (nn.MaxPool2d(3, stride=1), (1, 2, 6, 7)),
    ],
    nn.AvgPool2d: [
        (nn.AvgPool2d(2), (2, 3, 8, 8)),
        (nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 9, 9)),
        (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9, 9)),
        (nn.AvgPool2d(2, ceil_mode=True), (1, 2, 7, 7)),
    ],
    nn.AdaptiveAvgPool2d: [
        (nn.AdaptiveAvgPool2d(1), (2, 3, 5, 6)),
        (nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 7, 8)),
    ],
    ChannelPadShortcut: [
        (ChannelPadShortcut(3, 6, 2), (2, 3, 8, 8)),
        (ChannelPadShortcut(4, 8, 2), (1, 4, 7, 7)),
    ],
    nn.Dropout: [(nn.Dropout(0.5), (4, 6))],
    nn.Dropout1d: [(nn.Dropout1d(0.5), (4, 3, 6))],
    nn.Dropout2d: [(nn.Dropout2d(0.5), (4, 3, 5, 5))],
    nn.ReLU: [(nn.ReLU(), (4, 6))],
    nn.LeakyReLU: [(nn.LeakyReLU(0.1), (4, 6))],
    nn.GELU: [(nn.GELU(), (4, 6))],
    nn.Tanh: [(nn.Tanh(), (4, 6))],
    nn.SiLU: [(nn.SiLU(), (4, 6))],
    nn.Sigmoid: [(nn.Sigmoid(), (4, 6))],
    nn.ELU: [(nn.ELU(), (4, 6))],
    nn.Identity: [(nn.Identity(), (4, 6))],
    nn.BatchNorm1d: [(nn.BatchNorm1d(6), (8, 6))],
    nn.BatchNorm2d: [(nn.BatchNorm2d(3), (4, 3, 5, 5))],
    ResidualBlock: [
        (
            ResidualBlock(
                nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1))
            ),
            (2, 3, 6, 6),
        ),
    ],
}

CASES = [(t, m, s) for t, items in EXAMPLES.items() for m, s in items]
IDS = [f"{t.__name__}-{i}" for t, items in EXAMPLES.items() for i in range(len(items))]


def test_every_registered_type_has_an_example():
    missing = [t.__name__ for t in supported_types() if t not in EXAMPLES]
    assert not missing, f"add contract examples for: {missing}"


@pytest.mark.parametrize(("mtype", "module", "shape"), CASES, ids=IDS)
def test_reverse_rule_contract(mtype, module, shape):
    torch.manual_seed(0)
    module = module.double()
    rule = rule_for(module)
    x0 = torch.randn(shape)
    ctx: dict = {}
    if rule.role in (Role.LINEAR, Role.STRUCTURAL):
        module.eval()
        y0 = rule.forward(module, x0, ctx)
        assert torch.allclose(y0, module(x0)), "rule forward must equal the module's forward"
        x = torch.randn(shape)
        y = torch.randn_like(y0)
        _, ax = torch.func.jvp(module, (x0,), (x,))
        aty = rule.adjoint(module, y, ctx)
        assert aty.shape == x0.shape, "adjoint output size must match the forward input"
        lhs, rhs = (ax * y).sum(), (x * aty).sum()
        assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs.item(), rhs.item())
        if rule.role is Role.LINEAR and rule.bias(module, y0) is not None:
            # the forward is A x + b with the rule's bias: A x0 + b == y0, A x0 from the jvp
            _, ax0 = torch.func.jvp(module, (x0,), (x0,))
            assert torch.allclose(ax0 + rule.bias(module, y0), y0)
    elif rule.role is Role.POINTWISE:
        module.train()
        before = {k: v.clone() for k, v in module.state_dict().items()}
        out = rule.reapply(module, x0)
        assert out.shape == x0.shape
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            dims = [0] + list(range(2, x0.dim()))
            ref = (x0 - x0.mean(dims, keepdim=True)) / torch.sqrt(
                x0.var(dims, unbiased=False, keepdim=True) + module.eps
            )
            assert torch.allclose(out, ref, atol=1e-8), "reverse BN uses the reverse tensor's batch stats"
            for k, v in module.state_dict().items():
                assert torch.equal(v, before[k]), f"reverse BN changed {k}"
        else:
            assert torch.allclose(out, module(x0))
    elif rule.role is Role.TRANSPARENT:
        module.train()
        assert rule.role is Role.TRANSPARENT  # identity in reverse: the plan skips it
    else:  # BLOCK: adjoint of its linear part, checked on a linear branch
        lin = ResidualBlock(
            nn.Sequential(
                nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.Conv2d(3, 3, 3, stride=1, padding=1, bias=False)
            )
        ).double()
        from racecar_study.core.plan import Trace

        tr = Trace()
        y0 = lin.racecar_forward(x0, tr, ctx)
        x, y = torch.randn(shape), torch.randn_like(y0)
        _, ax = torch.func.jvp(lin, (x0,), (x,))
        aty = lin.racecar_reverse(y, tr, ctx)
        assert abs((ax * y).sum() - (x * aty).sum()) < 1e-10


def test_batchnorm_reapply_matches_functional():
    bn = nn.BatchNorm2d(3).double()
    nn.init.uniform_(bn.weight)
    nn.init.uniform_(bn.bias)
    x = torch.randn(5, 3, 4, 4)
    out = rule_for(bn).reapply(bn, x)
    assert torch.allclose(out, F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps))
