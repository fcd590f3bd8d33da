"""typedrunner: a training Runner for PyTorch where every Runner argument is a typed, validated object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typedrunner.config import Config, RunnerConfig
from typedrunner.errors import ConfigError, ContractError, TypedRunnerError
from typedrunner.lazy import Lazy, lazy
from typedrunner.registry import DATASETS, HOOKS, METRICS, MODELS

__version__ = "0.1.0"

if TYPE_CHECKING:
    from typedrunner.evaluator import BaseMetric
    from typedrunner.hooks import Hook
    from typedrunner.model import BaseModel
    from typedrunner.runner import Runner

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
