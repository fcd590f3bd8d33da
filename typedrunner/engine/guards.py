"""What keeps a run's work safe: graceful stops on signals, non-finite losses caught, and clear errors
from data loading.

Nothing here costs a host sync per iteration: a signal only sets a flag the loops read, and the
losses are kept as they are and checked together every ``interval`` iterations.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import FrameType
from typing import Any, NoReturn

import torch
from torch import Tensor

from typedrunner.engine.state import RunState
from typedrunner.errors import DataLoadingError, NonFiniteLossError, TrainingStopped
from typedrunner.parts.logging import RunLogger

__all__ = ["GracefulStop", "NonFiniteGuard", "guarded", "loading_failed", "worker_deaths_named"]


# -- signals ----------------------------------------------------------------------------------
class GracefulStop:
    """While training: the first SIGTERM or SIGINT asks the loops to stop after the current
    iteration (they save a checkpoint); a second one stops at once. Main thread only."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, state: RunState, logger: RunLogger) -> None:
        self.state = state
        self.logger = logger
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.state.stop_signal is None:
            self.state.stop_signal = name
            self.logger.warning(
                f"{name} received: finishing this iteration, then saving a checkpoint (send it again to stop at once)"
            )
            return
        # The second signal: leave now, the way the signal would have without us.
        self.__exit__()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)


# -- non-finite losses --------------------------------------------------------------------------
class NonFiniteGuard:
    """Keeps a reference to each iteration's loss (no device work per iteration) and checks them all
    every ``interval`` iterations, at the log points, and before every checkpoint: one ``isfinite`` over
    the stacked losses and one host read. A NaN or inf in any loss since the last check fails it."""

    FOLD = 1024
    """With a longer interval, the losses kept are reduced to one flag (on the device, no host read)
    every ``FOLD`` iterations, so that the guard never holds more than this many tensors."""

    def __init__(self, interval: int, enabled: bool = True) -> None:
        self.interval = interval
        self.enabled = enabled
        self._folds = interval > self.FOLD
        self._losses: list[Tensor] = []
        self._ok: Tensor | None = None
        """The losses already folded: all finite (a bool on the device), or None."""
        self._since = 0
        self._until = 0
        self._last: Mapping[str, Tensor] = {}

    def update(self, state: RunState, outputs: Mapping[str, Tensor]) -> None:
        loss = outputs.get("loss")
        if loss is None or not self.enabled:
            return
        if not self._losses and self._ok is None:
            self._since = state.iter  # the window starts here (a resumed run starts past 0)
        if loss.requires_grad:  # a model's own train_step: keep the value, not its autograd graph
            loss = loss.detach()
        self._losses.append(loss)
        self._last = outputs
        done = self._until = state.iter + 1  # the last iteration read, counted from 1
        if done % self.interval == 0:  # at the log points, counted from the run's start
            self.check(state, outputs)
        elif self._folds and done % self.FOLD == 0:
            self._fold()

    def _fold(self) -> Tensor | None:
        """All the losses kept so far, finite or not: one bool on the device (None: no loss yet)."""
        losses = self._losses
        if losses:
            same_shape = len({loss.shape for loss in losses}) == 1
            if same_shape:
                ok = torch.isfinite(torch.stack(losses)).all()
            else:  # a model's own train_step may return losses of several shapes
                ok = torch.stack([torch.isfinite(loss).all() for loss in losses]).all()
            self._ok = ok if self._ok is None else self._ok & ok
            self._losses = []
        return self._ok

    def check(self, state: RunState, outputs: Mapping[str, Tensor] | None = None) -> None:
        """Raise if any loss since the last check was not finite (one host read)."""
        outputs = self._last if outputs is None else outputs
        ok = self._fold()
        self._ok = None
        if ok is not None and not bool(ok):
            terms = ", ".join(f"{k}={float(v.detach().float().mean()):.4g}" for k, v in outputs.items())
            raise NonFiniteLossError(
                f"the loss became NaN or infinite between iterations {self._since + 1} and {self._until} "
                f"(epoch {state.epoch + 1}); at iteration {self._until}: {terms}. Try a lower lr, "
                "optim_wrapper.clip_grad, checking the data for NaN/inf, or optim_wrapper.nonfinite: skip "
                "(skip such steps). The last checkpoint is untouched."
            )


# -- data -------------------------------------------------------------------------------------
DIAGNOSIS_LIMIT_S = 30.0
"""How long the failing-sample diagnosis may read samples again when the dataloader sets no
``timeout`` of its own (with one, that is the limit): a sample that hangs must not hang the report."""


def _failing_sample(loader: Any, batch_number: int) -> str:
    """On the error path only: find which sample of the failing batch raises, by reading each again
    in this process (``Dataset[7] raised ValueError: ...``); empty when it cannot be told.

    The reading runs in a daemon thread with a time limit (the loader's ``timeout``, or
    ``DIAGNOSIS_LIMIT_S``): a sample that does not return is named as such and left behind."""
    dataset, batch_sampler = getattr(loader, "dataset", None), getattr(loader, "batch_sampler", None)
    if dataset is None or batch_sampler is None:
        return ""
    name = type(dataset).__qualname__
    found: list[str] = []
    reading: list[int] = []

    def diagnose() -> None:
        try:
            indices: list[int] = next(itertools.islice(iter(batch_sampler), batch_number, None), [])
        except Exception:
            return
        for index in indices:
            reading.append(index)
            try:
                dataset[index]
            except Exception as e:
                found.append(f"{name}[{index}] raised {type(e).__name__}: {e}")
                return

    limit = float(getattr(loader, "timeout", 0) or 0) or DIAGNOSIS_LIMIT_S
    thread = threading.Thread(target=diagnose, name="typedrunner-failing-sample", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        where = f"{name}[{reading[-1]}]" if reading else "finding the batch's samples"
        return f"{where} did not return within {limit:g} s when read again in the main process"
    return found[0] if found else ""


def guarded(loader: Iterable[Any], path: str, start: int = 0, state: RunState | None = None) -> Iterator[Any]:
    """Iterate ``loader``; a failure while loading (not while training) becomes a clear error naming
    the dataloader, the dataset and, where it can be found, the sample. ``start``: batches skipped.

    With the run's ``state``: a worker that died after a stop was requested (SIGTERM to the whole
    process group, as SLURM sends it, reaches the workers too) is part of that stop, not a data
    failure: it raises ``TrainingStopped``. The train loops inline this (``next`` in a ``try``, then
    :func:`loading_failed`): no generator between them and each batch."""
    iterator = iter(loader)
    number = start
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as e:
            loading_failed(loader, iterator, path, number, state, e)
        number += 1
        yield batch


def loading_failed(
    loader: Iterable[Any], iterator: Iterator[Any], path: str, number: int, state: RunState | None, e: Exception
) -> NoReturn:
    """Raise the error for ``e``, raised by ``next(iterator)`` while loading batch ``number`` of
    ``loader`` (see :func:`guarded`)."""
    dataset = getattr(loader, "dataset", None)
    name = type(dataset).__qualname__
    died = isinstance(e, ConnectionError) or (
        "worker" in str(e) and ("killed" in str(e) or "exited unexpectedly" in str(e))
    )
    if died and state is not None and state.stop_signal is not None:
        raise TrainingStopped(state.stop_signal) from None
    if died:
        what = f"a dataloader worker died ({str(e).strip().splitlines()[0]})"
    else:
        sample = _failing_sample(loader, number)
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        failure = lines[-1] if lines else type(e).__name__
        if "timed out" in failure:  # torch's DataLoader(timeout=...): a sample hangs
            what = f"loading batch {number} timed out ({failure})" + (f"; {sample}" if sample else "")
            _shut_down_workers(iterator)
        else:
            what = sample or f"loading batch {number} failed: {failure}"
    raise DataLoadingError(
        f"{path} ({name}): {what}. The last checkpoint is intact: fix the data and resume with resume=true"
    ) from e


def _shut_down_workers(iterator: Iterator[Any]) -> None:
    """Stop the workers of a dataloader iterator that timed out (torch's own shutdown: it
    unregisters them from its SIGCHLD handler, then terminates any that hang), so that a worker
    stuck in a sample does not outlive the run."""
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()


@contextlib.contextmanager
def worker_deaths_named(state: RunState) -> Iterator[None]:
    """A dataloader worker that died mid-run (torch's RuntimeError) becomes a ``DataLoadingError``
    that says what to do; after a stop was requested it is part of that stop (``TrainingStopped``)."""
    try:
        yield
    except RuntimeError as e:
        if "DataLoader worker" not in str(e):
            raise
        if state.stop_signal is not None:
            raise TrainingStopped(state.stop_signal) from None
        raise DataLoadingError(
            f"a dataloader worker died: {str(e).strip().splitlines()[0]}. The last checkpoint is intact: "
            "fix the cause (often memory: fewer workers or a smaller batch) and resume with resume=true"
        ) from e
