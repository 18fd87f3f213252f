"""Launch and resume: checks first (nothing is created until they pass), then the Tuner.

Local runs start an embedded Ray; `--address` attaches to an existing cluster, whose trials then
need storage they can all reach (layout.py). The driver keeps results.parquet, optuna.db and the
progress view; trials get the data through the object store.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from racecar_study.study import (
    cluster,
    tracking_hooks,  # noqa: F401 (registers MLflow tracking for every study)
    tune_state,
)
from racecar_study.study.errors import LaunchError
from racecar_study.study.hooks import StudyHooks, StudyInfo, hooks_for
from racecar_study.study.layout import (
    StudyPaths,
    check_storage,
    check_writable,
    read_study_file,
    study_paths,
    write_study_file,
)
from racecar_study.study.lock import StudyLock, check_free
from racecar_study.study.netcheck import check_networks
from racecar_study.study.progress import ProgressView
from racecar_study.study.results import ENDED
from racecar_study.study.search import build_scheduler, build_search, check_study, param_space
from racecar_study.study.session import StudyEvents, StudySession, attach, detach
from racecar_study.study.signals import remembered_interrupts, send_ctrl_c, stop_signals
from racecar_study.study.space import check_space, grid_points
from racecar_study.study.spec import StudySpec, apply_overrides, dump_spec, load_spec
from racecar_study.study.tune_log import MissingResults, RestoreFailure, TrialFailure, UnfinishedTrials

_log = logging.getLogger(__name__)

TUNE_ENV = {
    # Tune snapshots its experiment state (trial states, searcher) at most this often; a study
    # killed between snapshots re-runs at most the last second of work on resume.
    "TUNE_GLOBAL_CHECKPOINT_S": "1",
    # No warning when a snapshot is slow to sync: resume relies on them.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # The progress view replaces Tune's console output; the legacy engine at verbose=0 is silent.
    "RAY_AIR_NEW_OUTPUT": "0",
}


TRIAL_RETRIES = 1  # a failed trial runs again once, from its last checkpoint (a lost worker or node)


def _tune_env() -> None:
    for key, value in TUNE_ENV.items():
        os.environ.setdefault(key, value)


@dataclass
class LaunchOptions:
    address: str | None = None
    storage: str | None = None
    shared_storage: bool = False
    smoke: bool = False
    tracking_uri: str | None = None
    overwrite: bool = False
    view_factory: Callable[[StudySpec], ProgressView] | None = None  # the spec as it runs -> view
    hooks: StudyHooks | None = None  # default: the registered providers' hooks (hooks.py)


@dataclass
class Outcome:
    spec: StudySpec
    paths: StudyPaths
    table: Any  # pyarrow.Table of results.parquet
    wall_s: float
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0  # trials the study asked for
    ran: bool = True  # False: a resume found every trial ended and started nothing

    @property
    def unfinished(self) -> int:
        """Trials not done, stopped, diverged or failed: an interrupted study, to resume."""
        ended = sum(self.counts.get(s, 0) for s in ENDED)
        return max(0, self.total - ended)


def resolve_spec(spec: StudySpec, opts: LaunchOptions, new: bool = True) -> StudySpec:
    """The spec as it will run: data paths absolute, a grid's size as its num_samples, --tracking-uri
    and --smoke applied, search and scheduler checked."""
    spec = _absolute_data_paths(spec)
    if spec.search.algorithm == "grid":  # the grid decides how many trials there are
        check_space(spec.search.space, "grid")
        spec = apply_overrides(spec, {"search.num_samples": len(grid_points(spec.search.space))})
    if opts.tracking_uri:
        spec = apply_overrides(spec, {"tracking.tracking_uri": opts.tracking_uri})
    if opts.smoke:
        from racecar_study.study.smoke import smoke_spec

        spec = smoke_spec(spec)
    check_study(spec, new)
    return spec


def _absolute_data_paths(spec: StudySpec) -> StudySpec:
    """Relative data paths (image_folder:PATH, root=), given or among a search's choices, taken
    from the driver's working directory: trials run in their own folders, and a resume may start
    elsewhere."""
    from racecar_study.data import absolute_paths

    raw = spec.model_dump(mode="json", exclude_none=False)
    name, options = absolute_paths(spec.data.name, spec.data.options())
    raw["data"] = {"name": name, **options}
    space = raw["search"]["space"]
    names = [spec.data.name]
    if (searched := space.get("data.name")) and searched.get("choice"):
        searched["choice"] = [absolute_paths(n, {})[0] for n in searched["choice"]]
        names += searched["choice"]
    for path, param in space.items():
        option = path.removeprefix("data.")
        if path.startswith("data.") and option != "name" and param.get("choice"):
            param["choice"] = [_absolute_option(names, option, v) for v in param["choice"]]
    resolved = StudySpec.model_validate(raw)
    return spec if resolved == spec else resolved


def _absolute_option(names: list[str], option: str, value: Any) -> Any:
    """`value` made absolute if `option` holds a path for any of the data sets `names`."""
    from racecar_study.data import absolute_paths

    for name in names:
        if (made := absolute_paths(name, {option: value})[1][option]) != value:
            return made
    return value


def load_tables(spec: StudySpec, seeds: list[int] | None = None) -> dict[int, Any] | None:
    """One Arrow table per seed (default: the spec's), or None when trials must load their own
    (the search changes data)."""
    if any(p.startswith("data.") for p in spec.search.space):
        return None
    from racecar_study.data import load_table

    return {s: load_table(spec.data.name, seed=s, **spec.data.options()) for s in seeds or spec.seeds}


def selection_split(tables: dict[int, Any] | None) -> str | None:
    """Where trials measure their val_* metrics: "val", or "test" when the data has no validation
    samples (experiment.Run.val falls back to the test split); None when trials load their own."""
    if tables is None:
        return None
    from racecar_study.data.storage import table_meta

    return "val" if all(table_meta(t)["counts"]["val"] for t in tables.values()) else "test"


def note_selection_split(spec: StudySpec, tables: dict[int, Any] | None) -> None:
    """Say so when the search would select on test data: the metric is a val_* metric and the
    data has no validation split."""
    if spec.metric.startswith("val_") and selection_split(tables) == "test":
        print(
            f"note: {spec.metric} is measured on the test split ({spec.data.name} has no validation "
            "split), so the search selects on test data; set data.val_fraction (e.g. 0.1) to hold "
            "validation data out of training",
            file=sys.stderr,
        )


def _check_cluster(spec: StudySpec, address: str | None) -> None:
    if address is None:
        cluster.check_resources(spec.resources, cluster.local_nodes(), "this machine")
    else:
        cluster.check_resources(spec.resources, cluster.cluster_nodes(), f"the cluster at {address}")


def _trainable(spec: StudySpec, tables: dict[int, Any] | None, hooks: StudyHooks, context: dict[str, Any]):
    import ray
    from ray import tune

    from racecar_study.study.trainable import train_trial

    refs = None if tables is None else {s: ray.put(t) for s, t in tables.items()}
    fn = tune.with_parameters(
        train_trial, spec=spec, data_refs=refs, trial_hooks=hooks.trial, context=context
    )
    return tune.with_resources(fn, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def _configs(spec: StudySpec, paths: StudyPaths, search):
    from ray import tune

    from racecar_study.study.trainable import trial_dirname

    tune_config = tune.TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        search_alg=search.search_alg,
        scheduler=build_scheduler(spec),
        num_samples=search.num_samples,
        reuse_actors=True,
        trial_name_creator=trial_dirname,
        trial_dirname_creator=trial_dirname,
    )
    run_config = tune.RunConfig(
        name=paths.tune_path.rsplit("/", 1)[1],
        storage_path=paths.storage,
        callbacks=[StudyEvents()],
        # A lost node costs one retry from the trial's last checkpoint; a bug fails twice, not forever.
        failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        # Tune keeps every checkpoint; the session deletes surplus ones once resume can't need
        # them (pruning.py): Tune's num_to_keep could delete the one its saved state points at.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        verbose=0,
    )
    return tune_config, run_config


def _fit(
    tuner, spec: StudySpec, paths: StudyPaths, opts: LaunchOptions, hooks: StudyHooks, restoring=(0, None)
) -> Outcome:
    view = opts.view_factory(spec) if opts.view_factory else None
    session = StudySession(spec, paths, view, hooks.driver, restoring)
    attach(session)
    start = time.perf_counter()
    try:
        with (
            RestoreFailure(session),
            TrialFailure(session, TRIAL_RETRIES),
            UnfinishedTrials(session),
            MissingResults(session),
        ):
            tuner.fit()
    finally:
        detach()
    session.prune_ended()  # Tune has saved its final state: ended trials keep spec.checkpoint.keep
    if session.table is None:
        raise LaunchError(f"{paths.folder}: the study ended before any trial was created")
    for hook in hooks.driver:
        hook.on_study_end(session.table)
    counts = _counts(session.table)
    return Outcome(spec, paths, session.table, time.perf_counter() - start, counts, session.total)


def _counts(table) -> dict[str, int]:
    return dict(Counter(table.column("status").to_pylist()))


def _all_ended(spec: StudySpec, paths: StudyPaths, info: dict[str, Any]) -> Outcome | None:
    """The study's outcome when results.parquet holds every trial it planned (study.json) and
    each has ended: a resume then has nothing to run and starts no Ray. None otherwise."""
    from racecar_study.study.results import read_results

    planned = info.get("trials")
    if not planned or not paths.results.is_file():
        return None
    table = read_results(paths.results)
    counts = _counts(table)
    if table.num_rows != planned or sum(counts.get(s, 0) for s in ENDED) != planned:
        return None
    return Outcome(spec, paths, table, 0.0, counts, planned, ran=False)


def _start_hooks(spec, paths, opts, resumed: bool) -> tuple[StudyHooks, dict[str, Any]]:
    """Called after every check and before anything is created: a hook that raises (an unreachable
    tracking server) stops the launch with no study folder and no Ray started."""
    hooks = opts.hooks if opts.hooks is not None else hooks_for(spec)
    context: dict[str, Any] = {}
    started = []
    info = StudyInfo(spec, paths.folder, paths.storage, resumed, opts.address)
    try:
        for hook in hooks.driver:
            context.update(hook.on_study_start(info))
            started.append(hook)
    except BaseException as e:
        _abort(StudyHooks(driver=started), e)
        raise
    return hooks, context


def _abort(hooks: StudyHooks, error: BaseException) -> None:
    for hook in hooks.driver:
        try:
            hook.on_study_abort(error)
        except Exception:  # the launch error is the one to report
            pass


def run_study(spec: StudySpec, opts: LaunchOptions) -> Outcome:
    spec = resolve_spec(spec, opts)
    paths = study_paths(spec.name, opts.storage, opts.address, opts.shared_storage)
    if paths.folder.exists() and not opts.overwrite:
        raise LaunchError(
            f"name: the study folder {paths.folder} exists; resume it with "
            f"`racecar-study resume {paths.folder}` or start over with --overwrite"
        )
    if paths.folder.exists():
        check_free(paths.folder)  # --overwrite of a study a driver is running
    if opts.address is not None:
        cluster.probe(opts.address)
    else:
        _check_cluster(spec, None)
    tables = load_tables(spec)  # bad data options stop here, before Ray starts
    check_networks(spec, tables)
    check_writable(paths)
    hooks, context = _start_hooks(spec, paths, opts, resumed=False)
    with _attached(spec, opts, hooks):
        return _launch(spec, paths, tables, opts, hooks, context)


@contextmanager
def _attached(spec: StudySpec, opts: LaunchOptions, hooks: StudyHooks) -> Iterator[None]:
    """Ray connected (and checked) for the body; the driver hooks hear of any failure."""
    try:
        cluster.connect(opts.address)
        try:
            if opts.address is not None:
                _check_cluster(spec, opts.address)
            # set after ray.init, whose own handler dumps a stack trace and ends the driver at once
            with stop_signals(send_ctrl_c), remembered_interrupts():
                yield
        finally:
            cluster.disconnect()
    except BaseException as e:
        _abort(hooks, e)
        if isinstance(e, SystemExit) and e.code == signal.SIGTERM:
            # the SIGTERM handler ray.init sets exits; outside Ray's start-up it stops as Ctrl-C does
            raise KeyboardInterrupt from None
        raise


def _limit(smoke: bool) -> int | None:
    from racecar_study.study.smoke import TRIALS

    return TRIALS if smoke else None


def _launch(spec, paths, tables, opts, hooks: StudyHooks, context: dict[str, Any]) -> Outcome:
    from ray import tune

    with ExitStack() as held:
        if paths.folder.exists():  # --overwrite, now that every check has passed
            held.enter_context(StudyLock(paths.folder))  # never under a driver that runs it
            shutil.rmtree(paths.folder)
        try:
            paths.folder.mkdir(parents=True)
        except FileExistsError:
            raise LaunchError(
                f"name: another driver created the study folder {paths.folder} meanwhile"
            ) from None
        held.enter_context(StudyLock(paths.folder))
        try:
            search = build_search(spec, paths, limit=_limit(opts.smoke))
            record_launch(paths, spec, opts, search.num_samples)
            note_selection_split(spec, tables)  # every check passed: the study is starting
            _tune_env()
            tune_config, run_config = _configs(spec, paths, search)
            tuner = tune.Tuner(
                _trainable(spec, tables, hooks, context),
                param_space=search.param_space,
                tune_config=tune_config,
                run_config=run_config,
            )
            return _fit(tuner, spec, paths, opts, hooks)
        except BaseException:
            # Ctrl-C or an error before Tune saved anything: a folder that `run` would call taken
            # and `resume` no study; without it, the same `run` starts over
            if not _recorded(paths):
                shutil.rmtree(paths.folder, ignore_errors=True)
            raise


def record_launch(paths: StudyPaths, spec: StudySpec, opts: LaunchOptions, trials: int) -> None:
    """spec.yaml (the spec as it runs) and study.json (the launch facts), which resume reads."""
    text = dump_spec(spec).encode()
    paths.spec_file.write_bytes(text)
    write_study_file(
        paths,
        name=spec.name,
        address=opts.address,
        smoke=opts.smoke,
        spec_hash=spec.hash(),
        # the file's own bytes: resume tells an edit from a newer version's added defaults
        spec_file_sha256=hashlib.sha256(text).hexdigest(),
        trials=trials,
    )


def _recorded(paths: StudyPaths) -> bool:
    """Whether the study folder holds anything a resume or `results` can use: results.parquet, or
    a state Tune saved (its Tuner writes tuner.pkl at once, before any). An object store's is kept."""
    if paths.results.is_file() or paths.tune_dir is None:
        return True
    return any(paths.tune_dir.glob("experiment_state-*.json"))


def resume_study(folder: str, opts: LaunchOptions) -> Outcome:
    """Continue a stopped study with Tuner.restore: finished trials stay finished, unfinished
    ones continue from their last checkpoint, and the searcher keeps its state."""
    from ray import tune

    paths, info = read_study_file(folder)
    saved = load_spec(paths.spec_file)
    if info.get("spec_file_sha256") not in (None, hashlib.sha256(paths.spec_file.read_bytes()).hexdigest()):
        # Tune's saved trials and searcher belong to the spec they were launched with: an edited
        # one would relabel them (a longer train.epochs calls every done trial stopped) and mix
        # trials of two studies in one table
        raise LaunchError(
            f"{paths.spec_file} was changed after the study was launched; a resume runs the study as "
            "launched: put the file back, or start a new study from your edited spec with `racecar-study run`"
        )
    spec = resolve_spec(saved, replace(opts, smoke=False), new=False)  # saved already shrunk
    check_free(paths.folder)  # a live driver's study is its own, ended or not
    if (ended := _all_ended(spec, paths, info)) is not None:
        return ended
    if opts.address is not None:
        check_storage(paths.storage, opts.address, opts.shared_storage)
        cluster.probe(opts.address)
    else:
        _check_cluster(spec, None)
    if not tune.Tuner.can_restore(paths.tune_path):
        raise LaunchError(f"{folder}: no Ray Tune experiment state at {paths.tune_path} to resume")
    with StudyLock(paths.folder):  # before anything in the folder is touched
        if paths.tune_dir is not None:  # a folder; an object store gets whole objects
            for name in tune_state.mend(paths.tune_dir):
                _log.warning("resume: %s was cut short by the kill; restored Tune's staging copy", name)
            restoring = tune_state.saved_trials(paths.tune_dir)
        else:
            restoring = (0, None)
        tables = load_tables(spec)
        hooks, context = _start_hooks(spec, paths, opts, resumed=True)
        with _attached(spec, opts, hooks):
            _tune_env()
            with MissingResults(None):  # trials the kill caught before their first report
                tuner = tune.Tuner.restore(
                    paths.tune_path,
                    trainable=_trainable(spec, tables, hooks, context),
                    resume_unfinished=True,
                    param_space=param_space(spec),  # the searcher and num_samples come from the saved state
                )
            return _fit(tuner, spec, paths, opts, hooks, restoring)
