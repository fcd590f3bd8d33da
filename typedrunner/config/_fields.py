"""Field shapes shared by the schemas: "a typed config or a generic component".

A field that takes ``{type: Name, ...}`` is written as one explicit tagged union, so that mypy and
pydantic read the same type::

    _Optimizers = Annotated[Adam, Tag("<Adam>")] | ... | Annotated[Lazy[Any], component, Tag(GENERIC)]
    OptimizerConfig = Annotated[_Optimizers, Discriminator(by_type(_Optimizers))]

``by_type`` picks the typed member whose ``type`` is given, and the generic, signature-checked
``Lazy`` member otherwise (any other registered name, dotted path or class).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_args

from pydantic import Tag

from typedrunner.config.base import ConfigModel

__all__ = ["GENERIC", "by_type"]

GENERIC = "<component>"
"""The tag of the generic component member of a ``by_type`` union."""


def by_type(members: object) -> Callable[[Any], str]:
    """The discriminator of ``members``, a union of typed schemas tagged ``<Name>`` (``Name`` being
    their ``type``) and a generic member tagged ``GENERIC``: the tags are read from the union itself."""
    names = frozenset(
        meta.tag[1:-1]
        for member in get_args(members)
        for meta in getattr(member, "__metadata__", ())
        if isinstance(meta, Tag) and meta.tag != GENERIC
    )
    if not names:
        raise TypeError(f"by_type needs a union of members tagged <Name>, not {members!r}")

    def pick(value: Any) -> str:
        if isinstance(value, ConfigModel):
            name = getattr(value, "type", None)
            return f"<{name}>" if name in names else GENERIC
        if isinstance(value, Mapping):
            name = value.get("type")
            if isinstance(name, type) and name.__module__.startswith("torch."):
                name = name.__name__  # MMEngine's ``type=torch.optim.Adam``: same as 'Adam'
            return f"<{name}>" if isinstance(name, str) and name in names else GENERIC
        return GENERIC

    return pick
