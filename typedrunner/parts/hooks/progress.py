"""A progress bar (tqdm) for training, validation and test on a terminal, with the loss and lr from the
last log point, the iteration speed and the ETA. Log lines are printed above the bars
(``tqdm.contrib.logging.logging_redirect_tqdm``). Chosen by ``log_processor.progress``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TextIO

from torch import Tensor

from typedrunner.parts.hooks.base import Hook, Priority, RunView
from typedrunner.parts.logging import LOGGER_NAME

__all__ = ["ProgressBarHook"]


class ProgressBarHook(Hook):
    """One bar per training epoch, per validation and per test. Also a sink of the run's logger:
    the bar's postfix (loss, lr) changes at log points only, so the bar adds no host sync."""

    priority = Priority.LOWEST

    def __init__(
        self, val_iters: int | None = None, test_iters: int | None = None, stream: TextIO | None = None
    ) -> None:
        self.val_iters, self.test_iters = val_iters, test_iters
        self.stream = stream or sys.stdout
        self._bar: Any = None
        self._redirect: AbstractContextManager[None] | None = None

    def _open(self, desc: str, total: int | None) -> None:
        from tqdm import tqdm

        self._close_bar()
        self._bar = tqdm(total=total, desc=desc, file=self.stream, dynamic_ncols=True, leave=False, mininterval=0.2)

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- hook events --------------------------------------------------------------------------
    def before_run(self, runner: RunView) -> None:
        if self._redirect is None:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm([logging.getLogger(), logging.getLogger(LOGGER_NAME)])
            self._redirect.__enter__()

    def before_train_epoch(self, runner: RunView) -> None:
        self._open(f"Epoch(train) [{runner.epoch + 1}]", runner.iters_per_epoch or None)

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self._step()

    def after_train_epoch(self, runner: RunView) -> None:
        self._close_bar()

    def before_val_epoch(self, runner: RunView) -> None:
        self._open(f"Epoch(val) [{runner.epoch}]", self.val_iters)

    def after_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._step()

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self._close_bar()

    def before_test_epoch(self, runner: RunView) -> None:
        self._open(f"Epoch(test) [{runner.epoch}]", self.test_iters)

    def after_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._step()

    def after_test_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self._close_bar()

    def after_run(self, runner: RunView) -> None:
        self.close()

    # -- ScalarSink: the logged values, for the postfix; close() also ends a run that failed -----
    def open(self, work_dir: Path) -> None:
        pass

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        if self._bar is not None and mode == "train":
            shown = {k: v for k, v in values.items() if "loss" in k or k == "lr" or k.startswith("lr_")}
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        pass

    def close(self) -> None:
        self._close_bar()
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
