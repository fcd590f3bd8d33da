"""``val_evaluator`` / ``test_evaluator``: one metric, a list of metrics, or ``{type: Evaluator, metrics: [...]}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import Field, model_validator

from typedrunner.config.base import ConfigModel
from typedrunner.registry.lazy import Component, loaded_class
from typedrunner.registry.registries import METRICS

__all__ = ["METRIC_METHODS", "Evaluator", "FilledMetric", "MetricField", "MetricShape", "missing_metric_methods"]


@runtime_checkable
class MetricShape(Protocol):
    """What a metric is, as MMEngine's evaluator sees it: any object with these two methods (typedrunner's
    ``BaseMetric``, MMEngine's ``BaseMetric``, or a plain class). ``results`` (the list ``process``
    appends to), ``prefix`` and ``collect_device`` are filled in when the object has none."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        """Record what ``compute_metrics`` needs from one batch (into ``self.results``)."""
        ...

    def compute_metrics(self, results: list[Any]) -> Mapping[str, Any]:
        """Reduce the recorded results to ``{metric_name: value}``."""
        ...


class FilledMetric(MetricShape, Protocol):
    """A ``MetricShape`` once the evaluator has filled in what it lacked."""

    results: list[Any]
    """What ``process`` recorded since the last ``compute_metrics``."""
    prefix: str | None
    """Put before each metric name (``prefix/name``)."""
    collect_device: str
    """MMEngine's device for gathering results across processes (kept for its metrics)."""


METRIC_METHODS = {
    "process": "process(data_batch, data_samples)",
    "compute_metrics": "compute_metrics(results)",
}
"""``MetricShape``'s methods, as the messages spell them."""

_TORCHMETRIC = "torchmetrics.Metric"


def missing_metric_methods(obj: Any) -> list[str]:
    """The ``MetricShape`` methods that ``obj`` (a class or an object) lacks; a torchmetrics ``Metric``
    lacks none (it is adapted)."""
    cls = obj if isinstance(obj, type) else type(obj)
    torchmetric = loaded_class(_TORCHMETRIC)
    if torchmetric is not None and issubclass(cls, torchmetric):
        return []
    return [name for name in METRIC_METHODS if not callable(getattr(obj, name, None))]


def _refusal(obj: Any, missing: list[str]) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    lacks = " and ".join(METRIC_METHODS[name] for name in missing)
    return (
        f"{cls.__module__}.{cls.__qualname__} has no {lacks} method: a metric is any class with "
        f"process(data_batch, data_samples) and compute_metrics(results) (or a torchmetrics Metric)"
    )


def _shape(obj: Any) -> str | None:
    missing = missing_metric_methods(obj)
    return _refusal(obj, missing) if missing else None


MetricField = Annotated[Any, Component(METRICS, instance_of=_TORCHMETRIC, shape=_shape)]
"""``{type: Accuracy, ...}``, ``lazy(Accuracy, ...)``, a built metric (anything of ``MetricShape``), or a
torchmetrics ``Metric``. A ``type`` path names a class (the registry refuses a function)."""


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
