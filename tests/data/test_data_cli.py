"""`racecar-study datasets` and `datasets show`, through a small argparse harness."""

from __future__ import annotations

import argparse

import pytest

from racecar_study.cli import datasets as cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="racecar-study")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_list_shows_every_set_with_size_and_availability(capsys, cache_dir):
    assert run(["datasets", "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("peak", "mnist2", "mnist5k", "fashion_mnist", "digits", "cifar10", "image_folder:PATH"):
        assert name in out
    assert "50 + 5 per class" in out
    assert f"no: {cache_dir / 'torchvision'}" in out


def test_show_prints_sizes_shape_and_class_counts(capsys, cache_dir):
    argv = ["datasets", "show", "peak", "--cache-dir", str(cache_dir), "--opt", "val_fraction=0.2"]
    assert run(argv + ["--opt", "transform=[{rotate: 30}]", "n_per_class=10"]) == 0
    out = capsys.readouterr().out
    assert "input shape: 1x28x28, 2 classes" in out
    assert "0 upper-left" in out and "1 lower-right" in out
    assert out.splitlines()[-1].split() == ["total", "16", "4", "10"]


def test_show_without_cache_writes_nothing(capsys, cache_dir):
    assert run(["datasets", "show", "mnist2", "--no-cache", "--cache-dir", str(cache_dir)]) == 0
    assert not cache_dir.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["show", "nope"], "unknown data set 'nope'"),
        (["show", "peak", "--opt", "colour=1"], "unknown option 'colour'"),
        (["show", "peak", "--opt", "colour"], "--opt takes KEY=VALUE"),
        (["show", "peak", "--opt", "classes=[0", "--no-cache"], "not valid YAML"),
        (["show", "peak", "--opt", "n_per_class=2", "n_per_class=3"], "given twice"),
        (["show", "mnist"], "download: true"),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_2(argv, message, capsys, cache_dir):
    assert run(["datasets", *argv, "--cache-dir", str(cache_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("racecar-study: error: ") and message in lines[0]
