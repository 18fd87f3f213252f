"""results.parquet rows and the summary: a trial over several seeds shows their spread beside its
mean, so a difference between trials can be read against it."""

from types import SimpleNamespace

from rich.console import Console
from study_helpers import spec_dict

from racecar_study.study.progress import print_summary
from racecar_study.study.results import to_table, trial_row
from racecar_study.study.spec import parse_spec


def _trial(trial_id: str, acc: float, spread: float):
    last = {"epoch": 4, "val_acc": acc, "val_acc_std": spread, "time_total_s": 1.0}
    return SimpleNamespace(
        trial_id=trial_id,
        status="TERMINATED",
        has_reported_at_least_once=True,
        last_result=last,
        metric_analysis={"val_acc": {"max": acc}},
        checkpoint=None,
        config={"train.lr": 0.01},
        error_file=None,
    )


def _summary(seeds: list[int]) -> tuple[list[dict], str]:
    raw = spec_dict(seeds=seeds, metric="val_acc", **{"train.epochs": 4})
    raw["search"]["space"] = {"train.lr": {"choice": [0.01, 0.02]}}
    spec = parse_spec(raw)
    rows = [trial_row(_trial("a", 0.91, 0.02), spec, "done"), trial_row(_trial("b", 0.9, 0.03), spec, "done")]
    console = Console(width=200, record=True)
    print_summary(console, to_table(rows, spec), "runs/x")
    return rows, console.export_text()


def test_several_seeds_show_their_spread():
    rows, text = _summary([0, 1, 2])
    assert [r["final_metric_std"] for r in rows] == [0.02, 0.03]
    assert "final val_acc ± seeds' std" in text and "0.91 ± 0.02" in text and "0.9 ± 0.03" in text


def test_one_seed_has_no_spread_to_show():
    rows, text = _summary([0])
    assert [r["final_metric_std"] for r in rows] == [None, None]
    assert "±" not in text
