"""Fused chain-and-term kernels (core/fused.py): the eager path's values and gradients, tokens that
recompute d' bitwise, a lower step peak than keeping d', and a fallback where compiling fails."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import racecar_study.core.fused as fused
from racecar_study.core import ChannelPadShortcut, MethodConfig, build_method, rules
from racecar_study.core.blocks import ChannelPadShortcutRule
from racecar_study.core.loss import reconstruction_term
from racecar_study.core.rebuild import Rebuilder
from racecar_study.core.rules import rule_for
from racecar_study.models import build_model

# Every fused pattern: (modules, input shape). Shapes are small: min_numel=0 fuses them anyway.
PATTERNS = {
    "term": ([], (6, 3, 5, 5)),
    "relu": ([nn.ReLU()], (6, 4, 5, 5)),
    "bn2d": ([nn.BatchNorm2d(4)], (6, 4, 5, 5)),
    "bn2d_relu": ([nn.BatchNorm2d(4), nn.ReLU()], (6, 4, 5, 5)),
    "bn1d_relu": ([nn.BatchNorm1d(7), nn.ReLU()], (9, 7)),
}


def _eager(modules, x, d, reduction):
    r = x
    for m in modules:  # as the eager reverse pass re-applies them
        r = rule_for(m).reapply(m, r)
    return r, reconstruction_term(d, r, reduction)


def _inputs(modules, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in modules:  # affine parameters away from their initial 1 and 0
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
    x = (torch.randn(shape, generator=g) * 2 + 0.5).requires_grad_()
    d = torch.randn(shape, generator=g).requires_grad_()
    up = torch.randn(shape, generator=g)  # the gradient d' gets from its consumers
    return x, d, up


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("name", list(PATTERNS))
def test_fused_matches_eager_values_and_gradients(name, reduction):
    modules, shape = PATTERNS[name]
    x, d, up = _inputs(modules, shape)
    params = [p for m in modules for p in m.parameters()]
    wrt = [x, d, *params]

    r_e, t_e = _eager(modules, x, d, reduction)
    grads_e = torch.autograd.grad((r_e * up).sum() + 3.0 * t_e, wrt)

    out = fused.ChainFuser(reduction, min_numel=0)(modules, x, d)
    assert out is not None, "the pattern was not fused"
    r_f, t_f = out
    grads_f = torch.autograd.grad((r_f * up).sum() + 3.0 * t_f, wrt)

    torch.testing.assert_close(r_f, r_e, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(t_f, t_e, rtol=1e-5, atol=1e-6)
    for gf, ge in zip(grads_f, grads_e):
        torch.testing.assert_close(gf, ge, rtol=1e-4, atol=1e-5)


def test_a_norm_chains_output_is_recomputed_bitwise_for_its_consumer():
    modules, shape = PATTERNS["bn2d_relu"]
    x, d, _ = _inputs(modules, shape)
    w = torch.randn(5, 4, 3, 3, requires_grad=True)
    unpacked = []
    with Rebuilder(min_numel=0) as rb:
        r, term = fused.ChainFuser("sum", min_numel=0)(modules, x, d, rb)
        y = F.conv2d(r, w)  # saves r: it gets a token
    node = y.grad_fn
    unpacked.append(node._saved_input)  # unpacking recomputes d'
    assert torch.equal(unpacked[0], r)
    assert unpacked[0].data_ptr() != r.data_ptr()  # a new tensor, not the kept one
    (y.sum() + term).backward()


def test_unsupported_or_small_chains_are_not_fused():
    fuser = fused.ChainFuser("sum")  # default MIN_NUMEL
    x = torch.randn(4, 4, 5, 5)
    assert fuser([nn.ReLU()], x, x.clone()) is None  # below MIN_NUMEL
    small = fused.ChainFuser("sum", min_numel=0)
    assert small([nn.Tanh()], x, x.clone()) is None  # no fused pattern
    assert small([nn.BatchNorm2d(4, affine=False), nn.ReLU()], x, x.clone()) is None
    assert small([nn.ReLU()], x.double(), x.double()) is None  # float32 only
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert small([nn.ReLU()], x, x.clone()) is None  # autocast: the eager term casts to float32


def _rr_step(arch, shape, fuse, batch=6, seed=0):
    torch.manual_seed(seed)
    net = build_model(arch, shape, 10)
    net.fuse = fuse
    net.train()
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    out = build_method(MethodConfig("rr", lam=0.5, reduction="mean")).step(net, x, y)
    out.loss.backward()
    return out, [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize(
    "arch,shape", [("resnet", (3, 8, 8)), ("peak_mlp", (1, 28, 28)), ("convnet", (1, 12, 12))]
)
def test_fused_network_step_matches_the_eager_one(arch, shape, monkeypatch):
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    calls = []
    apply = fused._ChainTerm.apply
    monkeypatch.setattr(fused._ChainTerm, "apply", lambda *a: calls.append(1) or apply(*a))
    eager, g_eager = _rr_step(arch, shape, fuse=False)
    assert not calls
    fast, g_fast = _rr_step(arch, shape, fuse=True)
    assert calls, "no chain took the fused path"
    torch.testing.assert_close(fast.loss, eager.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.per_layer, eager.per_layer, rtol=1e-4, atol=1e-7)
    for a, b in zip(g_fast, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6 + 1e-5 * b.abs().max().item())


def test_fused_step_keeps_no_norm_chain_output(rr_step_peak):
    """The fused chains' outputs are recomputed for the next adjoint, not kept: the step's peak is
    below the same fused step that keeps them (rebuild off)."""
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))  # chains above MIN_NUMEL
    peaks = {}
    for rebuild in (False, True):
        torch.manual_seed(0)
        net = build_model("resnet20", (3, 32, 32), 10)
        net.rebuild = rebuild
        peaks[rebuild] = rr_step_peak(net, x, y)
    assert peaks[True] < 0.95 * peaks[False], peaks  # measured 0.90 (batch 128: 0.90)


def test_a_compiler_failure_falls_back_to_eager_once(monkeypatch):
    monkeypatch.setattr(fused.ChainFuser, "_broken", None)
    monkeypatch.setattr(fused.ChainFuser, "_probed", set())

    def broken(*a):
        raise RuntimeError("no C++ compiler\nmore detail")

    monkeypatch.setattr(fused._ChainTerm, "apply", broken)
    modules, shape = PATTERNS["relu"]
    x, d, _ = _inputs(modules, shape)
    fuser = fused.ChainFuser("sum", min_numel=0)
    said = "fused reverse kernels unavailable here .RuntimeError: no C.. compiler.;"
    with pytest.warns(RuntimeWarning, match=said):
        assert fuser(modules, x, d) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once only
        assert fuser(modules, x, d) is None
    eager, g_eager = _rr_step("resnet", (3, 8, 8), fuse=False)
    fallback, g_fallback = _rr_step("resnet", (3, 8, 8), fuse=True)  # takes the eager path
    assert torch.equal(fallback.loss, eager.loss)
    for a, b in zip(g_fallback, g_eager):
        assert torch.equal(a, b)


def test_channels_last_inputs_keep_each_gradient_in_its_tensors_layout():
    """A fused pass runs its adjoints channels-last while the states stay NCHW: d' follows the
    adjoint's layout and the state's gradient the state's, so no eager op downstream mixes them."""
    cl = torch.channels_last
    modules, shape = PATTERNS["bn2d_relu"]
    x, d, up = _inputs(modules, shape)
    x_cl = x.detach().contiguous(memory_format=cl).requires_grad_()
    r, term = fused.ChainFuser("sum", min_numel=0)(modules, x_cl, d)
    assert r.is_contiguous(memory_format=cl)
    gx, gd = torch.autograd.grad((r * up.contiguous(memory_format=cl)).sum() + term, [x_cl, d])
    assert gd.is_contiguous() and gx.is_contiguous(memory_format=cl)
    r_e, t_e = _eager(modules, x, d, "sum")
    gx_e, gd_e = torch.autograd.grad((r_e * up).sum() + t_e, [x, d])
    torch.testing.assert_close(gx, gx_e, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gd, gd_e, rtol=1e-4, atol=1e-5)


def test_a_fused_resnet_pass_runs_its_adjoints_channels_last(monkeypatch):
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    seen = []
    conv_t = F.conv_transpose2d

    def watched(y, w, *a, **k):
        if w.shape[1] > rules.FEW_CHANNELS:  # the input layer's adjoint is channels-last either way
            seen.append(y.is_contiguous())
        return conv_t(y, w, *a, **k)

    monkeypatch.setattr(F, "conv_transpose2d", watched)
    for fuse in (False, True):
        seen.clear()
        _rr_step("resnet", (3, 8, 8), fuse=fuse)
        assert seen and (not any(seen) if fuse else all(seen)), (fuse, seen)
    pad = ChannelPadShortcut(4, 8, 2)
    ctx = {}
    ChannelPadShortcutRule().forward(pad, torch.randn(2, 4, 6, 6), ctx)
    back = ChannelPadShortcutRule().adjoint(
        pad, torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last), ctx
    )
    assert back.is_contiguous(memory_format=torch.channels_last)  # the layout carries through the shortcut


@pytest.mark.parametrize("fuse_reverse,fused_calls", [(None, True), (False, False), (True, True)])
def test_train_fuse_reverse_decides_if_a_fit_takes_the_fused_path(fuse_reverse, fused_calls, monkeypatch):
    """`train.fuse_reverse` in a study spec reaches the Trainer, which sets the net's switch; None
    (a TrainConfig made by hand) leaves the net's own setting."""
    from racecar_study.core import TrainConfig, Trainer
    from racecar_study.study.spec import TrainSpec

    assert TrainSpec().to_config().fuse_reverse is True
    assert TrainSpec(fuse_reverse=False).to_config().fuse_reverse is False
    monkeypatch.setattr(fused, "MIN_NUMEL", 0)
    calls = []
    apply = fused._ChainTerm.apply
    monkeypatch.setattr(fused._ChainTerm, "apply", lambda *a: calls.append(1) or apply(*a))
    net = build_model("peak_mlp", (1, 28, 28), 2)
    cfg = TrainConfig(epochs=1, batch_size=8, probe_size=0, fuse_reverse=fuse_reverse)
    trainer = Trainer(net, build_method(MethodConfig("rr", lam=1e-3)), cfg)
    assert net.fuse is fused_calls
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 2, (16,))
    trainer.fit((x, y))
    assert bool(calls) is fused_calls
