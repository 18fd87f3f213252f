"""Pure-PyTorch core: reversible layers, the racecar network, loss, methods, trainer, analysis.
Imports neither ray, mlflow nor optuna."""

from racecar_study.core.blocks import ChannelPadShortcut, ResidualBlock
from racecar_study.core.loss import racecar_loss
from racecar_study.core.methods import MethodConfig, build_method, method_names, register_method
from racecar_study.core.net import RacecarNet, RacecarOutput
from racecar_study.core.rules import ReverseRule, Role, UnsupportedModuleError, register_rule, supported_types
from racecar_study.core.trainer import Callback, TrainConfig, Trainer

__all__ = [
    "Callback",
    "ChannelPadShortcut",
    "MethodConfig",
    "RacecarNet",
    "RacecarOutput",
    "ResidualBlock",
    "ReverseRule",
    "Role",
    "TrainConfig",
    "Trainer",
    "UnsupportedModuleError",
    "build_method",
    "method_names",
    "racecar_loss",
    "register_method",
    "register_rule",
    "supported_types",
]
