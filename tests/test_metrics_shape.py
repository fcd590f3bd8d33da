"""A metric is anything with ``process(data_batch, data_samples)`` and ``compute_metrics(results)``, as
in MMEngine: an MMEngine ``BaseMetric`` subclass and a plain class train and validate; a class (or a
built object) missing a method is refused at validation, naming the method; a ``type`` path still
names a class, never a function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import problems_of
from tests.metric_shapes import OnlyProcess, PlainAccuracy
from tests.mmengine_support import MMAccuracy, MMBaseMetric  # type: ignore[attr-defined]
from typedrunner.config import Evaluator
from typedrunner.runner import Runner
from typedrunner.testing import toy_config


def evaluator_problems(val_evaluator: Any) -> list[Any]:
    data = {"model": {"type": "typedrunner.testing.ToyModel"}, "val_evaluator": val_evaluator}
    return [p for p in problems_of(data) if p.path.startswith("val_evaluator")]


def train_with(work_dir: Path, metrics: list[Any]) -> dict[str, float]:
    runner = Runner(toy_config(work_dir, max_epochs=2, val_evaluator=Evaluator(metrics=metrics)))
    runner.train()
    return runner.val()


def test_an_mmengine_base_metric_subclass_is_a_metric(tmp_path: Path) -> None:
    assert issubclass(MMAccuracy, MMBaseMetric)
    metrics = train_with(tmp_path, [{"type": "tests.mmengine_support.MMAccuracy", "collect_device": "cpu"}])
    # MMEngine's own __init__ set prefix (its default_prefix) and results; the value is a real accuracy
    assert set(metrics) == {"mm/accuracy"}
    assert 0.0 <= metrics["mm/accuracy"] <= 100.0
    assert metrics["mm/accuracy"] > 50.0  # two epochs of the toy problem learn something


def test_a_plain_class_with_the_two_methods_is_a_metric_and_gets_results_and_prefix(tmp_path: Path) -> None:
    built = PlainAccuracy()
    built.prefix = "again"  # type: ignore[attr-defined]  # its own prefix is kept
    assert not hasattr(built, "results")
    metrics = train_with(tmp_path, [{"type": "tests.metric_shapes.PlainAccuracy"}, built])
    # by type: no prefix of its own, so none; both see the same predictions
    assert set(metrics) == {"plain_accuracy", "again/plain_accuracy"}
    assert metrics["plain_accuracy"] == metrics["again/plain_accuracy"] > 50.0
    assert built.results == []  # filled in, then cleared after each validation
    assert built.collect_device == "cpu"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "metric",
    [{"type": "tests.metric_shapes.OnlyProcess"}, OnlyProcess()],
    ids=["by-type", "built"],
)
def test_a_metric_without_compute_metrics_is_refused_naming_the_method(metric: Any) -> None:
    (problem,) = evaluator_problems({"metrics": [metric]})
    assert problem.path.startswith("val_evaluator.metrics[0]")
    assert "tests.metric_shapes.OnlyProcess has no compute_metrics(results) method" in problem.message


def test_a_type_path_naming_a_function_is_refused() -> None:
    (problem,) = evaluator_problems({"type": "tests.metric_shapes.accuracy_function"})
    assert problem.path == "val_evaluator.type"
    assert "is a function, not a class" in problem.message
