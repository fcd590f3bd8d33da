"""``val_evaluator`` / ``test_evaluator``: one metric, a list of metrics, or ``{type: Evaluator, metrics: [...]}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from typedrunner.config.base import ConfigModel
from typedrunner.registry.lazy import Component
from typedrunner.registry.registries import METRICS

__all__ = ["Evaluator", "MetricField"]

_METRIC_BASES = ("typedrunner.parts.evaluator.BaseMetric", "torchmetrics.Metric")
MetricField = Annotated[Any, Component(METRICS, instance_of=_METRIC_BASES, subclass_of=_METRIC_BASES)]
"""``{type: Accuracy, ...}``, ``lazy(Accuracy, ...)``, a built metric, or a torchmetrics ``Metric``."""


class Evaluator(ConfigModel):
    """The metrics computed on validation (or test) predictions."""

    type: Literal["Evaluator"] = "Evaluator"
    """Evaluator kind."""
    metrics: list[MetricField] = Field(min_length=1)
    """The metrics; each sees every batch and returns ``{name: value}``."""

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data: Any) -> Any:
        """Accept MMEngine's shapes: a single metric, a list of metrics, or an Evaluator mapping."""
        if isinstance(data, Mapping) and data.get("type", "Evaluator") == "Evaluator" and "metrics" in data:
            metrics = data["metrics"]
            return {**data, "metrics": metrics if isinstance(metrics, (list, tuple)) else [metrics]}
        if isinstance(data, (list, tuple)):
            return {"metrics": list(data)}
        if isinstance(data, Evaluator):
            return data
        return {"metrics": [data]}
