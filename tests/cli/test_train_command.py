"""`racecar-study train`: outputs, one-line errors, nothing written on bad input."""

import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import yaml

from racecar_study.cli.main import main


def test_train_writes_every_output(tmp_path, monkeypatch):
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--data",
            "peak",
            "--data-opt",
            "n_per_class=10",
            "--arch",
            "peak_mlp",
            "--method",
            "rr",
            "--lam",
            "1e-6",
            "--reduction",
            "sum",
            "--epochs",
            "3",
            "--batch-size",
            "10",
            "--lr",
            "1e-3",
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    for name in ("model.pt", "metrics.csv", "config.yaml", "reconstructions.png", "svd/vectors.png"):
        assert (out / name).stat().st_size > 0, name
    values = np.load(out / "svd" / "singular_values.npy")
    vectors = np.load(out / "svd" / "right_singular_vectors.npy")
    assert vectors.shape[1] == 784 and len(values) == vectors.shape[0]
    assert np.all(np.diff(values) <= 1e-9)
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 4  # header + 3 epochs
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["method"]["lam"] == 1e-6 and cfg["seed"] == 0
    assert not (out / "pretrain.csv").exists()  # rr has no pretraining phase


def test_pre_writes_and_prints_its_pretraining_curve(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    flags = "--data peak --data-opt n_per_class=10 --arch mlp --model-opt widths=[16,8] --method pre"
    flags += " --pre-epochs 4 --epochs 2 --batch-size 10"
    rc = main(["train", *flags.split(), "--out", str(out)])
    assert rc == 0
    rows = (out / "pretrain.csv").read_text().strip().splitlines()
    assert rows[0] == "layer,epoch,recon_loss"
    assert [r.split(",")[:2] for r in rows[1:]] == [[str(m), str(e)] for m in (0, 1) for e in range(1, 5)]
    printed = capsys.readouterr().out
    assert "pretrain layer 0 epoch 4/4 recon_loss=" in printed and "pretrain layer 1 epoch 4/4" in printed
    assert printed.index("pretrain layer 1") < printed.index("epoch 1/2")


def test_a_diverged_run_says_so_and_writes_no_pictures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "c"))
    out = tmp_path / "run"
    flags = "--data peak --data-opt n_per_class=10 --arch mlp --method rr --lam 1e-3"
    flags += " --optimizer sgd --lr 1e12 --epochs 5 --quiet --out " + str(out)
    assert main(["train", *flags.split()]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    pattern = r"racecar-study: diverged: train_loss is nan at epoch (\d+); .* no SVD or pictures"
    said = re.fullmatch(pattern, lines[-1])
    assert len(lines) == 1 and said, lines
    epochs = int(said[1])
    assert epochs < 5  # it stopped where it diverged
    written = sorted(p.name for p in out.iterdir())
    assert written == ["checkpoint.pt", "config.yaml", "metrics.csv", "model.pt"]
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 1 + epochs


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--data", "nope", "--arch", "peak_mlp"], "unknown data set 'nope'"),
        (["--data", "peak", "--arch", "nope"], "unknown architecture 'nope'"),
        (["--data", "peak", "--arch", "peak_mlp", "--lam", "-1"], "--lam"),
        (["--data", "peak", "--arch", "peak_mlp", "--lam-ratio", "0"], "--lam-ratio"),
        (["--data", "peak", "--arch", "peak_mlp", "--seed", "-1"], "--seed: must be >= 0"),
        (["--data", "peak", "--arch", "peak_mlp", "--method", "zz"], "unknown method 'zz'"),
        (["--data", "peak", "--arch", "peak_mlp", "--method", "rr"], "--lam: --method rr needs a lambda"),
        (["--data", "peak", "--arch", "peak_mlp", "--epochs", "0"], "--epochs"),
        (["--data", "peak", "--arch", "peak_mlp", "--model-opt", "foo=1"], "unknown option 'foo'"),
        (["--data", "peak", "--arch", "peak_mlp", "--device", "cuda:7"], "--device"),
        # found once the model is built (the folder was made before that)
        (["--data", "peak", "--arch", "peak_mlp", "--batch-size", "1"], "train.batch_size: 1 sample per"),
        (["--data", "digits", "--arch", "lenet"], "input 1x8x8 is too small"),
        (["--data", "peak"], "the following arguments are required: --arch (or --resume)"),
        (["--resume", "--lr", "0.1"], "settings from --out's config.yaml; drop --lr"),
        (["--resume"], "holds no run to resume (it needs config.yaml and checkpoint.pt; found neither)"),
    ],
)
def test_bad_flags_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, flags, needle):
    # In-process (about 3 s less per case than a new interpreter); the exit code and stderr of a
    # real process are checked by the out-folder test below.
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "c"))
    out = tmp_path / "run"
    try:
        rc = main(["train", *flags, "--out", str(out)])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err
    assert not out.exists()


def test_an_out_folder_that_cannot_be_made_is_a_usage_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "racecar_study.cli", "train", "--data", "peak", "--arch", "peak_mlp"]
        + ["--out", str(tmp_path / "afile" / "run")],
        capture_output=True,
        text=True,
        env={"RACECAR_CACHE_DIR": str(tmp_path / "c"), "PATH": ""},
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out: cannot create" in lines[0] and "Not a directory" in lines[0], (
        proc.stderr
    )
    assert [p.name for p in tmp_path.iterdir() if p.name != "c"] == ["afile"]  # c: the data cache


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_keeps_the_finished_epochs(tmp_path, signum):
    """Interrupted (Ctrl-C, or `kill`'s SIGTERM), train writes metrics.csv of the finished epochs,
    keeps the checkpoint of the last one (not the weights part-way through the next) and says so
    in one line; exit 130."""
    import torch

    out = tmp_path / "run"
    flags = "--data peak --data-opt n_per_class=10 --arch mlp --model-opt widths=[16] --epochs 1000"
    proc = subprocess.Popen(
        [sys.executable, "-m", "racecar_study.cli", "train", *flags.split(), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"RACECAR_CACHE_DIR": str(tmp_path / "c"), "PATH": "", "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    assert proc.stdout.readline().startswith("epoch 100/1000 ")  # training is under way
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    said = re.fullmatch(
        r"racecar-study: interrupted after (\d+) of 1000 epochs; "
        r"checkpoint.pt, config.yaml, metrics.csv in \S+ \(checkpoint of epoch (\d+)\); "
        r"continue with --resume --out \S+",
        err.strip(),
    )
    done, saved = int(said[1]), int(said[2])
    assert done >= 100 and saved in (done, done - 1), err  # Ctrl-C may land while epoch `done` saves
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + done and rows[-1].startswith(f"{done},")
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == saved
    # weights part-way through an epoch are not an output, and no half-written checkpoint is left
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "metrics.csv"]


def test_a_killed_run_keeps_its_finished_epochs_and_resumes(tmp_path, monkeypatch):
    """SIGKILL leaves no chance to write anything: metrics.csv gets each epoch's row as it ends, so
    the kill loses none, and --resume goes on from the last checkpoint with every epoch once."""
    out = tmp_path / "run"
    flags = "--data peak --data-opt n_per_class=10 --arch mlp --model-opt widths=[16] --epochs 150"
    proc = subprocess.Popen(
        [sys.executable, "-m", "racecar_study.cli", "train", *flags.split(), "--out", str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={"RACECAR_CACHE_DIR": str(tmp_path / "c"), "PATH": "", "PYTHONUNBUFFERED": "1"},
    )
    while not proc.stdout.readline().startswith("epoch 60/150 "):  # progress every 15 epochs
        assert proc.poll() is None
    proc.kill()
    proc.wait(timeout=30)
    before = (out / "metrics.csv").read_text().splitlines()
    assert len(before) > 60 and sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt",
        "config.yaml",
        "metrics.csv",
    ]
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "c"))
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    after = (out / "metrics.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in after[1:]] == list(range(1, 151))
    assert after[:60] == before[:60]  # the epochs before the kill, kept as they were


@pytest.mark.parametrize("method", ["rr", "pre"])
def test_resume_finishes_an_interrupted_run_as_if_never_stopped(tmp_path, monkeypatch, capsys, method):
    """Ctrl-C after epoch 4 of 6, then `train --resume`: the same weights and metrics (but for the
    epochs' times) as a run never stopped; `pre` does not pretrain again."""
    import torch

    from racecar_study.core import callbacks

    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "c"))
    flags = ["train", "--data", "peak", "--data-opt", "n_per_class=10", "--arch", "peak_mlp"]
    flags += ["--method", method, "--lam", "1e-5", "--pre-epochs", "2", "--epochs", "6"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main([*flags, "--out", str(whole), "--quiet"]) == 0

    class CtrlC(callbacks.Callback):  # stands in for the progress printer: Ctrl-C after epoch 4
        def __init__(self, every, printer=print):
            pass

        def on_epoch_end(self, trainer, metrics):
            if trainer.epoch == 4:
                raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(callbacks, "Progress", CtrlC)
        assert main([*flags, "--out", str(cut)]) == 130
    assert "continue with --resume --out" in capsys.readouterr().err
    assert not (cut / "model.pt").exists()
    assert main(["train", "--resume", "--out", str(cut), "--quiet"]) == 0

    a, b = (torch.load(d / "model.pt", weights_only=True) for d in (whole, cut))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def rows(folder, name="metrics.csv"):
        lines = (folder / name).read_text().splitlines()
        keep = [i for i, col in enumerate(lines[0].split(",")) if col != "epoch_time"]
        return [[line.split(",")[i] for i in keep] for line in lines]

    assert rows(cut) == rows(whole) and len(rows(cut)) == 7
    if method == "pre":
        assert rows(cut, "pretrain.csv") == rows(whole, "pretrain.csv")
    assert main(["train", "--resume", "--out", str(cut)]) == 2  # it has ended now
    assert "nothing to resume" in capsys.readouterr().err


def test_a_previous_run_is_kept_unless_overwrite_is_given(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "c"))
    out = tmp_path / "run"
    flags = ["train", "--data", "peak", "--data-opt", "n_per_class=10", "--arch", "mlp", "--method", "pre"]
    flags += ["--pre-epochs", "1", "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(flags) == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(flags) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"--out {out} holds a previous run (config.yaml, metrics.csv, pretrain.csv" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # nothing touched
    flags[flags.index("pre")] = "std"  # the new run has no pretraining: its old pretrain.csv must go
    assert main([*flags, "--overwrite"]) == 0
    assert not (out / "pretrain.csv").exists() and (out / "notes.txt").read_text() == "mine"
    assert (out / "svd" / "vectors.png").exists()


def test_a_stop_right_after_a_checkpoint_is_replaced_reports_that_checkpoint(tmp_path, monkeypatch, capsys):
    """A signal can land after checkpoint.pt is replaced and before anything notes it (the fresh
    clone's SIGTERM run caught it: 'checkpoint of epoch 100' for a file holding 101). The epoch
    reported is read from the file."""
    import os

    import torch

    from racecar_study.core import callbacks

    monkeypatch.setenv("RACECAR_CACHE_DIR", str(tmp_path / "c"))
    replace, saved = os.replace, []

    def replace_then_stop(src, dst):
        replace(src, dst)
        if str(dst).endswith("checkpoint.pt"):  # metrics.csv is replaced too
            saved.append(dst)
            if len(saved) == 3:
                raise KeyboardInterrupt  # the third checkpoint (epoch 3) is in place

    monkeypatch.setattr(callbacks.os, "replace", replace_then_stop)
    out = tmp_path / "run"
    flags = ["train", "--data", "peak", "--data-opt", "n_per_class=10", "--arch", "mlp", "--epochs", "6"]
    assert main([*flags, "--out", str(out)]) == 130
    assert "(checkpoint of epoch 3)" in capsys.readouterr().err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 3
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 3
