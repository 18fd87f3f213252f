"""Old trial checkpoints deleted by the driver, late enough that a resume never needs them.

Tune's own `num_to_keep` deletes a trial's oldest checkpoint the moment a newer one arrives,
while the experiment state on storage, which `Tuner.restore` reads, is written only every
TUNE_GLOBAL_CHECKPOINT_S: a driver killed in between leaves a state pointing at a deleted
checkpoint, and that trial fails on resume ("does not exist on storage anymore"). So Tune keeps
every checkpoint, and this deletes a trial's surplus only once the newer checkpoint that made it
surplus is LAG_S old (the state has been written since). That holds for a trial that has ended
too: the saved state may still show it running, to be restored from an older checkpoint. Only
once `Tuner.fit` has returned (its final state written) are ended trials pruned to `keep` at once,
from what their folders hold: checkpoints an earlier, killed driver left (it never got to prune
them, and this one never heard of them) go too.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

LAG_S = 10.0  # >> TUNE_GLOBAL_CHECKPOINT_S (runner.TUNE_ENV: 1 s)


@dataclass
class _Kept:
    checkpoint: object  # ray.tune.Checkpoint: .path and .filesystem
    registered: float  # when Tune reported it (monotonic seconds)


@dataclass
class CheckpointPruner:
    keep: int
    lag_s: float = LAG_S
    _trials: dict[str, list[_Kept]] = field(default_factory=dict)

    def add(self, trial_id: str, checkpoint, now: float | None = None) -> None:
        kept = self._trials.setdefault(trial_id, [])
        if all(k.checkpoint.path != checkpoint.path for k in kept):
            kept.append(_Kept(checkpoint, time.monotonic() if now is None else now))

    def prune(self, now: float | None = None, ended: set[str] = frozenset()) -> list[str]:
        """Delete what is surplus and safe to delete; returns the deleted paths."""
        now = time.monotonic() if now is None else now
        deleted = []
        for trial_id, kept in self._trials.items():
            while len(kept) > self.keep:
                # kept[0] became surplus when kept[keep] arrived
                if trial_id not in ended and now - kept[self.keep].registered < self.lag_s:
                    break
                deleted.append(_delete(kept.pop(0).checkpoint))
        return [p for p in deleted if p]

    def prune_stored(self, trial_id: str, filesystem, trial_path: str) -> list[str]:
        """An ended trial's folder keeps its newest `keep` checkpoints (Tune numbers them in order:
        checkpoint_000000, ...), whichever driver wrote them; returns the deleted paths."""
        from pyarrow.fs import FileSelector, FileType

        self._trials.pop(trial_id, None)
        try:
            found = filesystem.get_file_info(FileSelector(trial_path, allow_not_found=True))
        except OSError:  # storage unreachable: not worth a failure
            return []
        dirs = sorted(
            (f.path for f in found if f.type == FileType.Directory and CHECKPOINT_RE.fullmatch(f.base_name)),
            key=lambda path: int(path.rsplit("_", 1)[1]),
        )
        surplus = dirs[: max(len(dirs) - self.keep, 0)]
        return [p for p in (_delete_path(filesystem, path) for path in surplus) if p]


CHECKPOINT_RE = re.compile(r"checkpoint_\d+")


def _delete(checkpoint) -> str | None:
    return _delete_path(checkpoint.filesystem, checkpoint.path)


def _delete_path(filesystem, path: str) -> str | None:
    try:
        filesystem.delete_dir(path)
    except (FileNotFoundError, OSError):  # gone already, or storage unreachable: not worth a failure
        return None
    return path
