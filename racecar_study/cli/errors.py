"""Errors a command reports as one line with exit code 2 (usage and spec errors)."""

from __future__ import annotations

import sys


class UsageError(Exception):
    pass


# module, class: an error of one of these classes can only be raised once its module is imported,
# so telling one needs no import (a failed `results` never pays for torch, and Ctrl-C during
# `import torch` never touches the half-imported module again)
USAGE_ERRORS = (
    ("racecar_study.cli.errors", "UsageError"),
    ("racecar_study.study.spec", "SpecError"),
    ("racecar_study.data.base", "DataError"),
    ("racecar_study.models.registry", "ModelError"),
    ("racecar_study.core.rules", "UnsupportedModuleError"),
    ("racecar_study.tracking.errors", "TrackingUnavailable"),
)


def is_usage_error(error: BaseException) -> bool:
    for module, name in USAGE_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(error, getattr(loaded, name)):
            return True
    return False
