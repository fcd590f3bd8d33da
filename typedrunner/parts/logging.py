"""The run's logs, through structlog: a readable console, a human log file and a JSON-lines log.

Every logged scalar is one JSON line in ``work_dir/scalars.jsonl``; ``run.log`` mirrors the console.
typedrunner never calls ``structlog.configure``: a user's own structlog setup is left alone. Sinks
(the visualizer's backends) receive every logged scalar too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Protocol, TextIO

import structlog

__all__ = ["RunLogger", "ScalarSink", "console_line"]


class ScalarSink(Protocol):
    """Something that receives every scalar the run logs (a visualizer backend)."""

    def open(self, work_dir: Path) -> None:
        """The run's files start: ``work_dir`` exists."""

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        """``values`` logged in ``mode`` (``train``, ``val``, ``test``, or a user's) at iteration ``step``."""

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        """The run ended: its final and best metrics."""

    def close(self) -> None:
        """The run's files end (flush, release)."""


_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def _round_floats(digits: int) -> structlog.types.Processor:
    def processor(logger: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        return {k: (float(f"{v:.{digits}g}") if isinstance(v, float) else v) for k, v in event.items()}

    return processor


_FIRST = ("eta", "time", "data_time", "memory")
"""After the learning rates, in MMEngine's order; the losses and metrics follow."""


def _hms(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def console_line(
    mode: str, epoch: int, iter: int | None, iters_per_epoch: int | None, values: Mapping[str, float], digits: int = 4
) -> str:
    """The human line, in MMEngine's order: ``Epoch(train) [1][10/157]  lr: 1.000e-03  eta: 0:00:03
    time: 0.02575  data_time: 0.01885  loss: 0.6444`` (``memory`` in MB on CUDA, before the losses);
    ``Epoch(val) [2]  accuracy: 93.5`` after each validation. ``scalars.jsonl`` keeps the raw values."""
    where = f"[{epoch}]" if iter is None else f"[{epoch}][{iter}/{iters_per_epoch}]"
    shown = {k: v for k, v in values.items() if k != "eta_s"}
    if "eta_s" in values:
        shown = {"eta": values["eta_s"], **shown}
    lrs = [k for k in shown if k == "lr" or k.startswith("lr_")]
    order = lrs + [k for k in _FIRST if k in shown] + [k for k in shown if k not in lrs and k not in _FIRST]

    def fmt(key: str, value: float) -> str:
        if key == "eta":
            return _hms(value)
        if key == "memory":
            return str(int(value))
        if key in lrs:
            return f"{value:.{max(digits - 1, 0)}e}"
        return f"{value:.{digits}g}"

    return "  ".join([f"Epoch({mode}) {where}", *(f"{k}: {fmt(k, shown[k])}" for k in order)])


class RunLogger:
    """Console + ``run.log`` (human) + ``scalars.jsonl`` (machine) for one run."""

    def __init__(self, level: str = "INFO", num_digits: int = 4, stream: TextIO | None = None) -> None:
        self._level = _LEVELS[level]
        self._digits = num_digits
        self._files: list[TextIO] = []
        self._human = [self._console_logger(stream or sys.stdout, colors=(stream or sys.stdout).isatty())]
        self._json: list[Any] = []
        self.sinks: list[ScalarSink] = []
        """Receive every logged scalar (see :meth:`scalars` and :meth:`record`)."""

    def _console_logger(self, stream: TextIO, colors: bool) -> Any:
        return structlog.wrap_logger(
            structlog.PrintLogger(file=stream),
            wrapper_class=structlog.make_filtering_bound_logger(self._level),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
                _round_floats(self._digits),
                structlog.dev.ConsoleRenderer(colors=colors, pad_event_to=0),
            ],
        )

    def attach(self, work_dir: Path) -> None:
        """Start writing ``run.log`` and ``scalars.jsonl`` into ``work_dir``."""
        work_dir.mkdir(parents=True, exist_ok=True)
        human = open(work_dir / "run.log", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        scalars = open(work_dir / "scalars.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._files += [human, scalars]
        self._human.append(self._console_logger(human, colors=False))
        self._json.append(
            structlog.wrap_logger(
                structlog.WriteLogger(file=scalars),
                processors=[
                    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time_utc"),
                    structlog.processors.EventRenamer(to="mode"),
                    structlog.processors.JSONRenderer(),
                ],
            )
        )
        for sink in self.sinks:
            sink.open(work_dir)

    def info(self, event: str, **fields: Any) -> None:
        for logger in self._human:
            logger.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        for logger in self._human:
            logger.warning(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        for logger in self._human:
            logger.debug(event, **fields)

    def scalars(
        self,
        mode: str,
        *,
        epoch: int,
        iter: int | None,
        iters_per_epoch: int | None,
        step: int,
        values: dict[str, float],
    ) -> None:
        """Log scalars: one JSON line, and one readable console line (see :func:`console_line`)."""
        line = console_line(mode, epoch, iter, iters_per_epoch, values, self._digits)
        for logger in self._human:
            logger.info(line)
        for logger in self._json:
            logger.msg(mode, epoch=epoch, iter=iter, step=step, **values)
        for f in self._files:
            f.flush()
        for sink in self.sinks:
            sink.scalars(mode, step, values)

    def record(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        """Scalars a user logs (``runner.visualizer.add_scalars``): a JSON line and every sink, no console line."""
        for logger in self._json:
            logger.msg(mode, step=step, **values)
        for f in self._files:
            f.flush()
        for sink in self.sinks:
            sink.scalars(mode, step, values)

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        """The run's final and best metrics, to every sink."""
        for sink in self.sinks:
            sink.summary(final, best, step)

    def close(self) -> None:
        try:
            for sink in self.sinks:
                sink.close()
        finally:
            self._close_files()

    def _close_files(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()
        del self._human[1:]
        self._json.clear()
