"""Public home of MMEngine's evaluation API (``from typedrunner.evaluator import BaseMetric``)."""

from typedrunner.parts.evaluator import BaseMetric, Evaluator

__all__ = ["BaseMetric", "Evaluator"]
