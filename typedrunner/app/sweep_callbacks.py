"""Hydra callbacks (configured under ``hydra.callbacks``; ``conf/hydra/callbacks/`` holds the presets).

``SweepReport`` writes the sweep report (``typedrunner.app.report``) into the sweep directory when a
multirun ends: ``report.csv``, ``report.md`` and ``report_<param>.png``, one row per job, a failed job
included. Hydra's sweepers raise once the jobs of a batch have run if any of them failed, so
``on_multirun_end`` is never reached then: the report is also written when the process exits after
the sweep started (and any job directory exists), so a failed job is a row, not a lost sweep.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from typedrunner.app.ranks import reports

if TYPE_CHECKING:
    from typedrunner.app.report import Direction

__all__ = ["SweepReport"]


class SweepReport(Callback):
    """Write ``report.csv``, ``report.md`` and one ``report_<param>.png`` per swept parameter into the
    sweep directory when a multirun ends."""

    def __init__(self, objective: str | None = None, direction: str = "maximize", plots: bool = True) -> None:
        # Hydra builds callbacks before the job starts, for every run: never refuse here. The command
        # line validates ``objective`` and ``direction`` and reports a bad one like any other key.
        self.objective = objective
        """The metric to rank and plot by; ``None``: the first metric the jobs report."""
        self.direction: Direction = "minimize" if direction == "minimize" else "maximize"
        self.plots = plots
        self._sweep_dir: Path | None = None
        self._pending = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not reports():
            return  # a sweep under torchrun: every rank runs it, rank 0 writes the report
        self._sweep_dir = Path(str(config.hydra.sweep.dir))
        self._pending = True
        atexit.register(self._write_at_exit)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not reports():
            return
        self._pending = False
        self._write(Path(str(config.hydra.sweep.dir)))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """A job that raised something other than typedrunner's own errors (which the command line
        reports itself) gets its ``error_report.txt`` here, so its row says why it failed."""
        error = job_return._return_value
        if not reports() or job_return.status is not JobStatus.FAILED or not isinstance(error, BaseException):
            return
        with contextlib.suppress(OSError):
            report = Path(str(config.hydra.runtime.output_dir)) / "error_report.txt"
            if not report.exists():
                report.write_text(f"{type(error).__name__}: {error}\n", encoding="utf-8")

    def _write_at_exit(self) -> None:
        # The report code (and its plotting) is imported when a report is written, never when a run
        # starts: Hydra builds this callback for every run, including a single training run.
        from typedrunner.app.report import find_run_dirs

        if not self._pending or self._sweep_dir is None or not find_run_dirs(self._sweep_dir):
            return
        self._pending = False
        try:
            self._write(self._sweep_dir)
        except Exception as e:  # at exit nobody is left to catch it: say it, don't hide the sweep's own error
            print(f"typedrunner: could not write the sweep report: {type(e).__name__}: {e}", file=sys.stderr)

    def _write(self, sweep_dir: Path) -> None:
        from typedrunner.app.report import report_directory

        report, written = report_directory(sweep_dir, self.objective, self.direction, self.plots)
        if not written:
            return
        failed = sum(row.status == "failed" for row in report.rows)
        counts = f"{len(report.rows)} job{'s' if len(report.rows) != 1 else ''}" + (
            f", {failed} failed" if failed else ""
        )
        print(f"sweep report ({counts}): {written[1]}", flush=True)
