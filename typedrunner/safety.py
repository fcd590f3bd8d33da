"""What keeps a run's work safe: graceful stops on signals, non-finite losses caught, clear errors
from data loading, and a work directory that can take the checkpoints.

Nothing here costs a host sync per iteration: a signal only sets a flag the loops read, and the
loss's finiteness is accumulated on the device and read every ``interval`` iterations.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from typedrunner.errors import Problem, TypedRunnerError

if TYPE_CHECKING:
    from typedrunner.runner import Runner

__all__ = [
    "DataLoadingError",
    "GracefulStop",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "TrainingStopped",
    "guarded",
    "work_dir_problems",
]


class TrainingStopped(TypedRunnerError):
    """Training stopped on a signal (SIGTERM, SIGINT) after saving a resumable checkpoint."""

    def __init__(self, signal_name: str, checkpoint: Path | None = None) -> None:
        self.signal_name = signal_name
        self.checkpoint = checkpoint
        where = f"; resumable checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by {signal_name}{where}")


class NonFiniteLossError(TypedRunnerError):
    """The loss became NaN or infinite."""


class DataLoadingError(TypedRunnerError):
    """A dataset or a dataloader worker failed while training or validating."""


# -- signals ----------------------------------------------------------------------------------
class GracefulStop:
    """While training: the first SIGTERM or SIGINT asks the loops to stop after the current
    iteration (they save a checkpoint); a second one stops at once. Main thread only."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
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
        if self.runner.stop_signal is None:
            self.runner.stop_signal = name
            self.runner.logger.warning(
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
    """Accumulates ``isfinite(loss)`` on the device; reads it every ``interval`` iterations."""

    def __init__(self, interval: int = 10, enabled: bool = True) -> None:
        self.interval = interval
        self.enabled = enabled
        self._ok: Tensor | None = None
        self._since = 0
        self._count = 0
        self._last: Mapping[str, Tensor] = {}

    def update(self, runner: Runner, outputs: Mapping[str, Tensor]) -> None:
        loss = outputs.get("loss")
        if loss is None or not self.enabled:
            return
        ok = torch.isfinite(loss).all()
        self._ok = ok if self._ok is None else self._ok & ok
        self._last = outputs
        self._count += 1
        if self._count % self.interval == 0:
            self.check(runner, outputs)

    def check(self, runner: Runner, outputs: Mapping[str, Tensor] | None = None) -> None:
        """Raise if any loss since the last check was not finite (one host read)."""
        outputs = self._last if outputs is None else outputs
        if self._ok is not None and not bool(self._ok):
            terms = ", ".join(f"{k}={float(v.float().mean()):.4g}" for k, v in outputs.items())
            raise NonFiniteLossError(
                f"the loss became NaN or infinite between iterations {self._since + 1} and {runner.iter + 1} "
                f"(epoch {runner.epoch + 1}); at iteration {runner.iter + 1}: {terms}. Try a lower lr, "
                "optim_wrapper.clip_grad, checking the data for NaN/inf, or optim_wrapper.nonfinite: skip "
                "(skip such steps). The last checkpoint is untouched."
            )
        self._ok = None
        self._since = runner.iter + 1


# -- data -------------------------------------------------------------------------------------
def _failing_sample(loader: Any, batch_number: int) -> str:
    """On the error path only: find which sample of the failing batch raises, by reading each again
    in this process (``Dataset[7] raised ValueError: ...``); empty when it cannot be told."""
    dataset, batch_sampler = getattr(loader, "dataset", None), getattr(loader, "batch_sampler", None)
    if dataset is None or batch_sampler is None:
        return ""
    try:
        indices: list[int] = next(itertools.islice(iter(batch_sampler), batch_number, None), [])
    except Exception:
        return ""
    for index in indices:
        try:
            dataset[index]
        except Exception as e:
            return f"{type(dataset).__qualname__}[{index}] raised {type(e).__name__}: {e}"
    return ""


def guarded(loader: Iterable[Any], path: str, start: int = 0) -> Iterator[Any]:
    """Iterate ``loader``; a failure while loading (not while training) becomes a clear error naming
    the dataloader, the dataset and, where it can be found, the sample. ``start``: batches skipped."""
    iterator = iter(loader)
    number = start
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as e:
            dataset = getattr(loader, "dataset", None)
            name = type(dataset).__qualname__
            died = isinstance(e, ConnectionError) or (
                "worker" in str(e) and ("killed" in str(e) or "exited unexpectedly" in str(e))
            )
            if died:
                what = f"a dataloader worker died ({str(e).strip().splitlines()[0]})"
            else:
                sample = _failing_sample(loader, number)
                lines = [line for line in str(e).strip().splitlines() if line.strip()]
                what = sample or f"loading batch {number} failed: {lines[-1] if lines else type(e).__name__}"
            raise DataLoadingError(
                f"{path} ({name}): {what}. The last checkpoint is intact: fix the data and resume with resume=true"
            ) from e
        number += 1
        yield batch


# -- the work directory -------------------------------------------------------------------------
def work_dir_problems(work_dir: Path, model: nn.Module, with_optimizer: bool) -> list[Problem]:
    """Whether the checkpoints can be written: a directory we may write, with room for a few."""
    ancestor = work_dir
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [Problem("work_dir", f"{str(work_dir)!r} cannot be created: {str(ancestor)!r} is not a directory")]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [Problem("work_dir", f"{str(ancestor)!r} is not writable: choose a work_dir you can write")]
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    needed = size * (3 if with_optimizer else 1) * 2  # two checkpoints side by side while one is renamed
    free = shutil.disk_usage(ancestor).free
    if free < needed:
        return [
            Problem(
                "work_dir",
                f"{str(ancestor)!r} has {free / 2**20:.1f} MiB free; a checkpoint needs about "
                f"{needed / 2**21:.1f} MiB (twice that while the previous one is replaced)",
            )
        ]
    return []
