"""Data sets, task views and their Arrow cache.

    from racecar_study.data import load_dataset
    splits = load_dataset("fashion_mnist", classes=[0, 1, 2], n_per_class=100, val_fraction=0.2,
                          transform=[{"rotate": [-30, 30]}], seed=1)

Pure torch/numpy/pyarrow: never imports ray, mlflow or optuna.
"""

from . import sets  # noqa: F401  registers the built-in data sets
from .api import load_dataset, load_table
from .base import DataError, DataSplits
from .cache import CODE_VERSION
from .registry import DatasetInfo, absolute_paths, list_datasets, register_dataset
from .request import check_options
from .sets.peak import peak_disc_masks
from .storage import splits_from_table, splits_to_table
from .transforms import register_transform

__all__ = [
    "CODE_VERSION",
    "absolute_paths",
    "check_options",
    "DataError",
    "DataSplits",
    "DatasetInfo",
    "list_datasets",
    "load_dataset",
    "load_table",
    "peak_disc_masks",
    "register_dataset",
    "register_transform",
    "splits_from_table",
    "splits_to_table",
]
