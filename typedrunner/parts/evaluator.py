"""``BaseMetric`` and ``Evaluator``: MMEngine's evaluation API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, cast

from typedrunner.config.evaluator import FilledMetric, MetricShape
from typedrunner.parts import distributed
from typedrunner.registry.lazy import loaded_class

__all__ = [
    "BaseMetric",
    "Evaluator",
    "FilledMetric",
    "MetricShape",
    "TorchMetricAdapter",
    "evaluate_metric",
    "fill_metric_defaults",
    "gather_results",
    "infer_rule",
    "is_torchmetric",
]


class BaseMetric(ABC):
    """A metric: ``process`` appends per-batch results to ``results``; ``compute_metrics`` reduces them."""

    default_prefix: str | None = None

    def __init__(self, collect_device: str = "cpu", prefix: str | None = None) -> None:
        self.collect_device = collect_device
        self.prefix = prefix or self.default_prefix
        self.results: list[Any] = []

    @abstractmethod
    def process(self, data_batch: Any, data_samples: Any) -> None:
        """Record what ``compute_metrics`` needs from one batch into ``self.results``."""

    @abstractmethod
    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        """Reduce the recorded results to ``{metric_name: value}``."""

    def evaluate(self, size: int) -> dict[str, float]:
        """Compute the metrics over everything processed since the last call, then reset."""
        return evaluate_metric(self, size)


def fill_metric_defaults(metric: MetricShape) -> FilledMetric:
    """Give a metric of ``MetricShape`` what MMEngine's ``BaseMetric.__init__`` would have: ``results``
    (an empty list), ``prefix`` (its class's ``default_prefix``, or None) and ``collect_device`` ('cpu'),
    each only when it has none."""
    filled: Any = metric
    if not hasattr(filled, "results"):
        filled.results = []
    if not hasattr(filled, "prefix"):
        filled.prefix = getattr(filled, "default_prefix", None)
    if not hasattr(filled, "collect_device"):
        filled.collect_device = "cpu"
    return cast("FilledMetric", filled)


def evaluate_metric(metric: Any, size: int) -> dict[str, float]:
    """``metric.compute_metrics`` over everything processed since the last call, prefixed by its
    ``prefix``; its ``results`` are then cleared (MMEngine's ``BaseMetric.evaluate``, on one process)."""
    metrics = metric.compute_metrics(metric.results)
    metric.results.clear()
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{type(metric).__name__}.compute_metrics must return a mapping of names to numbers, "
            f"not {type(metrics).__name__}"
        )
    if metric.prefix:
        return {f"{metric.prefix}/{key}": value for key, value in metrics.items()}
    return dict(metrics)


class Evaluator:
    """Several metrics over the same predictions: typedrunner's ``BaseMetric``s or any ``MetricShape``."""

    def __init__(self, metrics: Sequence[MetricShape]) -> None:
        self.metrics = [fill_metric_defaults(metric) for metric in metrics]

    def process(self, data_samples: Any, data_batch: Any) -> None:
        for metric in self.metrics:
            metric.process(data_batch, data_samples)

    def evaluate(self, size: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in self.metrics:
            for key, value in evaluate_metric(metric, size).items():
                if key in out:
                    raise ValueError(f"two metrics both return {key!r}; give one of them a prefix (prefix: ...)")
                out[key] = float(value)
        return out


class TorchMetricAdapter(BaseMetric):
    """A ``torchmetrics.Metric`` used as a metric: ``update(*data_samples)`` per batch, ``compute()``
    at the end. The model's predictions must be ``(preds, target)``, as torchmetrics expects."""

    def __init__(self, metric: Any, name: str | None = None, prefix: str | None = None) -> None:
        super().__init__(prefix=prefix)
        self.metric = metric
        self.name = name or type(metric).__name__

    def process(self, data_batch: Any, data_samples: Any) -> None:
        if not isinstance(data_samples, (tuple, list)) or len(data_samples) < 2:
            raise TypeError(
                f"{self.name} (torchmetrics) needs the model's predict output as (preds, target), "
                f"not {type(data_samples).__name__}"
            )
        self.metric.update(data_samples[0], data_samples[1])
        self.results.append(len(data_samples[1]))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        value = self.metric.compute()
        self.metric.reset()
        return {self.name: float(value)}


def gather_results(evaluator: Evaluator, size: int) -> None:
    """With several ranks, give every metric the results of every rank, so that each computes the
    metric over the whole dataset (as one process would). Evaluation passes are not padded, so each
    sample was seen once: results recorded one per sample (as many as the rank's share of ``size``)
    are put back in the sampler's order, others (one per batch, ...) are joined in rank order.
    ``torchmetrics`` metrics synchronise their own state and are left alone."""
    ranks = distributed.world_size()
    if ranks == 1:
        return
    shares = [len(range(r, size, ranks)) for r in range(ranks)]
    for metric in evaluator.metrics:
        if isinstance(metric, TorchMetricAdapter):
            continue
        parts: list[list[Any]] = distributed.gather_objects(list(metric.results))
        if [len(part) for part in parts] == shares:  # one result per sample: rank r holds samples r, r+N, ...
            merged = [part[i] for i in range(shares[0]) for part in parts if i < len(part)]
        else:
            merged = [result for part in parts for result in part]
        metric.results[:] = merged


def is_torchmetric(obj: Any) -> bool:
    """Whether ``obj`` is a ``torchmetrics.Metric`` (without importing torchmetrics)."""
    metric = loaded_class("torchmetrics.Metric")
    return metric is not None and isinstance(obj, metric)


_LESS_HINTS = ("loss", "error", "err", "mse", "mae", "rmse", "wer", "cer")


def infer_rule(key: str) -> str:
    """``less`` for keys that name an error or a loss, ``greater`` otherwise (accuracy, mAP, ...)."""
    return "less" if any(h in key.lower() for h in _LESS_HINTS) else "greater"
