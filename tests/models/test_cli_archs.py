"""`racecar-study archs`, through the real entry point."""

from racecar_study.cli.main import main
from racecar_study.models import build_model, list_models


def test_lists_every_architecture_with_counts(capsys):
    assert main(["archs"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "input 1x28x28, 10 classes"
    rows = {line.split()[0]: line.split()[1:] for line in out[2:]}
    assert sorted(rows) == list_models()
    assert rows["linear"] == ["7,850", "1"]
    net = build_model("resnet20", (1, 28, 28), 10)
    assert rows["resnet20"] == [f"{sum(p.numel() for p in net.parameters()):,}", "20"]


def test_input_and_classes(capsys):
    assert main(["archs", "--input", "3,32,32", "--classes", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("input 3x32x32, 100 classes")
    # the 10-class head (64*10 + 10) becomes a 100-class head (64*100 + 100)
    assert "resnet20 275,572 20" in [" ".join(line.split()) for line in out.splitlines()]


def test_unbuildable_architecture_gives_the_reason(capsys):
    assert main(["archs", "--input", "1,8,8"]) == 0
    lenet = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lenet"))
    assert "cannot build: input 1x8x8 is too small" in lenet


def test_bad_arguments_are_one_line_errors(capsys):
    for argv in (["--input", "1,28"], ["--input", "a,b,c"], ["--input", "0,28,28"], ["--classes", "0"]):
        assert main(["archs", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("racecar-study: error: ") and err.count("\n") == 1
