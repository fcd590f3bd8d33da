"""Metrics by shape, for tests/test_metrics_shape.py: classes that subclass no metric base at all.
(Dotted paths in the test configs name them, so they live in an importable module.)"""

from __future__ import annotations

from typing import Any

import torch


class PlainAccuracy:
    """Only the two methods: no ``results``, ``prefix`` nor ``collect_device`` of its own."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        scores, labels = data_samples
        self.results.append(float((scores.argmax(dim=1) == labels).float().mean()))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"plain_accuracy": 100.0 * sum(results) / len(results)}

    results: list[Any]  # filled in by typedrunner (declared for the type checker only)


class OnlyProcess:
    """Half a metric: it never says how to reduce what it records."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        pass


def accuracy_function(data_batch: Any, data_samples: Any) -> torch.Tensor:
    """A function, not a class: a config ``type`` may never name one."""
    return torch.zeros(())
