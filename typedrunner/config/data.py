"""``train_dataloader`` / ``val_dataloader`` / ``test_dataloader``: datasets, samplers, collate functions.

A dataloader is a typed config (MMEngine's keys: ``dataset``, ``sampler``, ``collate_fn``,
``batch_size``, ...) or, in the manual style, an already built ``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PlainSerializer, PlainValidator, SerializationInfo, Tag, model_validator

from typedrunner.config._fields import GENERIC, by_type
from typedrunner.config.base import ConfigModel, TypedComponent
from typedrunner.registry.lazy import Component, Lazy, loaded_class, plain_value
from typedrunner.registry.registries import DATA_SAMPLERS, DATASETS, FUNCTIONS

__all__ = ["DataLoader", "DataLoaderField", "DefaultSampler", "SamplerConfig"]

DatasetField = Annotated[
    Any, Component(DATASETS, instance_of="torch.utils.data.Dataset", subclass_of="torch.utils.data.Dataset")
]
"""``{type: MyDataset, ...}``, ``lazy(MyDataset, ...)`` or a built ``Dataset``."""


class DefaultSampler(TypedComponent):
    """MMEngine's ``DefaultSampler``: shuffled with a per-epoch seed, or in order."""

    type: Literal["DefaultSampler"] = "DefaultSampler"
    """Sampler name."""
    shuffle: bool = True
    """Visit the samples in a new random order each epoch."""
    seed: int | None = Field(default=None, ge=0)
    """Shuffling seed (None: ``randomness.seed``, or a random one)."""
    round_up: bool = True
    """With several processes, pad so that each gets the same number of samples."""


_GENERIC_SAMPLER = Component(
    DATA_SAMPLERS,
    exclude=("dataset", "data_source"),
    instance_of="torch.utils.data.Sampler",
    subclass_of="torch.utils.data.Sampler",
)

_Samplers = Annotated[DefaultSampler, Tag("<DefaultSampler>")] | Annotated[Lazy[Any], _GENERIC_SAMPLER, Tag(GENERIC)]
SamplerConfig = Annotated[_Samplers, Discriminator(by_type(_Samplers))]
"""``DefaultSampler``, or any other sampler as ``{type: Name, ...}`` (or a built ``Sampler``)."""

_DEFAULT_COLLATE: Any = {"type": "default_collate"}
CollateField = Annotated[Lazy[Any], Component(FUNCTIONS, exclude=("batch", "data_batch"))]
"""``{type: default_collate}`` or a collate function by name or dotted path (extra keys are bound)."""


class DataLoader(ConfigModel):
    """A ``torch.utils.data.DataLoader`` described with MMEngine's keys."""

    dataset: DatasetField
    """The dataset: ``{type: MyDataset, ...}`` (registered name or dotted path) or a built one."""
    batch_size: int = Field(default=1, ge=1)
    """Samples per batch."""
    sampler: SamplerConfig | None = None
    """Sample order; None: ``DefaultSampler`` with ``shuffle`` below."""
    shuffle: bool | None = None
    """Shorthand for ``sampler: {type: DefaultSampler, shuffle: ...}`` (torch's spelling)."""
    collate_fn: CollateField = Field(default_factory=lambda: _DEFAULT_COLLATE.copy())
    """How samples are merged into a batch."""
    num_workers: int = Field(default=0, ge=0)
    """Worker processes loading data (0: in the main process)."""
    pin_memory: bool = False
    """Pin batches in page-locked memory (only has an effect with CUDA)."""
    persistent_workers: bool = False
    """Keep workers alive between epochs (needs num_workers > 0)."""
    drop_last: bool = False
    """Drop the last incomplete batch."""
    prefetch_factor: int | None = Field(default=None, ge=1)
    """Batches loaded in advance by each worker (needs num_workers > 0)."""
    timeout: float = Field(default=0.0, ge=0)
    """Seconds to wait for a batch from the workers (0: forever)."""

    @model_validator(mode="after")
    def _consistent(self) -> DataLoader:
        if self.sampler is not None and self.shuffle is not None:
            raise ValueError(
                "give either sampler or shuffle, not both: use sampler: {type: DefaultSampler, shuffle: ...}"
            )
        if self.num_workers == 0 and (self.persistent_workers or self.prefetch_factor is not None):
            raise ValueError("persistent_workers and prefetch_factor need num_workers > 0")
        return self

    def sampler_config(self) -> SamplerConfig:
        """The sampler to build: the configured one or a ``DefaultSampler``."""
        if self.sampler is not None:
            return self.sampler
        return DefaultSampler(shuffle=bool(self.shuffle))


def _pick_loader(value: Any) -> str:
    return "<config>" if isinstance(value, (Mapping, DataLoader)) else "<built>"


def _check_built_loader(value: Any) -> Any:
    loader = loaded_class("torch.utils.data.DataLoader")
    if loader is not None and isinstance(value, loader):
        return value
    raise ValueError(
        f"expected a dataloader config (a mapping with dataset, batch_size, ...) or a built "
        f"torch.utils.data.DataLoader, not {type(value).__name__}"
    )


def _plain_when_json(value: Any, info: SerializationInfo) -> Any:
    return plain_value(value) if info.mode == "json" else value


_BuiltLoader = Annotated[Any, PlainValidator(_check_built_loader), PlainSerializer(_plain_when_json)]
"""A built ``torch.utils.data.DataLoader`` (the manual style)."""

DataLoaderField = Annotated[
    Annotated[DataLoader, Tag("<config>")] | Annotated[_BuiltLoader, Tag("<built>")],
    Discriminator(_pick_loader),
]
"""A dataloader config, or a built ``torch.utils.data.DataLoader``."""
