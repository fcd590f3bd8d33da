"""``default_hooks`` and ``custom_hooks``."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from typedrunner.config.base import ConfigModel, TypedComponent
from typedrunner.registry.lazy import Component
from typedrunner.registry.registries import HOOKS

__all__ = [
    "CheckpointHook",
    "DefaultHooks",
    "DistSamplerSeedHook",
    "HookField",
    "IterTimerHook",
    "LoggerHook",
    "ParamSchedulerHook",
    "RuntimeInfoHook",
]

Priority = (
    int | Literal["HIGHEST", "VERY_HIGH", "HIGH", "ABOVE_NORMAL", "NORMAL", "BELOW_NORMAL", "LOW", "VERY_LOW", "LOWEST"]
)


class CheckpointHook(TypedComponent):
    """Save checkpoints (``epoch_N.pth`` or ``iter_N.pth``), the ``last_checkpoint`` pointer, and the best."""

    type: Literal["CheckpointHook"] = "CheckpointHook"
    """Hook name."""
    interval: int = Field(default=1, ge=1)
    """Save every this many epochs (or iterations, with ``by_epoch: false``)."""
    by_epoch: bool = True
    """Count ``interval`` in epochs (True) or iterations (False)."""
    save_begin: int = Field(default=0, ge=0)
    """Save only after this many epochs (or iterations)."""
    save_last: bool = True
    """Always save at the end of training, whatever the interval."""
    max_keep_ckpts: int = Field(default=-1, ge=-1)
    """Keep at most this many periodic checkpoints (-1: all)."""
    save_optimizer: bool = True
    """Include the optimizer state (needed to resume)."""
    save_param_scheduler: bool = True
    """Include the parameter schedulers' state (needed to resume)."""
    save_best: str | list[str] | None = None
    """Metric key(s) whose best value keeps a ``best_<key>.pth`` (``auto``: the first metric)."""
    rule: Literal["greater", "less"] | list[Literal["greater", "less"]] | None = None
    """How ``save_best`` compares (None: inferred from the key: ``loss``/``error`` less, else greater)."""
    out_dir: str | None = None
    """Directory for checkpoints (None: ``work_dir``)."""
    filename_tmpl: str | None = Field(default=None, pattern=r"^[^/]*\{\}[^/]*$")
    """Checkpoint file name with one ``{}`` for the epoch or iteration (default ``epoch_{}.pth`` / ``iter_{}.pth``)."""
    published_keys: list[Literal["meta", "state_dict", "optimizer", "param_schedulers"]] | None = None
    """At the end, also write ``<last>_published.pth`` holding only these keys (e.g. ``[meta, state_dict]``)."""

    @field_validator("filename_tmpl")
    @classmethod
    def _formats_one_count(cls, value: str | None) -> str | None:
        """Checked now, not at the first save: one integer in, a plain file name out, one per count."""
        if value is None:
            return None
        try:
            names = [value.format(1), value.format(2)]
        except (IndexError, KeyError, ValueError, AttributeError, TypeError) as e:
            raise ValueError(
                f"must format with one integer, the epoch or iteration (e.g. 'ckpt_{{}}.pth'); "
                f"{value!r}.format(1) raised {type(e).__name__}: {e}"
            ) from None
        if any(n in ("", ".", "..") or "/" in n or "\\" in n or "\0" in n for n in names):
            raise ValueError(f"must give a plain file name, not {names[0]!r} (out_dir sets the directory)")
        if names[0] == names[1]:
            raise ValueError(f"gives the same name {names[0]!r} for every count: put the count in a {{}}")
        return value

    @model_validator(mode="after")
    def _rules_match(self) -> CheckpointHook:
        keys = [self.save_best] if isinstance(self.save_best, str) else list(self.save_best or [])
        if isinstance(self.rule, list) and len(self.rule) != len(keys):
            raise ValueError(f"rule has {len(self.rule)} entries but save_best has {len(keys)} keys")
        if self.rule is not None and not keys:
            raise ValueError("rule only applies with save_best; set save_best: <metric key>")
        return self

    def best_keys(self) -> list[str]:
        return [self.save_best] if isinstance(self.save_best, str) else list(self.save_best or [])

    def file_template(self) -> str:
        """The periodic checkpoints' name, with ``{}`` for the epoch or iteration."""
        return self.filename_tmpl or ("epoch_{}.pth" if self.by_epoch else "iter_{}.pth")

    @staticmethod
    def best_file(metric: str) -> str:
        """The file that keeps the best checkpoint by ``metric``."""
        return f"best_{metric.replace('/', '_')}.pth"

    @staticmethod
    def published_file(name: str) -> str:
        """The release copy of checkpoint file ``name`` (``published_keys``)."""
        return f"{PurePath(name).stem}_published.pth"


class LoggerHook(TypedComponent):
    """Log training scalars every ``interval`` iterations and every validation's metrics."""

    type: Literal["LoggerHook"] = "LoggerHook"
    """Hook name."""
    interval: int = Field(default=10, ge=1)
    """Log every this many iterations."""
    ignore_last: bool = True
    """Skip the last iterations of an epoch that do not fill an interval."""


class ParamSchedulerHook(TypedComponent):
    """Step the parameter schedulers (per epoch or per iteration, as each is configured)."""

    type: Literal["ParamSchedulerHook"] = "ParamSchedulerHook"
    """Hook name."""


class IterTimerHook(TypedComponent):
    """Measure each training iteration's time and data-loading time (logged as ``time``, ``data_time``
    and ``eta_s``, averaged over ``log_processor.window_size`` iterations)."""

    type: Literal["IterTimerHook"] = "IterTimerHook"
    """Hook name."""


class RuntimeInfoHook(TypedComponent):
    """Log which hooks handle each event, in call order, when the run starts (at DEBUG level)."""

    type: Literal["RuntimeInfoHook"] = "RuntimeInfoHook"
    """Hook name."""


class DistSamplerSeedHook(TypedComponent):
    """Tell the sampler which epoch it is, so each epoch is shuffled differently."""

    type: Literal["DistSamplerSeedHook"] = "DistSamplerSeedHook"
    """Hook name."""


class DefaultHooks(ConfigModel):
    """``default_hooks``: the hooks every run has; set one to ``null`` to remove it."""

    runtime_info: RuntimeInfoHook | None = Field(default_factory=RuntimeInfoHook)
    """The hooks' call order, logged at DEBUG level when the run starts."""
    timer: IterTimerHook | None = Field(default_factory=IterTimerHook)
    """Iteration timing (null: no ``time``, ``data_time`` or ``eta_s`` in the logs)."""
    sampler_seed: DistSamplerSeedHook | None = Field(default_factory=DistSamplerSeedHook)
    """Per-epoch shuffling seed."""
    logger: LoggerHook | None = Field(default_factory=LoggerHook)
    """Logging of scalars and metrics."""
    param_scheduler: ParamSchedulerHook | None = Field(default_factory=ParamSchedulerHook)
    """Stepping of ``param_scheduler``."""
    checkpoint: CheckpointHook | None = Field(default_factory=CheckpointHook)
    """Checkpoint saving."""


HookField = Annotated[
    Any,
    Component(
        HOOKS,
        meta=(("priority", Priority | None, None),),  # None: the hook class's own priority
        instance_of="typedrunner.parts.hooks.base.Hook",
        subclass_of="typedrunner.parts.hooks.base.Hook",
    ),
]
"""A user hook: ``{type: MyHook, priority: NORMAL, ...}``, ``lazy(MyHook, ...)`` or a built hook."""
