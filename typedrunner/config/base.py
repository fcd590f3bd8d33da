"""The base of every config schema, and the conversion of pydantic errors into a ``ConfigError``."""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from typedrunner.errors import ConfigError, Problem, format_path
from typedrunner.registry.lazy import name_unknown_keys

__all__ = ["ConfigModel", "TypedComponent", "not_supported_yet", "problems_from", "to_config_error"]

_T = TypeVar("_T")


class ConfigModel(BaseModel):
    """Base of all schemas: unknown keys are errors (with a did-you-mean), docstrings describe fields."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
        arbitrary_types_allowed=True,
        frozen=False,
        protected_namespaces=(),
    )

    @field_validator("*", mode="before")
    @classmethod
    def _bool_is_not_a_count(cls, value: Any, info: ValidationInfo) -> Any:
        """``max_epochs: true`` is a mistake, not 1: a field that takes integers (and not booleans)
        refuses a boolean, at any depth of its lists and tuples (``milestones: [true]``). YAML and
        command-line integers are ints, and still validate."""
        if isinstance(value, (bool, list, tuple)) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _bool_in_int(field.annotation, value):
                raise PydanticCustomError("int_type", "expected an integer, not a boolean")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _suggest_known_keys(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as e:
            if not any(err["type"] == "extra_forbidden" and len(err["loc"]) == 1 for err in e.errors()):
                raise
            names = [f.alias or name for name, f in cls.model_fields.items()]
            raise name_unknown_keys(e, names, list_when_unmatched=True) from None


class TypedComponent(ConfigModel):
    """A component with its own schema (``{type: Adam, lr: ...}``): ``type`` is a fixed name.

    MMEngine configs may give the class itself (``type=torch.optim.Adam``); it is read as its name.
    """

    @model_validator(mode="before")
    @classmethod
    def _class_to_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("type"), type):
            return {**data, "type": data["type"].__name__}
        return data


def _bool_in_int(annotation: Any, value: Any) -> bool:
    """Whether ``value`` is, or holds in its lists and tuples, a boolean where ``annotation`` takes
    an integer but no boolean."""
    if isinstance(value, bool):
        return _takes_int_not_bool(annotation)
    if not isinstance(value, (list, tuple)):
        return False
    items = _item_types(annotation)
    if not items:
        return False
    return any(_bool_in_int(items[min(i, len(items) - 1)], v) for i, v in enumerate(value))


@functools.cache
def _members(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (Annotated and Optional unwrapped), or the type itself."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(m for arg in get_args(annotation) for m in _members(arg))
    return (annotation,)


@functools.cache
def _takes_int_not_bool(annotation: Any) -> bool:
    members = _members(annotation)
    if any(m is bool or m is Any for m in members):
        return False
    if any(get_origin(m) is Literal and any(isinstance(a, bool) for a in get_args(m)) for m in members):
        return False
    return int in members


@functools.cache
def _item_types(annotation: Any) -> tuple[Any, ...]:
    """The element types of the list and tuple members of ``annotation`` (``tuple[int, int]``: both)."""
    found: list[Any] = []
    for member in _members(annotation):
        if get_origin(member) in (list, tuple, Sequence):
            found += [a for a in get_args(member) if a is not Ellipsis]
    return tuple(found)


def not_supported_yet(default: Any, feature: str) -> Any:
    """An ``AfterValidator`` that accepts only ``default``: the setting exists but is not built yet."""

    def check(value: _T) -> _T:
        if value != default:
            message = f"not supported yet: {feature} (only {default!r} is accepted for now)"
            raise PydanticCustomError("not_supported", message)  # pyright: ignore[reportArgumentType]  # no context: taken literally, braces and all
        return value

    return AfterValidator(check)


def problems_from(error: ValidationError, data: Any = None, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """One ``Problem`` per pydantic error, with the dotted path (union tags removed) and a message."""
    problems = []
    for err in error.errors(include_url=False):
        loc = prefix + _real_path(tuple(err["loc"]), data)
        message = err["msg"]
        if err["type"] == "missing":
            message = "required but not given"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        value = None if err["type"] == "missing" else err.get("input")
        problems.append(Problem(path=format_path(loc), message=message, value=value))
    return _dedupe(problems)


def to_config_error(error: ValidationError, data: Any = None) -> ConfigError:
    return ConfigError(problems_from(error, data))


_SCALAR_TAGS = {"int", "float", "str", "bool", "none", "is-instance", "callable"}


def _real_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """Pydantic puts union member tags into ``loc``; keep only the parts that exist in the input."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(part, str) and part.startswith("<"):  # our own union tags: <config>, <Adam>, ...
            continue
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
                out.append(part)
            elif last and not _is_tag(part):
                out.append(part)
            continue
        if isinstance(node, (list, tuple)) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            out.append(part)
            continue
        if isinstance(node, BaseModel) and isinstance(part, str) and part in type(node).model_fields:
            node = getattr(node, part)
            out.append(part)
            continue
        if _is_tag(part) or (isinstance(part, str) and part[:1].isupper()):
            continue
        node = None
        out.append(part)
    return tuple(out)


def _is_tag(part: str | int) -> bool:
    """A pydantic union member's label in an error location (``bool``, ``literal['auto']``, ``[key]``)."""
    return isinstance(part, str) and (part.startswith("<") or "[" in part or part in _SCALAR_TAGS)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
