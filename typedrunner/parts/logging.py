"""The run's logs, through structlog: a readable console, a human log file and a JSON-lines log.

Every logged scalar is one JSON line in ``work_dir/scalars.jsonl``; ``run.log`` mirrors the console.
typedrunner never calls ``structlog.configure``: a user's own structlog setup is left alone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

__all__ = ["RunLogger"]


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


def _rank_tag(rank: int) -> structlog.types.Processor:
    def processor(logger: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        return {**event, "rank": rank}

    return processor


class RunLogger:
    """Console + ``run.log`` (human) + ``scalars.jsonl`` (machine) for one run.

    ``rank``: a process other than rank 0 logs warnings and errors only, tagged with its rank (rank 0
    writes the run's files and logs the rest)."""

    def __init__(self, level: str = "INFO", num_digits: int = 4, stream: TextIO | None = None, rank: int = 0) -> None:
        self._level = _LEVELS[level] if rank == 0 else max(_LEVELS[level], logging.WARNING)
        self._rank = rank
        self._digits = num_digits
        self._files: list[TextIO] = []
        self._human = [self._console_logger(stream or sys.stdout, colors=(stream or sys.stdout).isatty())]
        self._json: list[Any] = []

    def _console_logger(self, stream: TextIO, colors: bool) -> Any:
        return structlog.wrap_logger(
            structlog.PrintLogger(file=stream),
            wrapper_class=structlog.make_filtering_bound_logger(self._level),
            processors=[
                *([_rank_tag(self._rank)] if self._rank else []),
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
        """Log scalars: one JSON line, and one readable console line."""
        where = f"[{epoch}]" if iter is None else f"[{epoch}][{iter}/{iters_per_epoch}]"
        for logger in self._human:
            logger.info(f"{mode} {where}", **values)
        for logger in self._json:
            logger.msg(mode, epoch=epoch, iter=iter, step=step, **values)
        for f in self._files:
            f.flush()

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()
        del self._human[1:]
        self._json.clear()
