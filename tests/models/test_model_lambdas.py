"""Per-layer lambdas, addressed by index or by state name."""

import pytest
import torch

from racecar_study.core.methods import MethodConfig, build_method
from racecar_study.models import ModelError, build_model, resolve_lambdas


@pytest.fixture
def net():
    return build_model("mlp", (1, 4, 4), 3, widths=[8, 6])  # states: body.fc1, body.fc2, body.head


def test_lambda_layers_name_the_states(net):
    assert net.lambda_layers == net.state_names == ["body.fc1", "body.fc2", "body.head"]
    res = build_model("resnet", (3, 8, 8), 2, depth=8)
    assert res.lambda_layers == [
        "body.conv1",
        "body.layer1.block1",
        "body.layer1.block1.branch.conv2",
        "body.layer2.block1",
        "body.layer2.block1.branch.conv2",
        "body.layer3.block1",
        "body.layer3.block1.branch.conv2",
        "body.head",
    ]


def test_number_and_list(net):
    assert resolve_lambdas(net, 1e-3) == [1e-3] * 3
    assert resolve_lambdas(net, 0) == [0.0] * 3
    assert resolve_lambdas(net, [1, 2, 3]) == [1.0, 2.0, 3.0]
    assert resolve_lambdas(net, (1, 2, 3)) == [1.0, 2.0, 3.0]


def test_dict_by_name_index_and_default(net):
    assert resolve_lambdas(net, {"body.fc2": 2.0, "default": 0.5}) == [0.5, 2.0, 0.5]
    assert resolve_lambdas(net, {0: 1.0, -1: 3.0, "default": 0}) == [1.0, 0.0, 3.0]
    assert resolve_lambdas(net, {"0": 1.0, "1": 2.0, "body.head": 3.0}) == [1.0, 2.0, 3.0]


def test_ratio_is_a_schedule_over_depth(net):
    assert resolve_lambdas(net, 1e-3, ratio=0.5) == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert resolve_lambdas(net, 2.0, ratio=1.0) == [2.0] * 3
    with pytest.raises(ModelError, match="scales one number over depth, not a list"):
        resolve_lambdas(net, [1, 2, 3], ratio=0.5)
    with pytest.raises(ModelError, match="lambda ratio must be a finite number"):
        resolve_lambdas(net, 1.0, ratio=float("inf"))


def test_a_spec_ratio_reaches_the_racecar_loss(tmp_path, monkeypatch):
    from racecar_study.study.experiment import build_run
    from racecar_study.study.spec import parse_spec

    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path))
    spec = parse_spec(
        {
            "name": "ratio",
            "data": {"name": "peak", "n_per_class": 2},
            "model": {"arch": "mlp", "widths": [8, 6]},
            "method": {"name": "rr", "lam": 1e-2, "lam_ratio": 10.0},
        }
    )
    assert build_run(spec, 0).trainer.method.cfg.lam == pytest.approx([1e-2, 1e-1, 1.0])


@pytest.mark.parametrize(
    "lam,expected",
    [
        ([1, 2], "lambda list has 2 values but the network has 3 states"),
        ({"body.fc9": 1, "default": 0}, "lambda key 'body.fc9' names no state; states (0..2): body.fc1"),
        ({3: 1, "default": 0}, "lambda key 3 names no state"),
        ({0: 1, "body.fc1": 2, "default": 0}, "lambda for state 0 (body.fc1) is given twice"),
        ({0: 1}, "lambda dict leaves body.fc2, body.head unset"),
        (-1.0, "lambda must be a finite number >= 0"),
        (float("nan"), "lambda must be a finite number >= 0"),
        ([1, 2, -3], "lambda[2] must be a finite number >= 0"),
        ({"default": "x"}, "lambda default must be a finite number >= 0"),
        (True, "lambda must be a number, a list of 3 numbers or a dict"),
        ("1e-3", "lambda must be a number, a list of 3 numbers or a dict"),
    ],
)
def test_bad_lambdas(net, lam, expected):
    with pytest.raises(ModelError) as info:
        resolve_lambdas(net, lam)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_resolved_lambdas_drive_racecar_training(net):
    lam = resolve_lambdas(net, {"body.fc1": 1.0, "default": 0.0})
    method = build_method(MethodConfig(name="rr", lam=lam, reduction="mean"))
    method.validate(net)
    x, y = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    out = method.step(net, x, y)
    assert out.reg_loss.item() == pytest.approx(out.per_layer[0].item())
