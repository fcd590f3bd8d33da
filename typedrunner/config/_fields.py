"""Field shapes shared by the schemas: "a typed config or a generic component", "a config or a built object"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from typedrunner.config.base import ConfigModel
from typedrunner.lazy import Component, Lazy

__all__ = ["typed_or_component"]

_GENERIC = "<component>"


def typed_or_component(
    typed: Mapping[str, type[ConfigModel]], component: Component, default_type: str | None = None
) -> Any:
    """A field that validates ``{type: Name, ...}`` into a typed schema when ``Name`` has one,
    and into a signature-checked ``Lazy`` otherwise (any other registered name, dotted path or class).
    """

    def pick(value: Any) -> str:
        if isinstance(value, ConfigModel):
            name = getattr(value, "type", None)
            return f"<{name}>" if name in typed else _GENERIC
        if isinstance(value, Mapping):
            name = value.get("type", default_type)
            if isinstance(name, type) and name.__module__.startswith("torch."):
                name = name.__name__  # MMEngine's ``type=torch.optim.Adam``: same as 'Adam'
            return f"<{name}>" if isinstance(name, str) and name in typed else _GENERIC
        return _GENERIC

    members = [Annotated[cls, Tag(f"<{name}>")] for name, cls in typed.items()]
    members.append(Annotated[Lazy[Any], component, Tag(_GENERIC)])
    return Annotated[Union[tuple(members)], Discriminator(pick)]  # noqa: UP007
