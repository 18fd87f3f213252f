"""Tune's saved driver state in a study folder, checked (and mended) before a resume.

Tune saves its driver state (experiment_state-*.json, the searcher's and the callbacks' state,
one set per driver session) atomically into a staging folder under Ray's session directory and
then copies it into the study folder. The copy is not atomic: a driver killed during it leaves a
truncated file, and `Tuner.restore` then logs an error and starts a new, empty experiment. So
before a resume, the newest file of each kind must be whole. A broken one is replaced, with the
rest of its session's set, by Tune's staging copy when this machine still has it; otherwise the
resume stops with a clear error and nothing is changed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from racecar_study.study.errors import LaunchError

# What Tune restores from, by file-name prefix (ray/tune: tune_controller.py, search/*.py, callback.py).
# Only experiment_state is JSON; the others are cloudpickle, search_gen_state and basic-variant-state
# despite their .json names.
PREFIXES = (
    "experiment_state-",
    "search_gen_state-",
    "searcher-state-",
    "basic-variant-state-",
    "callback-states-",
)


def _default_ray_temp() -> Path:
    try:
        from ray._common.utils import get_default_ray_temp_dir

        return Path(get_default_ray_temp_dir())
    except Exception:  # a private helper: fall back to Ray's documented default
        return Path(tempfile.gettempdir(), "ray")


def intact(path: Path) -> bool:
    """Whole, as far as the format tells: JSON that parses, or a pickle ending in its STOP opcode."""
    data = path.read_bytes()
    if not data:
        return False
    if path.name.startswith("experiment_state-"):
        try:
            json.loads(data)
        except ValueError:
            return False
        return True
    return data.endswith(b".")


def _newest(tune_dir: Path, prefix: str) -> Path | None:
    """The file of one kind that Tune restores from: the newest by name."""
    return max(tune_dir.glob(f"{prefix}*"), default=None)


def newest(tune_dir: Path) -> list[Path]:
    """The file of each kind that Tune restores from."""
    return [f for prefix in PREFIXES if (f := _newest(tune_dir, prefix)) is not None]


def saved_trials(tune_dir: Path) -> tuple[int, str | None]:
    """How many trials the experiment state Tune restores from lists, and that file's name."""
    state = _newest(tune_dir, PREFIXES[0])
    if state is None:
        return 0, None
    return len(json.loads(state.read_bytes()).get("trial_data", [])), state.name


def _session(name: str) -> str:
    """'experiment_state-2026-11-27_19-03-43.json' -> '2026-11-27_19-03-43'."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :].rsplit(".", 1)[0]
    raise ValueError(name)


def _staged(tune_dir: Path, session: str, ray_temp: Path) -> list[Path] | None:
    """Tune's staging copies of every file of one session's state in this study, all whole, or None."""
    entries = list(tune_dir.iterdir())
    names = [f.name for f in entries if f.name.startswith(PREFIXES) and _session(f.name) == session]
    trials = {p.name for p in entries if p.is_dir()}
    pattern = f"session_*/artifacts/*/{tune_dir.name}/driver_artifacts/experiment_state-{session}.json"
    for state in sorted(ray_temp.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True):
        # Every study's experiment folder is called `tune`; this study's staging folder is the one
        # whose trial folders (random ids) are this study's.
        staged_trials = {p.name for p in state.parent.iterdir() if p.is_dir()}
        if not staged_trials or not staged_trials <= trials:
            continue
        files = [state.parent / name for name in names]
        if all(f.is_file() and intact(f) for f in files):
            return files
    return None


def _replace(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.mend")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def mend(tune_dir: Path, ray_temp: Path | None = None) -> list[str]:
    """Make the state Tune will restore from whole. Returns the names of the files replaced;
    raises LaunchError when a file is broken and no whole staging copy is on this machine."""
    broken = [f for f in newest(tune_dir) if not intact(f)]
    if not broken:
        return []
    sessions = sorted({_session(f.name) for f in broken})
    staged = {s: _staged(tune_dir, s, ray_temp or _default_ray_temp()) for s in sessions}
    for session, files in staged.items():  # every copy found before anything is replaced
        if files is None:
            names = ", ".join(f.name for f in broken if _session(f.name) == session)
            raise LaunchError(
                f"{tune_dir.parent}: Tune's saved state {names} was cut short when the driver was "
                "killed, and Ray's staging copy of it is not on this machine; nothing was changed"
            )
    mended = []
    for files in staged.values():
        for src in files:
            _replace(src, tune_dir / src.name)
            mended.append(src.name)
    return mended
