"""The run's logs: a readable console, a human log file and a JSON-lines log.

Human records go through the standard library, as records of the ``typedrunner`` logger: structlog
renders each message (``event key=value ...``), and ``structlog.stdlib.ProcessorFormatter`` formats
records for typedrunner's own handlers (``run.log`` in the run directory, and the console when no
other handler would receive them). So Hydra's ``job_logging`` or a user's ``logging.config`` route and
filter them like any library's: with handlers on the root logger (or on ``typedrunner``), the records
go there, and typedrunner adds no console handler of its own.

Every logged scalar is one JSON line in ``work_dir/scalars.jsonl``. typedrunner never calls
``structlog.configure``: a user's own structlog setup is left alone. Sinks (the visualizer's
backends) receive every logged scalar too.
"""

from __future__ import annotations

import logging
import sys
import weakref
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


LOGGER_NAME = "typedrunner"
"""The standard-library logger that carries typedrunner's human records."""


def _formatter(colors: bool) -> logging.Formatter:
    """``2026-12-03 18:41:03 [info     ] <message>``: structlog's console rendering of a stdlib record."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=colors, pad_event_to=0),
        ],
    )


class _ThisRun(logging.Filter):
    """Lets through only the records of one RunLogger (several runners may share a process)."""

    def __init__(self, run: int) -> None:
        super().__init__()
        self.run = run

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "typedrunner_run", None) == self.run


def _routed_elsewhere(logger: logging.Logger) -> bool:
    """Whether a handler other than a RunLogger's own receives ``logger``'s records (Hydra's
    ``job_logging``, a user's ``logging.config`` or ``basicConfig``): stdlib's ``hasHandlers``, minus ours."""
    node: logging.Logger | None = logger
    while node is not None:
        if any(not any(isinstance(f, _ThisRun) for f in h.filters) for h in node.handlers):
            return True
        node = node.parent if node.propagate else None
    return False


def _rank_tag(rank: int) -> structlog.types.Processor:
    def processor(logger: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        return {**event, "rank": rank}

    return processor


class RunLogger:
    """Console + ``run.log`` (human, through ``logging``) + ``scalars.jsonl`` (machine) for one run.

    ``rank``: a process other than rank 0 logs warnings and errors only, tagged with its rank (rank 0
    writes the run's files and logs the rest)."""

    def __init__(self, level: str = "INFO", num_digits: int = 4, stream: TextIO | None = None, rank: int = 0) -> None:
        self._level = _LEVELS[level] if rank == 0 else max(_LEVELS[level], logging.WARNING)
        self._rank = rank
        self._digits = num_digits
        self._files: list[TextIO] = []
        self._json: list[Any] = []
        self.sinks: list[ScalarSink] = []
        """Receive every logged scalar (see :meth:`scalars` and :meth:`record`)."""
        self._std = logging.getLogger(LOGGER_NAME)
        if self._std.level == logging.NOTSET or getattr(self._std, "_typedrunner_level", False):
            self._std.setLevel(self._level)  # log_level, unless a user's logging config set this logger's level
            self._std._typedrunner_level = True  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
        self._extra = {"typedrunner_run": id(self)}
        self._bound = structlog.wrap_logger(
            self._std,
            wrapper_class=structlog.stdlib.BoundLogger,
            processors=[*([_rank_tag(rank)] if rank else []), _round_floats(self._digits), self._to_message],
        )
        self._handlers: list[logging.Handler] = []
        self._console: logging.Handler | None = None
        if not _routed_elsewhere(self._std):  # nobody else receives our records: print them ourselves
            out = stream or sys.stdout
            self._console = self._handler(logging.StreamHandler(out), colors=out.isatty())
            weakref.finalize(self, self._std.removeHandler, self._console)  # a runner built, never run

    _render = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)

    def _to_message(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        """The record's message: ``event key=value ...`` (structlog's rendering), as a plain string,
        so any formatter (Hydra's, a user's) shows it whole."""
        return (self._render(logger, method, dict(event)),), {"extra": self._extra}

    def _handler(self, handler: logging.Handler, colors: bool) -> logging.Handler:
        handler.setFormatter(_formatter(colors))
        handler.addFilter(_ThisRun(id(self)))
        self._std.addHandler(handler)
        self._handlers.append(handler)
        return handler

    def attach(self, work_dir: Path) -> None:
        """Start writing ``run.log`` and ``scalars.jsonl`` into ``work_dir``."""
        work_dir.mkdir(parents=True, exist_ok=True)
        if self._console is not None and self._console not in self._handlers:  # attached again after close()
            self._handler(self._console, colors=getattr(self._console, "stream", sys.stdout).isatty())
        self._handler(logging.FileHandler(work_dir / "run.log", encoding="utf-8"), colors=False)
        scalars = open(work_dir / "scalars.jsonl", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._files += [scalars]
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
        if self._level <= logging.INFO:
            self._bound.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        if self._level <= logging.WARNING:
            self._bound.warning(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        if self._level <= logging.DEBUG:
            self._bound.debug(event, **fields)

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
        self.info(console_line(mode, epoch, iter, iters_per_epoch, values, self._digits))
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
        for handler in self._handlers:
            self._std.removeHandler(handler)
            if handler is not self._console:
                handler.close()
        self._handlers.clear()
        for f in self._files:
            f.close()
        self._files.clear()
        self._json.clear()
