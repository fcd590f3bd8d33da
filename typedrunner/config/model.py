"""``model`` and ``data_preprocessor``: the network, as a component or a built ``nn.Module``."""

from __future__ import annotations

from typing import Annotated, Any

from typedrunner.registry.lazy import Component
from typedrunner.registry.registries import MODELS

__all__ = ["DataPreprocessorField", "ModelField"]

ModelField = Annotated[Any, Component(MODELS, instance_of="torch.nn.Module", subclass_of="torch.nn.Module")]
"""``{type: MyModel, ...}``, ``lazy(MyModel, ...)`` or a built ``nn.Module``."""

DataPreprocessorField = Annotated[Any, Component(MODELS, instance_of="torch.nn.Module", subclass_of="torch.nn.Module")]
"""A module applied to each batch before the model (default: move the batch to the model's device)."""
