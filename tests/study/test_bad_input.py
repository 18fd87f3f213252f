"""Bad specs and flags: one line naming the field, exit code 2, and nothing created (no runs/)."""

import pytest
from study_helpers import free_port, run_cli, spec_dict, write_spec

CYCLE = {
    "method.name": {"choice": ["std", "rr"], "when": {"method.reduction": "sum"}},
    "method.reduction": {"choice": ["sum", "mean"], "when": {"method.name": "rr"}},
}
NEVER = {
    "method.name": {"choice": ["std", "rr"]},
    "model.widths": {"choice": [[16], [32]], "when": {"method.name": "std"}},
    "method.lam": {"loguniform": [1e-6, 1e-3], "when": {"method.name": "rr", "model.widths": [16]}},
}

SHARED = ["--storage", "file://{tmp}/shared", "--shared-storage"]

# (spec changes, extra flags, texts the one-line message must contain)
CASES = {
    "unknown key": ({"epochz": 3}, [], ["epochz"]),
    "unknown nested key": ({"train.epochz": 3}, [], ["train.epochz"]),
    "wrong type": ({"train.epochs": "ten"}, [], ["train.epochs"]),
    "negative lambda": ({"method": {"name": "rr", "lam": -1e-5}}, [], ["method.lam"]),
    "lambda ratio on per-layer lambdas": (
        {"method": {"name": "rr", "lam": [1e-5, 1e-6, 0.0], "lam_ratio": 0.5}},
        [],
        ["method.lam_ratio", "per layer"],
    ),
    "negative lambda in the space": (
        {"search.space.method.lam": {"uniform": [-1.0, 1.0]}},
        [],
        ["search.space.method.lam"],
    ),
    "a metric trials do not report": ({"metric": "val_accuracy"}, [], ["metric", "val_accuracy", "val_acc"]),
    "mode against the metric": ({"metric": "val_loss", "mode": "max"}, [], ["mode", "val_loss", "mode: min"]),
    "a state the network does not have": (
        {"metric": "recon_err_9", "search.space.model.widths": {"choice": [[16], [32, 16]]}},
        [],
        ["metric", "recon_err_9", "reconstructs 2", "recon_err_1", "(trials with model.widths=[16])"],
    ),
    "a per-layer term the method does not report": (
        {"metric": "reg_term_0", "method": {"name": "ort"}},
        [],
        ["metric", "reg_term_0", "only by method rr", "not by ort"],
    ),
    "a per-layer term a searched method does not report": (
        {"metric": "reg_term_0", "search.space.method.name": {"choice": ["rr", "std", "pre"]}},
        [],
        ["metric", "reg_term_0", "(trials with method.name=std, pre)"],
    ),
    "a per-layer term where the search changes the data": (
        {"metric": "reg_term_0", "search.space.data.n_per_class": {"choice": [10, 20]}},
        [],
        ["metric", "reg_term_0", "not by std"],
    ),
    "rr without a lambda": ({"method": {"name": "rr"}}, [], ["method.lam", "rr would train as std"]),
    "a searched rr without a lambda": (
        {"method": {"name": "std"}, "search.space.method.name": {"choice": ["std", "rr", "ort"]}},
        [],
        ["method.lam", "(trials with method.name=rr)"],
    ),
    "a lambda ratio without a lambda": (
        {"method": {"name": "rr", "lam_ratio": 0.5}},
        [],
        ["method.lam", "would train as std"],
    ),
    "cuda without a gpu per trial": (
        {"train.device": "cuda"},
        [],
        ["train.device", "cuda", "resources.gpu > 0"],
    ),
    "a searched cuda device without a gpu per trial": (
        {"search.space.train.device": {"choice": ["cpu", "cuda:1"]}},
        [],
        ["train.device", "cuda:1", "resources.gpu > 0"],
    ),
    "a seed given twice": ({"seeds": [0, 1, 0]}, [], ["seeds", "seed 0 given twice"]),
    "a negative seed": ({"seeds": [2, -1]}, [], ["seeds.1", "greater than or equal to 0"]),
    "empty search space": ({"search.space": {}}, [], ["search.space", "empty"]),
    "a continuous search over an integer field": (  # its bounds passed and every trial failed
        {"search.space.train.batch_size": {"loguniform": [16, 64]}},
        [],
        ["search.space.train.batch_size", "fractional values", "int: [16, 64]"],
    ),
    "more trials than a space of choices holds": (
        {
            "search.space": {
                "method.name": {"choice": ["std", "rr"]},
                "method.lam": {"choice": [1e-6, 1e-5], "when": {"method.name": "rr"}},
            },
            "search.num_samples": 4,
        },
        [],
        ["search.num_samples: 4 trials", "holds 3 different configurations", "at most 3"],
    ),
    # read once by the driver: a search over them would be silently ignored
    "a searched resource": (
        {"search.space.resources.cpu": {"choice": [1, 2]}},
        [],
        ["search.space", "'resources.cpu' is one value for the whole study"],
    ),
    "a searched scheduler setting": (
        {"search.space.scheduler.grace_period": {"int": [1, 3]}},
        [],
        ["'scheduler.grace_period'", "not per trial"],
    ),
    "a searched checkpoint count": (
        {"search.space.checkpoint.keep": {"choice": [1, 3]}},
        [],
        ["'checkpoint.keep'", "not per trial"],
    ),
    "unsatisfiable condition": ({"search.space": NEVER}, [], ["search.space.method.lam", "never"]),
    "condition cycle": ({"search.space": CYCLE}, [], ["search.space", "cycle"]),
    "grid over a continuous range": ({"search.algorithm": "grid"}, [], ["search.space.train.lr", "grid"]),
    "grace period past the last epoch": (
        {"scheduler": {"kind": "asha", "grace_period": 5}},
        [],
        ["scheduler.grace_period"],
    ),
    "gpu where there is none": ({"resources": {"cpu": 1, "gpu": 1}}, [], ["resources.gpu", "none"]),
    "more cpus than the machine": ({"resources": {"cpu": 4096}}, [], ["resources.cpu"]),
    "unknown data set": ({"data": {"name": "mnist6k"}}, [], ["data", "mnist6k"]),
    "unknown data option": ({"data.n_per_klass": 3}, [], ["data", "n_per_klass"]),
    "unknown architecture": ({"model": {"arch": "resnet7"}}, [], ["model", "resnet7"]),
    "unknown architecture option": ({"model.depthh": 3}, [], ["model", "depthh"]),
    "an architecture the data cannot take": (
        {"data": {"name": "digits"}, "model": {"arch": "lenet"}},
        [],
        ["model", "lenet", "1x8x8", "too small"],
    ),
    "a searched architecture the data cannot take": (
        {
            "data": {"name": "digits"},
            "model.widths": None,
            "search.space.model.arch": {"choice": ["mlp", "lenet"]},
        },
        [],
        ["model", "lenet", "too small", "(trials with model.arch=lenet)"],
    ),
    "a searched data set the architecture cannot take": (
        {"model": {"arch": "lenet"}, "search.space.data.name": {"choice": ["mnist5k", "digits"]}},
        [],
        ["model", "lenet", "too small", "(trials with data.name=digits)"],
    ),
    "a searched data option the data cannot give": (
        {"search.space.data.n_per_class": {"choice": [10, 100000]}},
        [],
        ["data", "n_per_class=100000", "(trials with data.n_per_class=100000)"],
    ),
    "a state the network lacks where the search changes the data": (
        {"metric": "recon_err_9", "search.space.data.n_per_class": {"choice": [10, 12]}},
        [],
        ["metric", "recon_err_9", "(trials with data.n_per_class=10)"],
    ),
    "per-layer lambdas of the wrong length": (
        {"method": {"name": "rr", "lam": [1e-5] * 5}},
        [],
        ["method.lam", "5 values"],
    ),
    "batch norm at batch size 1": ({"train.batch_size": 1}, [], ["train.batch_size", "BatchNorm1d"]),
    "name escapes runs/": ({"name": "../escape"}, [], ["name"]),
    "name with a slash": ({"name": "a/b"}, [], ["name"]),
    "unreachable --address": ({}, ["--address", "127.0.0.1:{port}", *SHARED], ["--address", "{port}"]),
    "malformed --address": ({}, ["--address", "nowhere", *SHARED], ["--address", "nowhere"]),
    "Ray Client --address": (
        {},
        ["--address", "ray://127.0.0.1:{port}", *SHARED],
        ["--address", "Ray Client"],
    ),
    "head-local storage with a cluster": (
        {},
        ["--address", "127.0.0.1:{port}", "--storage", "{tmp}/local"],
        ["--storage", "shared"],
    ),
    "storage under a file": (
        {},
        ["--storage", "{tmp}/spec.yaml/runs"],
        ["--storage", "spec.yaml", "Not a directory"],
    ),
    "storage that cannot be created": (
        {},
        ["--storage", "/proc/racecar-study"],
        ["--storage", "/proc/racecar-study"],
    ),
    "file:// storage not asserted shared": (
        {},
        ["--address", "127.0.0.1:{port}", "--storage", "file://{tmp}/shared"],
        ["--storage"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_creates_nothing(case, workdir, capsys):
    changes, flags, expected = CASES[case]
    raw = spec_dict(**{k: v for k, v in changes.items() if "." in k})
    raw.update({k: v for k, v in changes.items() if "." not in k})
    spec = write_spec(workdir, raw)
    fill = {"port": free_port(), "tmp": workdir}
    rc, out, err = run_cli(capsys, "run", str(spec), *(f.format(**fill) for f in flags))
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("racecar-study: error: "), err
    for text in expected:
        assert text.format(**fill) in lines[0], lines[0]
    assert sorted(p.name for p in workdir.iterdir()) == ["spec.yaml"]  # no runs/, no storage folder


def test_validate_reports_the_same_errors(workdir, capsys):
    spec = write_spec(workdir, spec_dict(**{"train.epochs": -1}))
    rc, _, err = run_cli(capsys, "validate", str(spec))
    assert rc == 2 and "train.epochs" in err and len(err.strip().splitlines()) == 1
    assert "also wrong" not in err


@pytest.mark.parametrize(
    "method",
    [
        {"name": "rr", "lam": 0.0},  # written out: an ablation
        {"name": "rr", "lam": [1e-6, 0.0]},
        {"name": "ort"},  # weighed by ort_weight, whose default is the paper's
    ],
)
def test_a_lambda_written_out_or_a_method_without_one_passes(workdir, capsys, method):
    raw = {**spec_dict(), "method": method}
    rc, _, err = run_cli(capsys, "validate", str(write_spec(workdir, raw)))
    assert rc == 0, err
    raw["search"]["space"]["method.lam"] = {"loguniform": [1e-7, 1e-3], "when": {"method.name": "rr"}}
    raw["search"]["space"]["method.name"] = {"choice": ["std", "rr"]}
    raw["method"] = {"name": "std"}
    rc, _, err = run_cli(capsys, "validate", str(write_spec(workdir, raw)))
    assert rc == 0, err  # searched


def test_validate_names_every_field_at_fault_in_its_one_line(workdir, capsys):
    raw = spec_dict(**{"train.epochs": 0, "train.batch_size": "big", "train.epochz": 1})
    raw["method"] = {"name": "rr", "lam": -1.0}
    rc, _, err = run_cli(capsys, "validate", str(write_spec(workdir, raw)))
    [line] = err.strip().splitlines()
    assert rc == 2 and line.startswith("racecar-study: error: method.lam: lambda must be finite"), err
    assert line.endswith("(also wrong: train.epochs, train.batch_size, train.epochz)"), err


def test_validate_builds_the_networks_the_search_can_ask_for(workdir, capsys):
    space = {"model.arch": {"choice": ["mlp", "lenet"]}, "train.lr": {"loguniform": [1e-4, 1e-2]}}
    raw = spec_dict(**{"model.widths": None, "search.space": space})
    rc, _, err = run_cli(capsys, "validate", str(write_spec(workdir, raw)))
    assert rc == 0, err  # both take 28x28 digits
    raw["data"] = {"name": "digits"}  # 8x8: too small for lenet's two 5x5 convolutions and pools
    rc, _, err = run_cli(capsys, "validate", str(write_spec(workdir, raw)))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "lenet" in err and "model.arch=lenet" in err and "mlp" not in err


def test_validate_prints_the_resolved_spec(workdir, capsys):
    import yaml

    spec = write_spec(workdir, spec_dict(**{"train.epochs": 7}))
    rc, out, _ = run_cli(capsys, "validate", str(spec))
    resolved = yaml.safe_load(out)
    assert rc == 0 and resolved["train"]["epochs"] == 7 and resolved["train"]["optimizer"] == "adam"
    rc, out, _ = run_cli(capsys, "validate", "--smoke", str(spec))
    smoke = yaml.safe_load(out)
    assert (
        smoke["name"] == "tiny-smoke"
        and smoke["train"]["epochs"] == 2
        and smoke["search"]["num_samples"] <= 4
    )
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize(
    ("metric", "mode"), [("val_acc", "max"), ("val_loss", "min"), ("recon_err_1", "min"), ("lr", "max")]
)
def test_an_omitted_mode_follows_the_metric(workdir, capsys, metric, mode):
    import yaml

    spec = write_spec(workdir, spec_dict(metric=metric))
    rc, out, _ = run_cli(capsys, "validate", str(spec))
    assert rc == 0 and yaml.safe_load(out)["mode"] == mode


def test_missing_spec_file_and_non_study_folder(workdir, capsys):
    rc, _, err = run_cli(capsys, "run", "nope.yaml")
    assert rc == 2 and "nope.yaml" in err
    (workdir / "junk").mkdir()
    rc, _, err = run_cli(capsys, "run", "junk")
    assert rc == 2 and "junk is a folder, not a spec file" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run_cli(capsys, "resume", "junk")
    assert rc == 2 and "not a study folder" in err
    rc, _, err = run_cli(capsys, "results", "junk")
    assert rc == 2 and "results.parquet" in err
    (workdir / "junk" / "results.parquet").write_text("not parquet")
    rc, _, err = run_cli(capsys, "results", "junk")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "not a readable results table" in err, err


def test_an_existing_study_folder_is_not_overwritten(workdir, capsys):
    (workdir / "runs" / "tiny").mkdir(parents=True)
    (workdir / "runs" / "tiny" / "keep").write_text("x")
    rc, _, err = run_cli(capsys, "run", str(write_spec(workdir, spec_dict())))
    assert rc == 2 and "resume" in err and "--overwrite" in err
    assert (workdir / "runs" / "tiny" / "keep").exists()
