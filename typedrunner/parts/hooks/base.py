"""The hook base class, one typed method per event, and the list that dispatches each event only to
the hooks that override it.

Event names, signatures and priorities are MMEngine's, so a user's hook ports unchanged. A hook sees
the run through :class:`RunView`, a narrow read-mostly view (the Runner implements it), never through
the Runner's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor, nn
from torch.utils.data import DataLoader

from typedrunner.config.runner import RunnerConfig
from typedrunner.parts.evaluator import Evaluator
from typedrunner.parts.logging import RunLogger
from typedrunner.parts.optim import AnyOptimWrapper
from typedrunner.parts.visualizer import Visualizer

__all__ = ["EVENTS", "Event", "Hook", "HookList", "Priority", "RunView"]


class Priority(IntEnum):
    """MMEngine's hook priorities: lower runs first. Configs may give the name or a number."""

    HIGHEST = 0
    VERY_HIGH = 10
    HIGH = 30
    ABOVE_NORMAL = 40
    NORMAL = 50
    BELOW_NORMAL = 60
    LOW = 70
    VERY_LOW = 90
    LOWEST = 100

    @classmethod
    def of(cls, value: int | str) -> int:
        """``'LOW'`` -> 70, ``Priority.LOW`` -> 70, ``65`` -> 65."""
        return cls[value] if isinstance(value, str) else int(value)


class Event(str, Enum):
    """The 22 events, in MMEngine's names. A member equals its name as a string."""

    BEFORE_RUN = "before_run"
    AFTER_RUN = "after_run"
    BEFORE_TRAIN = "before_train"
    AFTER_TRAIN = "after_train"
    BEFORE_TRAIN_EPOCH = "before_train_epoch"
    AFTER_TRAIN_EPOCH = "after_train_epoch"
    BEFORE_TRAIN_ITER = "before_train_iter"
    AFTER_TRAIN_ITER = "after_train_iter"
    BEFORE_VAL = "before_val"
    AFTER_VAL = "after_val"
    BEFORE_VAL_EPOCH = "before_val_epoch"
    AFTER_VAL_EPOCH = "after_val_epoch"
    BEFORE_VAL_ITER = "before_val_iter"
    AFTER_VAL_ITER = "after_val_iter"
    BEFORE_TEST = "before_test"
    AFTER_TEST = "after_test"
    BEFORE_TEST_EPOCH = "before_test_epoch"
    AFTER_TEST_EPOCH = "after_test_epoch"
    BEFORE_TEST_ITER = "before_test_iter"
    AFTER_TEST_ITER = "after_test_iter"
    BEFORE_SAVE_CHECKPOINT = "before_save_checkpoint"
    AFTER_LOAD_CHECKPOINT = "after_load_checkpoint"

    def __str__(self) -> str:
        return self.value


EVENTS: tuple[str, ...] = tuple(event.value for event in Event)
"""The event names, in order (what a hook method must be called)."""


class RunView(Protocol):
    """What a hook sees of the run: the parts, the position, and the few actions a hook may take."""

    @property
    def cfg(self) -> RunnerConfig: ...
    @property
    def model(self) -> nn.Module: ...
    @property
    def work_dir(self) -> Path: ...
    @property
    def logger(self) -> RunLogger: ...
    @property
    def visualizer(self) -> Visualizer:
        """Log values of your own: ``runner.visualizer.add_scalars({...}, step=...)``."""
        ...

    @property
    def optim_wrapper(self) -> AnyOptimWrapper | None: ...
    @property
    def train_dataloader(self) -> DataLoader[Any] | None: ...
    @property
    def val_evaluator(self) -> Evaluator | None: ...
    @property
    def test_evaluator(self) -> Evaluator | None: ...
    @property
    def epoch(self) -> int:
        """Epochs finished (the one running is ``epoch + 1``)."""
        ...

    @property
    def iter(self) -> int:
        """Training iterations finished."""
        ...

    @property
    def inner_iter(self) -> int:
        """Batches finished in the current epoch."""
        ...

    @property
    def max_epochs(self) -> int: ...
    @property
    def max_iters(self) -> int: ...
    @property
    def iters_per_epoch(self) -> int: ...
    @property
    def hooks(self) -> HookList: ...

    def request_stop(self) -> None:
        """End training after the current epoch (epoch-based) or iteration (iteration-based)."""
        ...

    def save_checkpoint(
        self,
        filename: str,
        *,
        directory: Path | None = None,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        pointer: bool = True,
        position: tuple[int, int, int] | None = None,
        extra_meta: Mapping[str, Any] | None = None,
    ) -> Path: ...

    def publish_checkpoint(self, path: Path, keys: list[str]) -> Path: ...


class Hook:
    """Base class of hooks. Override the events you need; the others cost nothing."""

    priority: int | str = Priority.NORMAL

    def before_run(self, runner: RunView) -> None: ...
    def after_run(self, runner: RunView) -> None: ...
    def before_train(self, runner: RunView) -> None: ...
    def after_train(self, runner: RunView) -> None: ...
    def before_train_epoch(self, runner: RunView) -> None: ...
    def after_train_epoch(self, runner: RunView) -> None: ...
    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None: ...
    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None: ...
    def before_val(self, runner: RunView) -> None: ...
    def after_val(self, runner: RunView) -> None: ...
    def before_val_epoch(self, runner: RunView) -> None: ...
    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None: ...
    def before_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None: ...
    def after_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...
    def before_test(self, runner: RunView) -> None: ...
    def after_test(self, runner: RunView) -> None: ...
    def before_test_epoch(self, runner: RunView) -> None: ...
    def after_test_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None: ...
    def before_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None: ...
    def after_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...
    def before_save_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None: ...
    def after_load_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What this hook needs to continue after a resume (saved in checkpoints); none by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def events(self) -> set[Event]:
        """The events this hook handles: by default, the methods its class overrides."""
        return {event for event in Event if getattr(type(self), event.value) is not getattr(Hook, event.value)}

    @property
    def priority_value(self) -> int:
        return Priority.of(self.priority)


_F = Callable[..., None]


def _handlers(hooks: Sequence[Hook], event: Event) -> tuple[_F, ...]:
    return tuple(getattr(hook, event.value) for hook in hooks if event in hook.events())


class HookList:
    """The hooks of a run, sorted by priority (stable), with one prebuilt tuple of handlers per event:
    an event no hook handles costs one empty loop."""

    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        self.hooks: list[Hook] = []
        self._handlers: dict[Event, tuple[_F, ...]] = {}
        self.add(*hooks)

    def add(self, *hooks: Hook) -> None:
        """Add hooks (MMEngine's ``register_hook``); the dispatch tables are rebuilt."""
        self.hooks = sorted([*self.hooks, *hooks], key=lambda h: h.priority_value)
        self._handlers = {event: _handlers(self.hooks, event) for event in Event}
        table = self._handlers
        self.before_train_iter_handlers = table[Event.BEFORE_TRAIN_ITER]
        """The handlers of ``before_train_iter``, in order: the train loops call them directly."""
        self.after_train_iter_handlers = table[Event.AFTER_TRAIN_ITER]
        """The handlers of ``after_train_iter``, in order: the train loops call them directly."""
        self._before_val_iter = table[Event.BEFORE_VAL_ITER]
        self._after_val_iter = table[Event.AFTER_VAL_ITER]
        self._before_test_iter = table[Event.BEFORE_TEST_ITER]
        self._after_test_iter = table[Event.AFTER_TEST_ITER]

    def order(self) -> dict[str, list[str]]:
        """Per event, the names of the hooks called, in order (logged at start)."""
        return {
            event.value: [type(fn.__self__).__name__ for fn in handlers if hasattr(fn, "__self__")]
            for event, handlers in self._handlers.items()
            if handlers
        }

    def _run(self, event: Event, *args: Any) -> None:
        for fn in self._handlers[event]:
            fn(*args)

    # -- per run, per loop and per epoch ---------------------------------------------------------
    def before_run(self, runner: RunView) -> None:
        self._run(Event.BEFORE_RUN, runner)

    def after_run(self, runner: RunView) -> None:
        self._run(Event.AFTER_RUN, runner)

    def before_train(self, runner: RunView) -> None:
        self._run(Event.BEFORE_TRAIN, runner)

    def after_train(self, runner: RunView) -> None:
        self._run(Event.AFTER_TRAIN, runner)

    def before_train_epoch(self, runner: RunView) -> None:
        self._run(Event.BEFORE_TRAIN_EPOCH, runner)

    def after_train_epoch(self, runner: RunView) -> None:
        self._run(Event.AFTER_TRAIN_EPOCH, runner)

    def before_val(self, runner: RunView) -> None:
        self._run(Event.BEFORE_VAL, runner)

    def after_val(self, runner: RunView) -> None:
        self._run(Event.AFTER_VAL, runner)

    def before_val_epoch(self, runner: RunView) -> None:
        self._run(Event.BEFORE_VAL_EPOCH, runner)

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float]) -> None:
        self._run(Event.AFTER_VAL_EPOCH, runner, metrics)

    def before_test(self, runner: RunView) -> None:
        self._run(Event.BEFORE_TEST, runner)

    def after_test(self, runner: RunView) -> None:
        self._run(Event.AFTER_TEST, runner)

    def before_test_epoch(self, runner: RunView) -> None:
        self._run(Event.BEFORE_TEST_EPOCH, runner)

    def after_test_epoch(self, runner: RunView, metrics: Mapping[str, float]) -> None:
        self._run(Event.AFTER_TEST_EPOCH, runner, metrics)

    def before_save_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        self._run(Event.BEFORE_SAVE_CHECKPOINT, runner, checkpoint)

    def after_load_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        self._run(Event.AFTER_LOAD_CHECKPOINT, runner, checkpoint)

    # -- per iteration: a direct loop over a prebuilt tuple, nothing else ---------------------------
    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any) -> None:
        for fn in self.before_train_iter_handlers:
            fn(runner, batch_idx, data_batch)

    def after_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any, outputs: Mapping[str, Tensor]) -> None:
        for fn in self.after_train_iter_handlers:
            fn(runner, batch_idx, data_batch, outputs)

    def before_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any) -> None:
        for fn in self._before_val_iter:
            fn(runner, batch_idx, data_batch)

    def after_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        for fn in self._after_val_iter:
            fn(runner, batch_idx, data_batch, outputs)

    def before_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any) -> None:
        for fn in self._before_test_iter:
            fn(runner, batch_idx, data_batch)

    def after_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        for fn in self._after_test_iter:
            fn(runner, batch_idx, data_batch, outputs)
