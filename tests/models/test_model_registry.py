"""Registry and factory: names, options, one-line errors, parameter counts, any input shape."""

import pytest
import torch
from torch import nn

from racecar_study.models import (
    ModelError,
    build_model,
    check_options,
    list_models,
    model_options,
    register_model,
)

ALL = ["convnet", "lenet", "linear", "mlp", "peak_mlp", "resnet"]
ALIASES = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_every_architecture_is_registered():
    assert list_models() == sorted(ALL + ALIASES)


@pytest.mark.parametrize(
    "arch,shape,classes,expected",
    [
        ("linear", (1, 28, 28), 10, 784 * 10 + 10),
        ("peak_mlp", (1, 28, 28), 2, (784 * 128 + 128) + 2 * 128 + (128 * 2 + 2) + 2 * 2),
        ("lenet", (1, 28, 28), 10, 61_706),  # LeNet-5 with a padded first conv
        # He et al. 2016, table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M (option A shortcuts)
        ("resnet20", (3, 32, 32), 10, 269_722),
        ("resnet32", (3, 32, 32), 10, 464_154),
        ("resnet44", (3, 32, 32), 10, 658_586),
        ("resnet56", (3, 32, 32), 10, 853_018),
        ("resnet110", (3, 32, 32), 10, 1_727_962),
    ],
)
def test_parameter_counts(arch, shape, classes, expected):
    assert n_params(build_model(arch, shape, classes)) == expected


def test_resnet_options_change_its_size():
    a = build_model("resnet20", (3, 32, 32), 10)
    # option B adds two 1x1 projections with their BN: 16->32 and 32->64 channels
    b = build_model("resnet20", (3, 32, 32), 10, shortcut="B")
    assert n_params(b) - n_params(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    wide = build_model("resnet", (3, 32, 32), 10, depth=20, width=2)
    assert 3.5 < n_params(wide) / n_params(a) < 4.1
    assert build_model("resnet", (3, 32, 32), 10, depth=32).state_names == (
        build_model("resnet32", (3, 32, 32), 10).state_names
    )


def test_resnet_uses_kaiming_init():
    torch.manual_seed(0)
    net = build_model("resnet20", (3, 32, 32), 10)
    w = net.body.layer3.block2.branch.conv1.weight  # fan_in 64 * 3 * 3
    assert w.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("arch", ALL + ALIASES)
@pytest.mark.parametrize("shape,classes", [((1, 28, 28), 10), ((3, 32, 32), 2), ((3, 17, 23), 7)])
def test_any_input_shape_and_class_count(arch, shape, classes):
    net = build_model(arch, shape, classes)
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(2, *shape)).shape == (2, classes)


def test_options_are_recorded():
    net = build_model("mlp", (1, 8, 8), 3, widths=[16])
    assert net.arch_name == "mlp"
    assert net.arch_options == {"widths": [16], "batch_norm": True, "activation": "relu", "dropout": 0.0}
    assert "depth" not in model_options("resnet20")
    assert model_options("resnet")["depth"] == 20
    assert model_options("mlp")["widths"] == [256, 128]


def test_model_layouts():
    types = [type(m) for m in build_model("peak_mlp", (1, 28, 28), 2).body]
    assert types == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert [type(m) for m in build_model("linear", (1, 28, 28), 10).body] == [nn.Flatten, nn.Linear]
    mlp = build_model("mlp", (1, 4, 4), 2, activation="gelu", dropout=0.5, batch_norm=False)
    assert [type(m) for m in mlp.body][-4:] == [nn.Linear, nn.GELU, nn.Dropout, nn.Linear]
    conv = build_model("convnet", (1, 8, 8), 2, pool="none")
    assert conv.body.conv1.stride == (2, 2) and not any(isinstance(m, nn.MaxPool2d) for m in conv.body)


def test_register_twice_is_refused():
    with pytest.raises(ModelError, match="already registered"):
        register_model("linear")(lambda input_shape, num_classes: None)


def _error(arch, shape=(1, 28, 28), classes=10, **options) -> str:
    with pytest.raises(ModelError) as info:
        build_model(arch, shape, classes, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_architecture():
    assert _error("nope") == f"unknown architecture 'nope'; known: {', '.join(list_models())}"


def test_unknown_option_names_it_and_lists_the_accepted():
    assert _error("resnet", depth=20, widht=2) == (
        "unknown option 'widht' for architecture 'resnet'; "
        "accepted: depth, width, shortcut, batch_norm, activation"
    )
    assert "unknown option 'depth' for architecture 'resnet20'" in _error("resnet20", depth=32)
    assert "accepted: bias" in _error("linear", hidden=3)


@pytest.mark.parametrize(
    "arch,options,expected",
    [
        ("resnet", {"depth": 21}, "depth must be 6n+2"),
        ("resnet", {"depth": 2}, "depth must be 6n+2"),
        ("resnet", {"width": 0}, "width must be a positive integer"),
        ("resnet", {"shortcut": "C"}, "shortcut must be one of A, B"),
        ("resnet20", {"batch_norm": "yes"}, "batch_norm must be true or false"),
        ("mlp", {"widths": []}, "widths must be a non-empty list"),
        ("mlp", {"widths": [64, 0]}, "widths[1] must be a positive integer"),
        ("mlp", {"widths": 64}, "widths must be a non-empty list"),
        ("mlp", {"activation": "swish"}, "activation must be one of relu, leaky_relu, gelu, tanh, silu"),
        ("mlp", {"dropout": 1.0}, "dropout must be a number in [0, 1)"),
        ("convnet", {"channels": []}, "channels must be a non-empty list"),
        ("convnet", {"channels": [8, -1]}, "channels[1] must be a positive integer"),
        ("convnet", {"pool": "min"}, "pool must be one of max, avg, none"),
        ("convnet", {"kernel": 0}, "kernel must be a positive integer"),
        ("peak_mlp", {"hidden": 0}, "hidden must be a positive integer"),
        ("lenet", {"activation": "step"}, "activation must be one of"),
    ],
)
def test_impossible_options(arch, options, expected):
    message = _error(arch, **options)
    assert message.startswith(f"{arch}: ") and expected in message


def test_inputs_too_small_or_malformed():
    assert "input 1x11x28 is too small" in _error("lenet", shape=(1, 11, 28))
    build_model("lenet", (1, 12, 12), 10)  # the smallest LeNet input
    assert "input 1x8x8 is too small" in _error("convnet", shape=(1, 8, 8), channels=[4, 4, 4, 4])
    assert "input_shape must be three positive integers" in _error("mlp", shape=(28, 28))
    assert "input_shape must be three positive integers" in _error("mlp", shape=(1, 0, 28))
    assert "num_classes must be a positive integer" in _error("mlp", classes=0)


def test_check_options_needs_no_input():
    check_options("resnet", {"depth": 56, "width": 2})
    with pytest.raises(ModelError, match="unknown architecture 'vgg'"):
        check_options("vgg", {})
    with pytest.raises(ModelError, match="unknown options 'a', 'b' for architecture 'mlp'"):
        check_options("mlp", {"a": 1, "b": 2})
    assert issubclass(ModelError, ValueError)
