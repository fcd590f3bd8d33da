"""Stand-ins: loading a checkpoint written by another program (MMEngine) without running its code.

Such a checkpoint pickles objects of classes typedrunner never imports: MMEngine's ``message_hub``
holds ``mmengine.logging.HistoryBuffer`` objects (with numpy arrays and ``getattr``-pickled methods
inside), a scheduler's state a ``collections.Counter``. ``torch.load(weights_only=True)`` refuses
every global it does not know. Here each such global, as ``torch.serialization``
``.get_unsafe_globals_in_checkpoint`` lists it from the file's pickle (read, never run), is
allowlisted under a **stand-in**: a class of our own, registered with
``torch.serialization.safe_globals`` under the original's name, that only stores what the file
gives it (constructor arguments, state). No original class is imported and no original function
(``os.system`` as much as ``HistoryBuffer``) is ever called, so the load stays data-only; what the
stand-ins hold is then dropped or reported, never used as the original would be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

__all__ = ["StandIn", "find_stand_ins", "stand_ins_for"]


class StandIn:
    """What the checkpoint said about one object of a class (or one call of a function) it names:
    ``args``/``kwargs`` it was constructed with, and its pickled ``state``. Nothing else."""

    original: ClassVar[str] = "?"
    """The global's full name in the checkpoint (``mmengine.logging.history_buffer.HistoryBuffer``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.original}>"


def stand_ins_for(names: Iterable[str]) -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """One stand-in class per global name, paired with the name for ``torch.serialization.safe_globals``."""
    return [
        (type(name.rpartition(".")[2] or name, (StandIn,), {"original": name, "__module__": __name__}), name)
        for name in sorted(set(names))
    ]


def find_stand_ins(value: Any, limit: int = 10_000) -> set[str]:
    """The original names of the stand-ins inside ``value`` (dicts, lists, tuples; a bounded walk)."""
    found: set[str] = set()
    stack = [value]
    seen = 0
    while stack and seen < limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, StandIn):
            found.add(item.original)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return found
