"""Training methods, registered by name: std, rr, ort, pre."""

from racecar_study.core.methods import ort, pre, rr, std  # noqa: F401  (registration)
from racecar_study.core.methods.base import (
    Method,
    MethodConfig,
    StepOutput,
    build_method,
    method_class,
    method_names,
    register_method,
)

__all__ = [
    "Method",
    "MethodConfig",
    "StepOutput",
    "build_method",
    "method_class",
    "method_names",
    "register_method",
]
