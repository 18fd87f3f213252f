"""What a person sees while a study runs and when it ends.

On a terminal: a live `rich` view (trial counts by state, best so far, the running trials).
Elsewhere (CI logs, pipes): one plain line per trial start and finish.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from racecar_study.study.results import STATUSES, best_rows, planned_epochs, results_meta, trial_status

if TYPE_CHECKING:
    from racecar_study.study.spec import StudySpec

SHOWN_IF_ANY = ("diverged",)  # the live headline names these only once they occur
REFRESH_S = 0.5
ERRORS_SHOWN = 3  # the summary's lines of failed trials


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


class ProgressView:
    def __init__(self, spec: StudySpec, console: Console | None = None, live: bool | None = None):
        self.spec = spec
        self.console = console or Console()
        self.live_mode = self.console.is_terminal if live is None else live
        self.total = 0
        self._live: Live | None = None
        self._last_draw = 0.0
        self._states: dict[str, str] = {}
        # How a trial counts; the study session replaces it with its own (StudySession.status).
        self.status = lambda trial: trial_status(trial, planned_epochs(spec, trial))

    # -- counts ------------------------------------------------------------------------------------

    def _counts(self, trials) -> Counter:
        counts = Counter(self.status(t) for t in trials)
        counts["pending"] += max(0, self.total - len(trials))  # not yet asked of the searcher
        return counts

    def _best(self, trials) -> tuple[str, float] | None:
        scored = [
            (t.trial_id, t.metric_analysis[self.spec.metric][self.spec.mode])
            for t in trials
            if self.spec.metric in t.metric_analysis
        ]
        if not scored:
            return None
        pick = max if self.spec.mode == "max" else min
        return pick(scored, key=lambda s: s[1])

    def _headline(self, trials) -> str:
        counts = self._counts(trials)
        text = "  ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s] or s not in SHOWN_IF_ANY)
        best = self._best(trials)
        if best:
            text += f"  | best {self.spec.metric} {best[1]:.4g} ({best[0]})"
        return text

    # -- events ------------------------------------------------------------------------------------

    def start(self, total: int) -> None:
        self.total = total
        self.console.print(
            f"study {self.spec.name}: {total} trials, metric {self.spec.metric} ({self.spec.mode})"
        )
        if self.live_mode:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def update(self, trials, force: bool = False) -> None:
        if self._live is not None:
            now = time.monotonic()
            if force or now - self._last_draw >= REFRESH_S:
                self._live.update(self._render(trials))
                self._last_draw = now
            return
        for t in trials:  # plain mode: a line per state change
            state = self.status(t)
            if self._states.get(t.trial_id) != state and state != "pending":
                self._states[t.trial_id] = state
                self.console.print(self._line(t, state, trials), highlight=False, soft_wrap=True)

    def _line(self, trial, state: str, trials) -> str:
        last = trial.last_result if trial.has_reported_at_least_once else {}
        metric = _fmt(last.get(self.spec.metric)) if last else "-"
        return (
            f"{time.strftime('%H:%M:%S')} trial {trial.trial_id} {state:<8} epoch {last.get('epoch', 0)}"
            f" {self.spec.metric} {metric} | {self._headline(trials)}"
        )

    def _render(self, trials):
        table = Table(box=None, pad_edge=False)
        for col in ("trial", "state", "epoch", self.spec.metric, *self.spec.search.space):
            table.add_column(col)
        for t in trials:
            state = self.status(t)
            if state != "running":
                continue
            last = t.last_result if t.has_reported_at_least_once else {}
            cfg = [_fmt(t.config.get(p)) for p in self.spec.search.space]
            table.add_row(t.trial_id, state, _fmt(last.get("epoch")), _fmt(last.get(self.spec.metric)), *cfg)
        return Group(self._headline(trials), table)

    def stop(self, trials) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(self._headline(trials), highlight=False)


def print_summary(console: Console, table, folder: str, k: int = 5, browse: bool = True) -> None:
    """The best trials, and the commands to look further."""
    meta = results_meta(table)
    rows = best_rows(table, k)
    config_cols = [c for c in table.column_names if c.startswith("config.")]
    # several seeds: the last report's mean and spread beside the best mean (older files lack it)
    spread = any(r.get("final_metric_std") is not None for r in rows)
    metric = meta.get("metric")
    out = Table(title=f"best trials of {meta.get('study')} by {metric} ({meta.get('mode')})")
    final = [f"final {metric} ± seeds' std"] if spread else []
    for col in ("trial", "status", "epochs", f"best {metric}", *final, *(c[7:] for c in config_cols)):
        out.add_column(col)
    for r in rows:
        last = [f"{_fmt(r['final_metric'])} ± {_fmt(r['final_metric_std'])}"] if spread else []
        out.add_row(
            r["trial_id"],
            r["status"],
            str(r["epochs"]),
            _fmt(r["best_metric"]),
            *last,
            *(_fmt(r[c]) for c in config_cols),
        )
    console.print(out)
    counts = Counter(table.column("status").to_pylist())
    console.print("  ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s]), highlight=False)
    failed = [r for r in table.select(["trial_id", "status", "error"]).to_pylist() if r["status"] == "error"]
    for r in failed[:ERRORS_SHOWN]:
        why = r["error"] or "no error recorded"
        console.print(f"error {r['trial_id']}: {why}", highlight=False, soft_wrap=True)
    if len(failed) > ERRORS_SHOWN:
        more = len(failed) - ERRORS_SHOWN
        console.print(f"... and {more} more (results.parquet, column error)", highlight=False)
    if browse:
        console.print(f"browse: racecar-study results {folder}", highlight=False)
