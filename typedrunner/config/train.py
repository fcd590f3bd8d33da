"""``train_cfg`` / ``val_cfg`` / ``test_cfg``: the loops.

``train_cfg`` is one of MMEngine's two training loops, told apart by ``type``, else by ``by_epoch``,
else by which counter is given: ``EpochBasedTrainLoop`` (``max_epochs``, the default) or
``IterBasedTrainLoop`` (``by_epoch: false``, ``max_iters``). Python configs write either class, or
``TrainLoop(...)``, which picks the same way.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, overload

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from typedrunner.config.base import TypedComponent

__all__ = ["EpochBasedTrainLoop", "IterBasedTrainLoop", "TestLoop", "TrainLoop", "TrainLoopConfig", "ValLoop"]

_EPOCH, _ITER = "EpochBasedTrainLoop", "IterBasedTrainLoop"
_Step = Annotated[int, Field(ge=1)]

# Settings that the single TrainLoop schema of earlier versions took as null for "not given".
_NULL_MEANS_UNSET = ("type", "by_epoch", "max_epochs", "max_iters", "val_interval", "dynamic_intervals")


def _kind_of(data: Mapping[str, Any]) -> Any:
    kind = data.get("type")
    return kind.__name__ if isinstance(kind, type) else kind  # MMEngine may give the class itself


def _flag(value: Any) -> bool | None:
    """``by_epoch`` as given (a bool, or 0/1), None when not given or not a flag."""
    if value is None or isinstance(value, str) or value not in (True, False):
        return None
    return bool(value)


class _TrainLoop(TypedComponent):
    """What both training loops share: when validation runs."""

    _counter: ClassVar[str]
    """The name of the loop's length setting."""
    _other_counter: ClassVar[str]
    _mixed_counters: ClassVar[str]
    """The message for the other loop's counter given to this one."""
    _missing_counter: ClassVar[str]
    _by_epoch: ClassVar[bool]

    val_begin: int = Field(default=1, ge=1)
    """First epoch (or iteration) after which validation runs."""
    dynamic_intervals: list[tuple[_Step, _Step]] = Field(default_factory=list)
    """``[(epoch or iteration, interval), ...]``: from that point on, validate every ``interval``."""

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        """One message for a mix of the two loops' settings, at ``train_cfg`` itself."""
        if not isinstance(data, Mapping):
            return data
        data = {k: v for k, v in data.items() if not (v is None and k in _NULL_MEANS_UNSET)}
        if "max_epochs" in data and "max_iters" in data:
            raise ValueError("give max_epochs (epoch-based) or max_iters (iteration-based, by_epoch: false), not both")
        by_epoch = _flag(data.get("by_epoch"))
        if by_epoch is not None and by_epoch != cls._by_epoch:
            kind = _kind_of(data) if "type" in data else cls.__name__
            raise ValueError(f"type {kind} contradicts by_epoch={by_epoch}; give one of them")
        if cls._other_counter in data:
            raise ValueError(cls._mixed_counters)
        if cls._counter not in data and set(data) <= set(cls.model_fields):
            raise ValueError(cls._missing_counter)  # (an unknown key may be its misspelling: reported as such)
        return data

    @property
    @abstractmethod
    def length(self) -> int:
        """The run's length in its own unit (epochs or iterations)."""

    @model_validator(mode="after")
    def _validation_runs(self) -> _TrainLoop:
        if self.val_begin > self.length:
            raise ValueError(
                f"val_begin={self.val_begin} is after {self._counter}={self.length}: validation would never run; "
                f"set val_begin <= {self.length}"
            )
        return self


class EpochBasedTrainLoop(_TrainLoop):
    """``train_cfg`` counted in epochs (MMEngine's ``EpochBasedTrainLoop``): ``max_epochs``, with
    ``val_begin`` / ``val_interval`` in epochs."""

    _counter = "max_epochs"
    _other_counter = "max_iters"
    _mixed_counters = "max_iters is for by_epoch: false; an epoch-based loop counts max_epochs"
    _missing_counter = "an epoch-based loop needs max_epochs (or set by_epoch: false and max_iters)"
    _by_epoch = True

    type: Literal["EpochBasedTrainLoop"] = "EpochBasedTrainLoop"
    """Loop kind (MMEngine's name); implied by ``by_epoch`` when omitted."""
    by_epoch: Literal[True] = True
    """Training is counted in epochs (``by_epoch: false`` is ``IterBasedTrainLoop``)."""
    max_epochs: int = Field(ge=1)
    """Number of epochs to train (epoch-based loop)."""
    val_interval: int = Field(default=1, ge=1)
    """Validate every this many epochs."""

    @property
    def length(self) -> int:
        """The run's length in epochs."""
        return self.max_epochs


class IterBasedTrainLoop(_TrainLoop):
    """``train_cfg`` counted in iterations (MMEngine's ``IterBasedTrainLoop``, ``by_epoch: false``):
    ``max_iters``, with ``val_begin`` / ``val_interval`` in iterations."""

    _counter = "max_iters"
    _other_counter = "max_epochs"
    _mixed_counters = "max_epochs is for by_epoch: true; an iteration-based loop counts max_iters"
    _missing_counter = "an iteration-based loop (by_epoch: false) needs max_iters"
    _by_epoch = False

    type: Literal["IterBasedTrainLoop"] = "IterBasedTrainLoop"
    """Loop kind (MMEngine's name); implied by ``by_epoch: false`` or ``max_iters`` when omitted."""
    by_epoch: Literal[False] = False
    """Training is counted in iterations (``by_epoch: true`` is ``EpochBasedTrainLoop``)."""
    max_iters: int = Field(ge=1)
    """Number of iterations to train (iteration-based loop)."""
    val_interval: int = Field(default=1000, ge=1)
    """Validate every this many iterations."""

    @property
    def length(self) -> int:
        """The run's length in iterations."""
        return self.max_iters


def _pick_loop(value: Any) -> str:
    """By ``type`` if given, else ``by_epoch`` if given, else iteration-based iff ``max_iters`` is given."""
    if isinstance(value, (EpochBasedTrainLoop, IterBasedTrainLoop)):
        return f"<{value.type}>"
    if not isinstance(value, Mapping):
        return f"<{_EPOCH}>"  # reported as "a valid dictionary or instance of EpochBasedTrainLoop"
    kind = _kind_of(value)
    if kind in (_EPOCH, _ITER):
        return f"<{kind}>"
    by_epoch = _flag(value.get("by_epoch"))
    if by_epoch is not None:
        return f"<{_EPOCH if by_epoch else _ITER}>"
    return f"<{_ITER}>" if value.get("max_iters") is not None else f"<{_EPOCH}>"


TrainLoopConfig = Annotated[
    Annotated[EpochBasedTrainLoop, Tag(f"<{_EPOCH}>")] | Annotated[IterBasedTrainLoop, Tag(f"<{_ITER}>")],
    Discriminator(_pick_loop),
]
"""``train_cfg``: an epoch-based or an iteration-based training loop."""

_TRAIN_LOOP: TypeAdapter[EpochBasedTrainLoop | IterBasedTrainLoop] = TypeAdapter(TrainLoopConfig)


@overload
def TrainLoop(
    *,
    type: Literal["EpochBasedTrainLoop"] = ...,
    by_epoch: Literal[True] = ...,
    max_epochs: int,
    val_begin: int = ...,
    val_interval: int = ...,
    dynamic_intervals: Sequence[tuple[int, int]] = ...,
) -> EpochBasedTrainLoop: ...
@overload
def TrainLoop(
    *,
    type: Literal["IterBasedTrainLoop"] = ...,
    by_epoch: Literal[False] = ...,
    max_iters: int,
    val_begin: int = ...,
    val_interval: int = ...,
    dynamic_intervals: Sequence[tuple[int, int]] = ...,
) -> IterBasedTrainLoop: ...
def TrainLoop(**settings: Any) -> EpochBasedTrainLoop | IterBasedTrainLoop:
    """``train_cfg`` in a Python config: ``TrainLoop(max_epochs=10, val_begin=2)`` is an
    ``EpochBasedTrainLoop``, ``TrainLoop(by_epoch=False, max_iters=1000)`` an ``IterBasedTrainLoop``.

    Validated as ``train_cfg`` is (a ``pydantic.ValidationError`` names what is wrong); the overloads
    let mypy check the settings. ``settings`` go to that validation whole: an unknown one is an error.
    """
    return _TRAIN_LOOP.validate_python(settings)


class ValLoop(TypedComponent):
    """``val_cfg``: the validation loop."""

    type: Literal["ValLoop"] = "ValLoop"
    """Loop kind."""
    fp16: bool = False
    """Run the model under float16 autocast (needs CUDA)."""


class TestLoop(TypedComponent):
    """``test_cfg``: the test loop."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    type: Literal["TestLoop"] = "TestLoop"
    """Loop kind."""
    fp16: bool = False
    """Run the model under float16 autocast (needs CUDA)."""
