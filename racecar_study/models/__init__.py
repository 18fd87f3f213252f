"""Architectures, registered by name (timm-style): `build_model("resnet20", (3, 32, 32), 10)`."""

from racecar_study.models import convnet, lenet, linear, mlp, peak_mlp, resnet  # noqa: F401  (registration)
from racecar_study.models.lambdas import resolve_lambdas
from racecar_study.models.registry import (
    ModelError,
    build_model,
    check_options,
    list_models,
    model_options,
    register_model,
)

__all__ = [
    "ModelError",
    "build_model",
    "check_options",
    "list_models",
    "model_options",
    "register_model",
    "resolve_lambdas",
]
