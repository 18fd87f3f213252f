"""Errors a command reports as one line with exit code 2 (usage and spec errors)."""


class UsageError(Exception):
    pass


def usage_error_types() -> tuple[type[BaseException], ...]:
    from racecar_study.core.rules import UnsupportedModuleError
    from racecar_study.data import DataError
    from racecar_study.models import ModelError
    from racecar_study.study.spec import SpecError
    from racecar_study.tracking.errors import TrackingUnavailable

    return (UsageError, SpecError, DataError, ModelError, UnsupportedModuleError, TrackingUnavailable)
