"""``optim_wrapper``: the optimizer wrapper and typed configs of the common torch optimizers.

Any other ``torch.optim`` optimizer (or a user one, by registered name or dotted path) is accepted as
``{type: Name, ...}`` and checked against its constructor's signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from typedrunner.config._fields import GENERIC, by_type
from typedrunner.config.base import ConfigModel, TypedComponent
from typedrunner.registry.lazy import Component, Lazy
from typedrunner.registry.registries import OPTIMIZERS

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "ClipGrad",
    "OptimWrapper",
    "OptimWrapperField",
    "OptimizerConfig",
    "ParamMult",
    "ParamwiseCfg",
]


class _Optimizer(TypedComponent):
    lr: float = Field(default=1e-3, gt=0)
    """Learning rate."""
    weight_decay: float = Field(default=0.0, ge=0)
    """Weight decay (L2 penalty; decoupled for AdamW)."""
    maximize: bool = False
    """Maximise the objective instead of minimising it."""
    foreach: bool | None = None
    """Use the multi-tensor implementation (None: torch decides)."""

    def _kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type"})


class Adam(_Optimizer):
    """``torch.optim.Adam``."""

    type: Literal["Adam"] = "Adam"
    """Optimizer name."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Coefficients of the running averages of the gradient and its square."""
    eps: float = Field(default=1e-8, gt=0)
    """Added to the denominator for numerical stability."""
    amsgrad: bool = False
    """Use the AMSGrad variant."""
    fused: bool | None = None
    """Use the fused implementation (None: torch decides)."""

    def build(self, params: Iterable[Any]) -> torch.optim.Adam:
        import torch

        return torch.optim.Adam(params, **self._kwargs())


class AdamW(_Optimizer):
    """``torch.optim.AdamW``."""

    type: Literal["AdamW"] = "AdamW"
    """Optimizer name."""
    weight_decay: float = Field(default=1e-2, ge=0)
    """Decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Coefficients of the running averages of the gradient and its square."""
    eps: float = Field(default=1e-8, gt=0)
    """Added to the denominator for numerical stability."""
    amsgrad: bool = False
    """Use the AMSGrad variant."""
    fused: bool | None = None
    """Use the fused implementation (None: torch decides)."""

    def build(self, params: Iterable[Any]) -> torch.optim.AdamW:
        import torch

        return torch.optim.AdamW(params, **self._kwargs())


class SGD(_Optimizer):
    """``torch.optim.SGD``."""

    type: Literal["SGD"] = "SGD"
    """Optimizer name."""
    lr: float = Field(default=1e-3, gt=0)
    """Learning rate."""
    momentum: float = Field(default=0.0, ge=0)
    """Momentum factor."""
    dampening: float = Field(default=0.0, ge=0)
    """Dampening for momentum."""
    nesterov: bool = False
    """Nesterov momentum (needs momentum > 0 and dampening 0)."""
    fused: bool | None = None
    """Use the fused implementation (None: torch decides)."""

    def build(self, params: Iterable[Any]) -> torch.optim.SGD:
        import torch

        return torch.optim.SGD(params, **self._kwargs())


_GENERIC_OPTIMIZER = Component(OPTIMIZERS, exclude=("params",), subclass_of="torch.optim.Optimizer")

_Optimizers = (
    Annotated[Adam, Tag("<Adam>")]
    | Annotated[AdamW, Tag("<AdamW>")]
    | Annotated[SGD, Tag("<SGD>")]
    | Annotated[Lazy[Any], _GENERIC_OPTIMIZER, Tag(GENERIC)]
)
OptimizerConfig = Annotated[_Optimizers, Discriminator(by_type(_Optimizers))]
"""A typed optimizer config, or any other optimizer as ``{type: Name, ...}`` checked against its signature."""


def build_optimizer(config: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    """Build any optimizer config (typed or generic) over ``params``."""
    if isinstance(config, Lazy):
        optimizer: torch.optim.Optimizer = config.build(params)
        return optimizer
    return config.build(params)


class ClipGrad(ConfigModel):
    """Gradient clipping, as MMEngine's ``clip_grad``: by norm (default) or by value."""

    type: Literal["norm", "value"] = "norm"
    """Clip the total gradient norm (``norm``) or each gradient element (``value``)."""
    max_norm: float | None = Field(default=None, gt=0)
    """Largest allowed total norm (``type: norm``)."""
    norm_type: float = Field(default=2.0, gt=0)
    """Order of the norm (``type: norm``)."""
    clip_value: float | None = Field(default=None, gt=0)
    """Largest allowed absolute gradient element (``type: value``)."""

    def model_post_init(self, context: Any, /) -> None:
        if self.type == "norm" and self.max_norm is None:
            raise ValueError("clip_grad by norm needs max_norm (e.g. clip_grad: {max_norm: 1.0})")
        if self.type == "value" and self.clip_value is None:
            raise ValueError("clip_grad by value needs clip_value (e.g. {type: value, clip_value: 0.5})")


class ParamMult(ConfigModel):
    """Multipliers for the parameters whose name contains a key of ``custom_keys``."""

    lr_mult: float = Field(default=1.0, ge=0)
    """Multiplier of the learning rate."""
    decay_mult: float = Field(default=1.0, ge=0)
    """Multiplier of the weight decay."""


class ParamwiseCfg(ConfigModel):
    """``paramwise_cfg``: per-parameter learning-rate and weight-decay multipliers (MMEngine's keys)."""

    bias_lr_mult: float = Field(default=1.0, ge=0)
    """Learning-rate multiplier of biases."""
    bias_decay_mult: float = Field(default=1.0, ge=0)
    """Weight-decay multiplier of biases."""
    norm_decay_mult: float = Field(default=1.0, ge=0)
    """Weight-decay multiplier of normalisation layers' weights and biases."""
    flat_decay_mult: float = Field(default=1.0, ge=0)
    """Weight-decay multiplier of one-dimensional parameters other than biases and norms."""
    custom_keys: dict[str, ParamMult] = Field(default_factory=dict)
    """``{name substring: {lr_mult, decay_mult}}``; the longest matching key wins, before the rules above."""


class OptimWrapper(ConfigModel):
    """``optim_wrapper``: the optimizer and what happens around each step."""

    type: Literal["OptimWrapper", "AmpOptimWrapper"] = "OptimWrapper"
    """``OptimWrapper``, or ``AmpOptimWrapper`` for mixed precision through ``torch.amp``."""
    optimizer: OptimizerConfig
    """The torch optimizer, e.g. ``{type: Adam, lr: 0.001}``."""
    clip_grad: ClipGrad | None = None
    """Gradient clipping before each step (None: off); the total norm is logged."""
    accumulative_counts: int = Field(default=1, ge=1)
    """Accumulate gradients over this many iterations per optimizer step."""
    paramwise_cfg: ParamwiseCfg | None = None
    """Per-parameter learning-rate and weight-decay multipliers."""
    dtype: Literal["float16", "bfloat16"] | None = None
    """AmpOptimWrapper: the autocast dtype (None: float16 on CUDA, bfloat16 on CPU)."""
    loss_scale: Literal["dynamic"] | Annotated[float, Field(gt=0)] = "dynamic"
    """AmpOptimWrapper with float16: GradScaler's dynamic scaling, or a fixed scale."""
    nonfinite: Literal["raise", "skip"] = "raise"
    """A NaN/inf loss: stop with the iteration and the loss terms (checked every log interval, no
    per-iteration sync), or skip that step (reads the loss every iteration)."""

    @model_validator(mode="after")
    def _amp_settings(self) -> OptimWrapper:
        if self.type == "OptimWrapper" and (self.dtype is not None or self.loss_scale != "dynamic"):
            raise ValueError("dtype and loss_scale are AmpOptimWrapper settings: set type: AmpOptimWrapper")
        return self


def _pick_wrapper(value: Any) -> str:
    """Several optimizers only for a non-empty mapping of mappings none of whose keys is a setting."""
    if (
        isinstance(value, Mapping)
        and value
        and not set(value) & set(OptimWrapper.model_fields)
        and all(isinstance(v, (Mapping, OptimWrapper)) for v in value.values())
    ):
        return "<several>"
    return "<single>"


OptimWrapperField = Annotated[
    Annotated[OptimWrapper, Tag("<single>")] | Annotated[dict[str, OptimWrapper], Tag("<several>")],
    Discriminator(_pick_wrapper),
]
"""One optimizer wrapper, or ``{name: optim_wrapper}`` with one optimizer per sub-module."""
