"""``visualizer`` config -> the run's :class:`Visualizer` and its backends."""

from __future__ import annotations

from typing import Any

from typedrunner.config import visualizer as schema
from typedrunner.config.runner import RunnerConfig
from typedrunner.parts import visualizer as parts
from typedrunner.parts.logging import RunLogger, ScalarSink

__all__ = ["build_visualizer"]


def _backend(cfg: schema.VisBackend, run: parts.RunInfo) -> ScalarSink:
    if isinstance(cfg, schema.LocalVisBackend):
        return parts.LocalVisBackend(cfg, run)
    if isinstance(cfg, schema.TensorboardVisBackend):
        return parts.TensorboardVisBackend(cfg, run)
    if isinstance(cfg, schema.MLflowVisBackend):
        return parts.MLflowVisBackend(cfg, run)
    return parts.WandbVisBackend(cfg, run)


def build_visualizer(cfg: RunnerConfig, logger: RunLogger, *, backends: bool = True) -> parts.Visualizer:
    """The visualizer of a run: its backends receive every scalar ``logger`` logs, from when the
    run's files open. No backend library is imported here (each imports its own when it opens).
    ``backends=False`` (ranks other than 0): none, the scalars logged are dropped."""
    sinks: list[ScalarSink] = []
    if cfg.visualizer is not None and backends:
        config: dict[str, Any] = cfg.model_dump(mode="json")
        run = parts.RunInfo(config, cfg.experiment_name)
        sinks = [_backend(b, run) for b in cfg.visualizer.vis_backends]
    return parts.Visualizer(logger, sinks)
