"""Analysis: first-layer SVD, orthogonality residuals, reconstructions, mutual information."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from torch import nn

from racecar_study.core.analysis import (
    LayerMI,
    apply_adjoint,
    apply_linear_operator,
    first_layer_svd,
    layer_information,
    mi_plane_plot,
    orthogonality_residuals,
    reconstruction_images,
    save_image_grid,
    save_reconstruction_grid,
    vectors_to_images,
)
from racecar_study.core.net import RacecarNet


def _mlp(din=16, hidden=8, dout=3, bn=True):
    layers = [nn.Flatten(), nn.Linear(din, hidden)]
    if bn:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, dout)]
    return RacecarNet(nn.Sequential(*layers))


def _convnet():
    return RacecarNet(
        nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 5),
        )
    )


# --- SVD ----------------------------------------------------------------------------------------


def test_svd_returns_columns_of_v():
    torch.manual_seed(0)
    net = _mlp(din=12, hidden=5)
    res = first_layer_svd(net)
    w = net.first_layer().weight.detach().double().numpy()
    s, v, u = res.singular_values, res.right_vectors, res.left_vectors
    assert s.shape == (5,) and v.shape == (5, 12) and u.shape == (5, 5)
    assert np.all(np.diff(s) <= 0)
    np.testing.assert_allclose(v @ v.T, np.eye(5), atol=1e-10)  # orthonormal rows
    for i in range(5):
        np.testing.assert_allclose(w @ v[i], s[i] * u[:, i], atol=1e-10)  # W v_i = s_i u_i
        np.testing.assert_allclose(w.T @ w @ v[i], s[i] ** 2 * v[i], atol=1e-10)
    # a square, non-symmetric W tells rows of V from its columns
    net_sq = RacecarNet(nn.Sequential(nn.Linear(6, 6)))
    w_sq = net_sq.first_layer().weight.detach().double().numpy()
    v_sq = first_layer_svd(net_sq).right_vectors
    _, _, vh = np.linalg.svd(w_sq)
    np.testing.assert_allclose(np.abs(v_sq @ vh.T), np.eye(6), atol=1e-8)
    assert not np.allclose(np.abs(v_sq @ vh), np.eye(6), atol=1e-3)


def test_svd_recovers_rank_one_direction_and_signs():
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(10, 1, generator=gen, dtype=torch.float64)
    v = torch.randn(1, 64, generator=gen, dtype=torch.float64)
    net = RacecarNet(nn.Sequential(nn.Linear(64, 10)))
    with torch.no_grad():
        net.first_layer().weight.copy_(u @ v + 1e-3 * torch.randn(10, 64, generator=gen))
    res = first_layer_svd(net, k=3, input_shape=(8, 8))
    v1 = v.numpy().ravel()
    cos = res.right_vectors[0] @ v1 / np.linalg.norm(v1)
    assert abs(cos) > 0.99
    assert res.right_vectors.shape == (3, 64) and res.image_shape == (1, 8, 8)
    assert res.singular_values.shape == (10,)
    peaks = res.right_vectors[np.arange(3), np.abs(res.right_vectors).argmax(axis=1)]
    assert np.all(peaks > 0)  # sign convention
    with pytest.raises(ValueError):
        first_layer_svd(net, input_shape=(7, 7))


def test_svd_conv_first_layer_and_images(tmp_path):
    torch.manual_seed(0)
    net = _convnet()
    res = first_layer_svd(net, k=4)
    assert res.image_shape == (3, 3, 3)
    assert res.right_vectors.shape == (4, 27) and res.singular_values.shape == (4,)
    imgs = vectors_to_images(res.right_vectors, res.image_shape)
    assert imgs.shape == (4, 3, 3, 3)
    assert imgs.min() >= 0.0 and imgs.max() <= 1.0
    # symmetric rescale: each vector's largest-magnitude entry (positive) maps to 1
    np.testing.assert_allclose(imgs.reshape(4, -1).max(axis=1), 1.0)
    grey = vectors_to_images(np.array([[0.0, -2.0, 1.0, 0.0]]), (2, 2))
    np.testing.assert_allclose(grey, [[[0.5, 0.0], [0.75, 0.5]]])
    path = save_image_grid(imgs, tmp_path / "sub" / "svd.png", ncols=2, titles=["a", "b", "c", "d"])
    assert path.stat().st_size > 0
    assert imread(path).shape == (2 * 150, 2 * 150, 4)
    path = save_image_grid(
        vectors_to_images(first_layer_svd(_mlp()).right_vectors, (4, 4)), tmp_path / "g.png"
    )  # 8 grey images, 3 columns
    assert imread(path).shape == (3 * 150, 3 * 150, 4)


def test_svd_first_layer_inside_leading_block():
    from racecar_study.core.blocks import ResidualBlock

    net = RacecarNet(
        nn.Sequential(
            ResidualBlock(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1))), nn.Flatten(), nn.Linear(32, 3)
        )
    )
    assert first_layer_svd(net).image_shape == (2, 3, 3)


# --- orthogonality ---------------------------------------------------------------------------------


def test_orthogonality_residual_zero_for_orthogonal_and_positive_for_random():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 4, 4)
    ortho = RacecarNet(nn.Sequential(nn.Flatten(), nn.Linear(16, 16)))
    nn.init.orthogonal_(ortho.first_layer().weight)
    (r,) = orthogonality_residuals(ortho, x)
    assert r < 1e-6
    rand = RacecarNet(nn.Sequential(nn.Flatten(), nn.Linear(16, 16)))
    with torch.no_grad():
        rand.first_layer().weight.mul_(3.0)
    assert orthogonality_residuals(rand, x)[0] > 0.1


def test_orthogonality_residual_is_data_dependent_and_per_layer():
    torch.manual_seed(0)
    # W = I on the first 4 coordinates, 0 elsewhere: exact on data living there, 1 off it.
    net = RacecarNet(nn.Sequential(nn.Linear(8, 8, bias=True), nn.ReLU(), nn.Linear(8, 2)))
    with torch.no_grad():
        net.first_layer().weight.copy_(torch.diag(torch.tensor([1.0] * 4 + [0.0] * 4)))
        net.first_layer().bias.fill_(5.0)  # bias is not part of A
    on = torch.cat([torch.randn(16, 4), torch.zeros(16, 4)], 1)
    off = torch.cat([torch.zeros(16, 4), torch.randn(16, 4)], 1)
    assert orthogonality_residuals(net, on)[0] < 1e-12
    res = orthogonality_residuals(net, off)
    assert len(res) == 2 and res[0] == pytest.approx(1.0)


def test_orthogonality_conv_adjoint_and_flags():
    torch.manual_seed(0)
    net = _convnet()
    net.train()
    stats = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(6, 3, 8, 8)
    res = orthogonality_residuals(net, x)
    assert len(res) == 2 and all(r > 0 and math.isfinite(r) for r in res)
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, stats[k]), k
    # the conv adjoint is the vector-Jacobian product of the conv (stride 2: output size matched)
    conv = net.first_layer()
    d = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    _, vjp = torch.func.vjp(lambda t: apply_linear_operator(conv, t), d)
    torch.testing.assert_close(apply_adjoint(conv, y, d.shape), vjp(y)[0])
    reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect").double()
    _, vjp = torch.func.vjp(lambda t: apply_linear_operator(reflect, t), d)
    y = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(apply_adjoint(reflect, y, d.shape), vjp(y)[0])


def test_orthogonality_residual_zero_for_orthogonal_conv():
    # a 1x1 conv with an orthogonal channel mix is orthogonal as an operator
    net = RacecarNet(nn.Sequential(nn.Conv2d(4, 4, 1), nn.Flatten(), nn.Linear(64, 2)))
    nn.init.orthogonal_(net.first_layer().weight)
    assert orthogonality_residuals(net, torch.randn(5, 4, 4, 4))[0] < 1e-6


# --- reconstruction --------------------------------------------------------------------------------


def test_reconstruction_grid_leaves_net_untouched(tmp_path):
    torch.manual_seed(0)
    net = _mlp(din=36, hidden=8)
    net.train()
    net.body[2].running_mean.fill_(0.3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(10, 1, 6, 6)
    originals, recons = reconstruction_images(net, x, n=4)
    assert originals.shape == recons.shape == (4, 6, 6)
    for a in (originals, recons):
        assert a.min() >= 0.0 and a.max() <= 1.0
        np.testing.assert_allclose(a.reshape(4, -1).min(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(a.reshape(4, -1).max(axis=1), 1.0, atol=1e-12)
    path = save_reconstruction_grid(net, x, tmp_path / "recon.png", n=4)
    assert path.stat().st_size > 0 and imread(path).shape == (2 * 150, 4 * 150, 4)
    assert net.training and all(m.training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_reconstruction_keeps_mixed_training_flags_and_rgb():
    torch.manual_seed(0)
    net = _convnet()
    net.train()
    net.body[1].eval()  # a frozen norm stays frozen
    originals, recons = reconstruction_images(net, torch.randn(3, 3, 8, 8), n=8)
    assert originals.shape == recons.shape == (3, 8, 8, 3)
    assert net.training and not net.body[1].training


# --- mutual information ------------------------------------------------------------------------------


def _one_hot_net(n_classes):
    """The first state is relu(x) = x = one-hot(y): a layer that copies the labels."""
    lin = nn.Linear(n_classes, n_classes, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(n_classes))
    return RacecarNet(nn.Sequential(lin, nn.ReLU(), nn.Linear(n_classes, 2)))


def test_mi_of_a_label_copying_layer_equals_label_entropy():
    torch.manual_seed(0)
    y = torch.tensor([0] * 10 + [1] * 5 + [2] * 17)
    x = nn.functional.one_hot(y, 3).float()
    res = layer_information(_one_hot_net(3), x, y, n_bins=30)
    assert [r.name for r in res] == ["body.2", "output"]
    p = np.bincount(y.numpy()) / len(y)
    h_y = float(-(p * np.log2(p)).sum())
    assert res[0].i_ty == pytest.approx(h_y, abs=1e-12)
    assert res[0].i_xt == pytest.approx(h_y, abs=1e-12)


def test_mi_bounds_and_plot(tmp_path):
    torch.manual_seed(0)
    net = _mlp(din=16, hidden=8)
    n = 64
    x = torch.randn(n, 1, 4, 4)
    y = torch.randint(0, 3, (n,))
    res = layer_information(net, x, y, n_bins=10)
    assert len(res) == 2 and all(isinstance(r, LayerMI) for r in res)
    for r in res:
        assert 0.0 <= r.i_xt <= math.log2(n) + 1e-9
        assert 0.0 <= r.i_ty <= r.i_xt + 1e-9
    assert layer_information(net, x, y.numpy(), n_bins=10, include_output=False) == res[:1]
    # two bins cannot carry more than (hidden width) bits, and a constant state carries none
    const = RacecarNet(nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2)))
    with torch.no_grad():
        const.body[1].weight.zero_()
        const.body[1].bias.fill_(1.0)
    assert layer_information(const, x, y)[0] == LayerMI("body.3", 0.0, 0.0)
    conv = layer_information(_convnet(), torch.randn(n, 3, 8, 8), y, n_bins=5)
    assert [r.name for r in conv] == ["body.4", "output"] and conv[0].i_ty <= conv[0].i_xt + 1e-9
    path = mi_plane_plot({"RR": res, "Std": res[::-1]}, tmp_path / "mi" / "plane.png", title="t")
    assert path.stat().st_size > 0 and imread(path).ndim == 3
