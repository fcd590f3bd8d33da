"""``RunnerConfig``: every Runner argument, with MMEngine's names."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from typedrunner.config.base import ConfigModel, to_config_error
from typedrunner.config.data import DataLoaderField
from typedrunner.config.debug import DebugCfg
from typedrunner.config.distributed import ModelWrapperCfg, ModelWrapperField, SyncBN
from typedrunner.config.env import AutoScaleLR, Compile, EnvCfg, Launcher, Randomness
from typedrunner.config.evaluator import Evaluator, MetricField
from typedrunner.config.hooks import DefaultHooks, HookField
from typedrunner.config.logging import LogLevel, LogProcessor, Visualizer
from typedrunner.config.model import DataPreprocessorField, ModelField
from typedrunner.config.optim import OptimWrapperField
from typedrunner.config.scheduler import SchedulerConfig
from typedrunner.config.train import TestLoop, TrainLoopConfig, ValLoop
from typedrunner.errors import ConfigError, Problem
from typedrunner.registry.registries import CUSTOM_IMPORTS_CONTEXT

__all__ = ["LoadFrom", "RunnerConfig", "import_custom"]

EvaluatorInput = Evaluator | MetricField | list[MetricField] | None


def _pick_schedules(value: Any) -> str:
    return "<named>" if isinstance(value, Mapping) else "<list>"


SchedulesField = Annotated[
    Annotated[list[SchedulerConfig], Tag("<list>")] | Annotated[dict[str, list[SchedulerConfig]], Tag("<named>")],
    Discriminator(_pick_schedules),
]
"""The validated ``param_scheduler``: a list of schedules, or ``{optimizer name: [...]}``."""


class LoadFrom(ConfigModel):
    """``load_from``: pretrained weights loaded into the model before training (weights only)."""

    path: str = Field(min_length=1)
    """The checkpoint file (typedrunner's, MMEngine's, or a plain state dict)."""
    strict: bool = True
    """Refuse a checkpoint whose keys or shapes differ from the model's (false: load what matches, report the rest)."""
    revise_keys: list[tuple[str, str]] = Field(default_factory=lambda: [(r"^module\.", "")])
    """``(regex, replacement)`` renames applied to the checkpoint's keys first (default strips DDP's ``module.``)."""

    @model_validator(mode="before")
    @classmethod
    def _path_only(cls, data: Any) -> Any:
        """MMEngine's spelling: ``load_from: path/to/ckpt.pth``."""
        return {"path": data} if isinstance(data, (str, Path)) else data


def import_custom(modules: Any) -> list[Problem]:
    """Import ``custom_imports`` (a list, or MMEngine's ``{imports: [...]}``); one problem per failure."""
    if isinstance(modules, Mapping):
        modules = modules.get("imports", [])
    if isinstance(modules, str):
        modules = [modules]
    if not isinstance(modules, (list, tuple)):
        return []  # the field validator reports the wrong shape
    problems = []
    for i, name in enumerate(modules):
        if isinstance(name, str):
            try:
                importlib.import_module(name)
            except Exception as e:
                problems.append(
                    Problem(
                        f"custom_imports[{i}]",
                        f"cannot import {name!r}: {type(e).__name__}: {e} "
                        "(is it on PYTHONPATH? run from the project root or install it)",
                    )
                )
    return problems


class RunnerConfig(ConfigModel):
    """Everything a Runner needs: MMEngine's Runner arguments, each validated."""

    model: ModelField
    """The network: ``{type: MyModel, ...}``, ``lazy(MyModel, ...)`` or a built ``nn.Module``."""
    work_dir: str | None = None
    """Where checkpoints and logs go (None: ``work_dirs/<experiment_name>``)."""
    experiment_name: str = Field(default="default", min_length=1)
    """Name of the experiment, used in logs and the default work_dir."""
    train_dataloader: DataLoaderField | None = None
    """Training data."""
    val_dataloader: DataLoaderField | None = None
    """Validation data (needs val_cfg and val_evaluator)."""
    test_dataloader: DataLoaderField | None = None
    """Test data (needs test_cfg and test_evaluator)."""
    train_cfg: TrainLoopConfig | None = None
    """The training loop: epochs and validation schedule."""
    val_cfg: ValLoop | None = None
    """The validation loop."""
    test_cfg: TestLoop | None = None
    """The test loop."""
    optim_wrapper: OptimWrapperField | None = None
    """Optimizer and step settings (needed to train); ``{name: {...}, ...}`` for one optimizer per sub-module."""
    param_scheduler: SchedulesField = Field(default_factory=list)
    """Schedule(s): one, a list applied together, or ``{optimizer name: [...]}`` with several optimizers."""
    val_evaluator: Evaluator | None = None
    """Metrics on validation predictions."""
    test_evaluator: Evaluator | None = None
    """Metrics on test predictions."""
    default_hooks: DefaultHooks = Field(default_factory=DefaultHooks)
    """The standard hooks (timer, logger, param scheduler, checkpoint, ...); null removes one."""
    custom_hooks: list[HookField] = Field(default_factory=list)
    """Extra hooks, by ``type``."""
    data_preprocessor: DataPreprocessorField | None = None
    """Applied to each batch before the model (None: the model's own, or move to device)."""
    load_from: LoadFrom | None = None
    """A checkpoint whose model weights are loaded before training: a path, or ``{path, strict, revise_keys}``."""
    resume: bool | Literal["auto"] = False
    """Continue a run: from ``load_from`` if given, else the latest checkpoint in work_dir (``auto``: if any)."""
    launcher: Launcher = "none"
    """How processes were launched: ``none`` (one process), ``pytorch`` (torchrun), ``slurm`` (srun)."""
    env_cfg: EnvCfg = Field(default_factory=EnvCfg)
    """Process environment: cuDNN, multiprocessing, distributed backend."""
    model_wrapper_cfg: ModelWrapperField = Field(default_factory=ModelWrapperCfg)
    """The distributed wrapper: DDP's settings (``find_unused_parameters``, ...) or ``type: FSDP2``'s; used under a distributed launcher."""
    sync_bn: SyncBN = None
    """``torch``: convert BatchNorm layers to SyncBatchNorm under a distributed launcher."""
    log_processor: LogProcessor = Field(default_factory=LogProcessor)
    """How scalars are smoothed for logging."""
    log_level: LogLevel = "INFO"
    """Console log level."""
    visualizer: Visualizer = None
    """Visualisation backends."""
    randomness: Randomness = Field(default_factory=Randomness)
    """Seeding and determinism."""
    compile: Compile = False
    """``torch.compile`` the model's forward (true, or ``{backend, mode, fullgraph, dynamic}``)."""
    auto_scale_lr: AutoScaleLR = Field(default_factory=AutoScaleLR)
    """Learning-rate scaling with the batch size."""
    custom_imports: list[str] = Field(default_factory=list)
    """Modules imported before validation (they register user classes)."""
    debug: DebugCfg = Field(default_factory=DebugCfg)
    """Short debugging runs: ``fast_dev_run``, ``limit_*_batches``, ``overfit_batches`` (the ``debug`` group sets them)."""

    @model_validator(mode="before")
    @classmethod
    def _import_first(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "custom_imports" in data:
            problems = import_custom(data["custom_imports"])
            if problems:
                raise ValueError("; ".join(p.render() for p in problems))
            imports = data["custom_imports"]
            if isinstance(imports, Mapping) and isinstance(imports.get("imports", []), (list, tuple)):
                data = {**data, "custom_imports": list(imports.get("imports", []))}
        return data

    @field_validator(
        "param_scheduler",
        mode="before",
        json_schema_input_type=SchedulerConfig
        | list[SchedulerConfig]
        | dict[str, SchedulerConfig | list[SchedulerConfig]]
        | None,
    )
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """MMEngine takes one scheduler or a list (or, per optimizer, a dict of those); the validated
        config always holds lists."""
        if value is None:
            return []
        if isinstance(value, Mapping) and "type" not in value:
            return {k: v if isinstance(v, (list, tuple)) else [v] for k, v in value.items()}
        return value if isinstance(value, (list, tuple)) else [value]

    @field_validator("model_wrapper_cfg", mode="before", json_schema_input_type=ModelWrapperField | None)
    @classmethod
    def _default_wrapper(cls, value: Any) -> Any:
        """MMEngine's ``model_wrapper_cfg=None``: the default wrapper (DDP with its defaults)."""
        return ModelWrapperCfg() if value is None else value

    @field_validator("val_evaluator", "test_evaluator", mode="before", json_schema_input_type=EvaluatorInput)
    @classmethod
    def _metrics_shapes(cls, value: Any) -> Any:
        """One metric, a list of metrics, or ``{type: Evaluator, metrics: [...]}`` (normalised by Evaluator)."""
        return value

    @field_validator("load_from", mode="before", json_schema_input_type=str | LoadFrom | None)
    @classmethod
    def _path_or_settings(cls, value: Any) -> Any:
        """``load_from: path`` or ``load_from: {path, strict, revise_keys}`` (normalised by LoadFrom)."""
        return value

    @field_validator("optim_wrapper", mode="before")
    @classmethod
    def _constructor(cls, value: Any) -> Any:
        """MMEngine names the constructor of several optimizers; typedrunner infers it from the shape."""
        if isinstance(value, Mapping) and "constructor" in value:
            if value["constructor"] not in ("MultiOptimWrapperConstructor", "DefaultOptimWrapperConstructor"):
                raise ValueError(
                    f"constructor {value['constructor']!r} is not supported: give one optim_wrapper, or "
                    "{name: optim_wrapper} per sub-module (MultiOptimWrapperConstructor's shape)"
                )
            return {k: v for k, v in value.items() if k != "constructor"}
        return value

    @model_validator(mode="after")
    def _schedules_match_optimizers(self) -> RunnerConfig:
        named = isinstance(self.param_scheduler, dict)
        several = isinstance(self.optim_wrapper, dict)
        if isinstance(self.param_scheduler, dict) and isinstance(self.optim_wrapper, dict):
            unknown = sorted(set(self.param_scheduler.keys()) - set(self.optim_wrapper.keys()))
            if unknown:
                raise ValueError(f"param_scheduler names {unknown}, which are not optimizers in optim_wrapper")
        if named and not several:
            raise ValueError(
                "param_scheduler is given per optimizer ({name: [...]}) but optim_wrapper has one optimizer"
            )
        if several and self.param_scheduler and not named:
            raise ValueError(
                "optim_wrapper has several optimizers: give param_scheduler per optimizer, {name: [...], ...}"
            )
        return self

    @model_validator(mode="after")
    def _fast_dev_run(self) -> RunnerConfig:
        """``debug.fast_dev_run: N``: one epoch (or N iterations), validating at its end, no
        checkpoints. It and ``debug.overfit_batches: N`` log the loss at least every N iterations."""
        n, loop, logger = self.debug.fast_dev_run, self.train_cfg, self.default_hooks.logger
        every = min(x for x in (n, self.debug.overfit_batches, 10**9) if x is not None)
        if logger is not None and logger.interval > every:
            hooks = {"logger": logger.model_copy(update={"interval": every})}
            self.default_hooks = self.default_hooks.model_copy(update=hooks)
        if n is None:
            return self
        if loop is not None:
            short: dict[str, Any] = (
                {"max_epochs": 1, "val_begin": 1, "val_interval": 1}
                if loop.by_epoch
                else dict.fromkeys(("max_iters", "val_begin", "val_interval"), n)
            )
            self.train_cfg = loop.model_copy(update={**short, "dynamic_intervals": []})
        self.default_hooks = self.default_hooks.model_copy(update={"checkpoint": None})
        return self

    def scheduler_groups(self) -> list[tuple[str, str, list[SchedulerConfig]]]:
        """``(optimizer name, config path, schedules)``: one entry, or one per named optimizer."""
        if isinstance(self.param_scheduler, dict):
            return [(name, f"param_scheduler.{name}", list(c)) for name, c in self.param_scheduler.items()]
        return [("", "param_scheduler", list(self.param_scheduler))]

    def all_schedules(self) -> list[tuple[str, SchedulerConfig]]:
        """Every schedule with its config path (``param_scheduler[0]``, ``param_scheduler.gen[1]``)."""
        return [(f"{path}[{i}]", c) for _, path, configs in self.scheduler_groups() for i, c in enumerate(configs)]

    @field_validator("work_dir")
    @classmethod
    def _work_dir_not_a_file(cls, value: str | None) -> str | None:
        try:
            is_file = value is not None and Path(value).is_file()
        except (OSError, ValueError) as e:  # a name too long, a NUL byte
            raise ValueError(f"cannot be used as a directory: {e}") from None
        if is_file:
            raise ValueError(f"work_dir {value!r} is a file; give a directory")
        return value

    @property
    def resolved_work_dir(self) -> Path:
        return Path(self.work_dir) if self.work_dir else Path("work_dirs") / self.experiment_name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunnerConfig:
        """Validate a plain mapping; raise ``ConfigError`` listing every problem with its path."""
        problems = import_custom(data.get("custom_imports", []))
        if problems:
            raise ConfigError(problems)
        imports = data.get("custom_imports", [])
        imports = imports.get("imports", []) if isinstance(imports, Mapping) else imports
        named = frozenset(
            n for n in (imports if isinstance(imports, (list, tuple)) else [imports]) if isinstance(n, str)
        )
        try:
            # the components' validation reads custom_imports: a function defined in one of those
            # modules may be named by its dotted path (collate_fn); see Registry.resolve
            return cls.model_validate(dict(data), context={CUSTOM_IMPORTS_CONTEXT: named})
        except ValidationError as e:
            raise to_config_error(e, data) from None
