"""typedrunner: a training Runner for PyTorch where every Runner argument is a typed, validated object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typedrunner._version import __version__
from typedrunner.config import Config, RunnerConfig
from typedrunner.errors import ConfigError, ContractError, TypedRunnerError
from typedrunner.registry.lazy import Lazy, lazy
from typedrunner.registry.registries import DATASETS, HOOKS, METRICS, MODELS

if TYPE_CHECKING:
    from typedrunner.engine.runner import Runner
    from typedrunner.parts.evaluator import BaseMetric
    from typedrunner.parts.hooks.base import Hook
    from typedrunner.parts.model import BaseModel

__all__ = [
    "DATASETS",
    "HOOKS",
    "METRICS",
    "MODELS",
    "BaseMetric",
    "BaseModel",
    "Config",
    "ConfigError",
    "ContractError",
    "Hook",
    "Lazy",
    "Runner",
    "RunnerConfig",
    "TypedRunnerError",
    "__version__",
    "lazy",
]

_EXECUTION = {
    "Runner": "typedrunner.runner",
    "BaseModel": "typedrunner.model",
    "BaseMetric": "typedrunner.evaluator",
    "Hook": "typedrunner.hooks",
}


def __getattr__(name: str) -> Any:
    """The execution layer (which imports torch) loads on first use, so configs validate fast."""
    if name in _EXECUTION:
        import importlib

        return getattr(importlib.import_module(_EXECUTION[name]), name)
    raise AttributeError(f"module 'typedrunner' has no attribute {name!r}")
