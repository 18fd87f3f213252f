"""The study spec: one validated YAML file describes data, model, method, training and the search.

Unknown keys are rejected everywhere except inside `data` and `model`, whose extra keys are the
data set's task-view options and the architecture's options; those are checked against their
registries by `check_registries`.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from racecar_study.core.methods import MethodConfig, method_class, method_names
from racecar_study.core.trainer import EPOCH_METRICS, PER_STATE_METRICS, TrainConfig, better, is_epoch_metric


class SpecError(ValueError):
    """A study spec that cannot run; the message is one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSpec(BaseModel):
    """`name` plus the data set's options and task-view options (classes, n_per_class, ...)."""

    model_config = ConfigDict(extra="allow")
    name: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ModelSpec(BaseModel):
    """`arch` plus the architecture's options (widths, depth, ...)."""

    model_config = ConfigDict(extra="allow")
    arch: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MethodSpec(_Strict):
    name: str = "std"
    lam: float | list[float] | dict[str, float] = 0.0
    # a schedule over depth: state m (0 = the input) gets lam * lam_ratio**m; searchable like lam
    lam_ratio: float | None = Field(None, gt=0)
    reduction: Literal["sum", "mean"] = "sum"
    ort_weight: float = Field(0.1, ge=0)
    ort_power_iters: int = Field(2, ge=1)
    pre_epochs: int = Field(10, ge=0)
    pre_lr: float | None = Field(None, gt=0)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in method_names():
            raise ValueError(f"unknown method '{v}'; known: {', '.join(method_names())}")
        return v

    @field_validator("lam")
    @classmethod
    def _non_negative(cls, v):
        values = v.values() if isinstance(v, dict) else v if isinstance(v, list) else [v]
        if any((not math.isfinite(x)) or x < 0 for x in values):
            raise ValueError("lambda must be finite and >= 0")
        return v

    @field_validator("lam_ratio")
    @classmethod
    def _one_lambda_to_scale(cls, v, info: ValidationInfo):
        if v is not None and isinstance(info.data.get("lam"), list | dict):
            raise ValueError("scales one lambda over depth; method.lam is already given per layer")
        return v

    def to_config(self, seed: int = 0) -> MethodConfig:
        """The core config; a list, dict or ratio lambda is resolved against the net (build_run)."""
        d = self.model_dump(exclude={"lam_ratio"})
        return MethodConfig(**d, extra={"seed": seed})


class TrainSpec(_Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(100, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0)
    schedule: Literal["none", "cosine", "step"] = "none"
    step_size: int = Field(30, ge=1)
    gamma: float = Field(0.1, gt=0)
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    probe_size: int = Field(256, ge=0)
    retain_cpu_memory: bool = True  # keep freed CPU memory between steps (core/allocator.py)
    fuse_reverse: bool = True  # compiled reverse-pass kernels (core/fused.py); off skips compiling

    def to_config(self, seed: int = 0) -> TrainConfig:
        return TrainConfig(**self.model_dump(), seed=seed)


class Param(_Strict):
    """One search dimension: exactly one distribution, optionally only `when` others have values."""

    loguniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    int: tuple[builtins.int, builtins.int] | None = None  # noqa: A003 (the YAML key is `int`)
    choice: list[Any] | None = None
    when: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_distribution(self):
        given = [k for k in ("loguniform", "uniform", "int", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of loguniform, uniform, int, choice")
        kind = given[0]
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice needs at least one value")
            return self
        lo, hi = getattr(self, kind)
        if not lo < hi:
            raise ValueError(f"{kind} needs low < high, got [{lo}, {hi}]")
        if kind == "loguniform" and lo <= 0:
            raise ValueError(f"loguniform needs low > 0, got {lo}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("loguniform", "uniform", "int", "choice") if getattr(self, k) is not None)

    def candidate_values(self) -> list[Any]:
        """Values that must each yield a valid spec: the choices, or the bounds."""
        return list(self.choice) if self.kind == "choice" else list(getattr(self, self.kind))


class SearchSpec(_Strict):
    space: dict[str, Param] = Field(default_factory=dict)
    algorithm: Literal["optuna", "random", "grid"] = "optuna"
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    seed: int = Field(0, ge=0)


class SchedulerSpec(_Strict):
    kind: Literal["asha", "none"] = "asha"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, gt=1)


class ResourcesSpec(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class CheckpointSpec(_Strict):
    every: int = Field(1, ge=1)
    keep: int = Field(2, ge=1)


class TrackingSpec(_Strict):
    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str | None = None  # defaults to the study name
    log_models: bool = True
    register_best: bool = True
    log_every: int = Field(1, ge=1)  # epochs between metric flushes


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class StudySpec(_Strict):
    name: str
    data: DataSpec
    model: ModelSpec
    method: MethodSpec = Field(default_factory=MethodSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    metric: str = "val_acc"
    mode: Literal["max", "min"] = Field("max", validate_default=True)  # omitted: the metric's own way
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        twice = sorted({s for s in v if v.count(s) > 1})
        if twice:
            raise ValueError(f"seed {', '.join(map(str, twice))} given twice: each seed trains one model")
        return v

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        # The name becomes a folder under runs/: it must not escape it.
        if not NAME_RE.match(v) or ".." in v:
            raise ValueError(f"'{v}' must be letters, digits, '_', '-', '.' (no '/', no '..')")
        return v

    @field_validator("metric")
    @classmethod
    def _reported(cls, v: str) -> str:
        if not is_epoch_metric(v):
            per_state = ", ".join(f"{m}_<layer>" for m in PER_STATE_METRICS)
            raise ValueError(
                f"'{v}' is not a metric trials report; one of {', '.join(EPOCH_METRICS)}, {per_state}"
            )
        return v

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, raw: Any) -> Any:
        """No mode given: the way the metric improves (min for losses and errors), else max."""
        if isinstance(raw, dict) and "mode" not in raw and isinstance(raw.get("metric"), str):
            raw = {**raw, "mode": better(raw["metric"]) or "max"}
        return raw

    @field_validator("mode")
    @classmethod
    def _fits_metric(cls, v: str, info: ValidationInfo) -> str:
        metric = info.data.get("metric")
        way = better(metric) if metric else None
        if way is not None and v != way:
            raise ValueError(f"{v} would rank trials by their worst {metric}; say mode: {way}")
        return v

    @model_validator(mode="after")
    def _search_paths(self):
        for path, param in self.search.space.items():
            if param.when:
                for other, value in param.when.items():
                    if other not in self.search.space:
                        raise ValueError(f"search.space.{path}.when names '{other}', not a search parameter")
                    dep = self.search.space[other]
                    if dep.kind != "choice" or value not in dep.choice:
                        raise ValueError(f"search.space.{path}.when: {other} never takes the value {value!r}")
        return self

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[
            :16
        ]


# --- helpers -------------------------------------------------------------------------------------


def _one_line(err: ValidationError) -> str:
    """The first error in full; the other fields at fault named after it, so one run of `validate`
    shows everything to fix."""
    first, *rest = err.errors()
    where = [".".join(str(p) for p in e["loc"]) or "spec" for e in (first, *rest)]
    line = f"{where[0]}: {first['msg'].removeprefix('Value error, ')}"
    others = list(dict.fromkeys(w for w in where[1:] if w != where[0]))
    return f"{line} (also wrong: {', '.join(others)})" if others else line


def set_dotted(d: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise SpecError(f"search.space: '{path}' does not name a field")
    d[keys[-1]] = value


def apply_overrides(spec: StudySpec, overrides: dict[str, Any]) -> StudySpec:
    """The spec with dotted-path values set (a trial's config), validated again."""
    raw = copy.deepcopy(spec.model_dump(mode="json", exclude_none=False))
    for path, value in overrides.items():
        set_dotted(raw, path, value)
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_one_line(e)) from None


# What the driver reads once for the whole study (Tune's searcher, scheduler and resource requests,
# the tracking run, the checkpoint pruner): a search over it would be ignored, so it is refused.
STUDY_WIDE = ("search", "scheduler", "resources", "tracking", "checkpoint.keep")


def check_search_space(spec: StudySpec) -> None:
    """Every dotted path names a per-trial field, and every choice/bound gives a valid spec."""
    known_top = set(StudySpec.model_fields)
    for path, param in spec.search.space.items():
        head, _, rest = path.partition(".")
        if head not in known_top or not rest:
            raise SpecError(f"search.space: '{path}' does not name a field of the spec")
        wide = next((w for w in STUDY_WIDE if path == w or path.startswith(f"{w}.")), None)
        if wide is not None:
            raise SpecError(
                f"search.space: '{path}' is one value for the whole study (the driver reads {wide} "
                "once), not per trial; set it outside search.space"
            )
        section = StudySpec.model_fields[head].annotation
        leaf = rest.split(".")[0]
        if head not in ("data", "model") and isinstance(section, type) and issubclass(section, BaseModel):
            if leaf not in section.model_fields:
                raise SpecError(f"search.space: '{path}' does not name a field of {head}")
        for value in param.candidate_values():
            try:
                apply_overrides(spec, {path: value})
            except SpecError as e:
                raise SpecError(f"search.space.{path}: value {value!r} is invalid ({e})") from None
        if param.kind in ("uniform", "loguniform"):
            low, high = getattr(param, param.kind)
            inner = low + (high - low) * 0.382  # a draw between the bounds, with a fraction
            try:
                apply_overrides(spec, {path: inner})
            except SpecError:  # an integer field: the bounds pass, every draw between them fails
                raise SpecError(
                    f"search.space.{path}: {param.kind} draws fractional values such as {inner:g}, "
                    f"which {path} does not take; search it with int: [{low:g}, {high:g}]"
                ) from None


LAM_HINT = "the paper's, reduction sum: 1e-6 on peak, 1e-5 on mnist2"


def check_lambda_given(spec: StudySpec) -> None:
    """A method weighed by method.lam (rr), fixed or among a search's choices, with no lambda given
    or searched would train as std (lambda 0) while its trials are called rr. `lam: 0` written out
    is an ablation and passes."""
    space = spec.search.space
    searched = any(k == "method.lam" or k.startswith("method.lam.") for k in space)
    if "lam" in spec.method.model_fields_set or searched:
        return
    names = space["method.name"].candidate_values() if "method.name" in space else [spec.method.name]
    weighed = [n for n in dict.fromkeys(names) if method_class(n).weighed_by_lam]
    if weighed:
        trials = f" (trials with method.name={', '.join(weighed)})" if "method.name" in space else ""
        raise SpecError(
            f"method.lam: not given, so method {', '.join(weighed)} would train as std (lambda 0){trials}; "
            f"give a lambda ({LAM_HINT}) or search it, or write lam: 0 to mean it"
        )


def check_registries(spec: StudySpec) -> None:
    """Data set, architecture and their option names exist (no data is loaded)."""
    from racecar_study import data, models

    try:
        data.check_options(spec.data.name, spec.data.options())
    except data.DataError as e:
        raise SpecError(f"data: {e}") from None
    try:
        options = spec.model.options()
        outputs = options.pop("outputs", None)
        if outputs is not None and (not isinstance(outputs, int) or isinstance(outputs, bool) or outputs < 1):
            raise SpecError(f"model.outputs must be a positive integer, got {outputs!r}")
        models.check_options(spec.model.arch, options)
    except models.ModelError as e:
        raise SpecError(f"model: {e}") from None


def parse_spec(raw: Any, source: str = "spec") -> StudySpec:
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a study spec is a YAML mapping")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_one_line(e)) from None
    check_search_space(spec)
    check_lambda_given(spec)
    check_registries(spec)
    return spec


def load_spec(path: str | Path) -> StudySpec:
    p = Path(path)
    if p.is_dir():
        raise SpecError(
            f"{p} is a folder, not a spec file (to continue a study: racecar-study resume FOLDER)"
        )
    if not p.is_file():
        raise SpecError(f"spec file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise SpecError(f"{p}: not valid YAML{where}") from None
    return parse_spec(raw, str(p))


def dump_spec(spec: StudySpec) -> str:
    raw = spec.model_dump(mode="json")
    # A search parameter shows only what it sets (its distribution and `when`), not the nulls.
    space = raw["search"]["space"]
    raw["search"]["space"] = {
        name: {k: v for k, v in p.items() if v is not None} for name, p in space.items()
    }
    return yaml.safe_dump(raw, sort_keys=False)
