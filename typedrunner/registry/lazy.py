"""``Lazy[T]``: a component described but not yet built, validated against its constructor.

``lazy(MyModel, layers=2)`` is checked by mypy through ``ParamSpec`` (a wrong keyword or type is a
type error) and at runtime against ``MyModel.__init__``'s signature and annotations. A YAML mapping
``{type: MyModel, layers: 2}`` validates into the same ``Lazy`` object, so both styles give equal
configs. ``Component(registry)`` is the pydantic annotation that does the validation for a field.
"""

from __future__ import annotations

import collections.abc
import contextlib
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

import pydantic
from pydantic import ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError, core_schema

from typedrunner.errors import did_you_mean
from typedrunner.registry.registries import CUSTOM_IMPORTS_CONTEXT, Registry, import_object

__all__ = [
    "Component",
    "Lazy",
    "component_json_schemas",
    "lazy",
    "loaded_class",
    "name_unknown_keys",
    "plain_value",
]

_P = ParamSpec("_P")
_T_co = TypeVar("_T_co", covariant=True)
_T = TypeVar("_T")


class Lazy(Generic[_T_co]):
    """A recipe for ``target(**kwargs)``: built by :meth:`build`, compared and serialised as data."""

    __slots__ = ("kwargs", "meta", "target")

    def __init__(
        self,
        target: Callable[..., _T_co],
        kwargs: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.meta: dict[str, Any] = dict(meta or {})
        """Settings typedrunner itself reads (e.g. a scheduler's ``by_epoch``), not passed to target."""

    def build(self, *args: Any, **extra: Any) -> _T_co:
        """Call the target with the configured arguments (plus those only known at build time). A
        target with a ``config_schema`` (a built-in hook) gets its validated schema object instead."""
        schema = schema_of(self.target)
        if schema is not None:
            return self.target(schema.model_validate(self.kwargs), *args, **extra)
        return self.target(*args, **self.kwargs, **extra)

    @property
    def name(self) -> str:
        return str(getattr(self.target, "__qualname__", repr(self.target)))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Lazy)
            and self.target is other.target
            and self.kwargs == other.kwargs
            and self.meta == other.meta
        )

    def __hash__(self) -> int:
        return hash(self.target)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.kwargs, **self.meta}.items())
        return f"lazy({self.name}{', ' if args else ''}{args})"


def lazy(target: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Lazy[_T]:
    """Describe ``target(*args, **kwargs)`` without calling it; mypy checks the arguments."""
    if args:
        bound = inspect.signature(target).bind_partial(*args, **kwargs)
        return Lazy(target, bound.arguments)
    return Lazy(target, kwargs)


def plain_value(value: Any) -> Any:
    """A JSON-friendly rendering of a config value (classes as dotted paths, objects as a tag)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Lazy):
        return {"type": _qualified(value.target), **{k: plain_value(v) for k, v in value.kwargs.items()}}
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if inspect.isclass(value) or inspect.isfunction(value):
        return _qualified(value)
    return f"<built {type(value).__qualname__}>"


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


# --------------------------------------------------------------------------------------------
# Validation against a constructor's signature (or the schema a built-in class is built from)
# --------------------------------------------------------------------------------------------
_ALIAS_PREFIX = "arg_"


def schema_of(target: Any) -> type[pydantic.BaseModel] | None:
    """The schema a class is built from (its ``config_schema``: the defaults live there), if any."""
    schema = getattr(target, "config_schema", None)
    return schema if inspect.isclass(schema) and issubclass(schema, pydantic.BaseModel) else None


@functools.lru_cache(maxsize=64)
def _schema_model(schema: type[pydantic.BaseModel], meta: tuple[tuple[str, Any, Any], ...]) -> type[pydantic.BaseModel]:
    """``schema`` plus typedrunner's own keys (``priority``), for a class built from its schema."""
    fields: dict[str, Any] = {
        _ALIAS_PREFIX + name: (annotation, Field(default, alias=name)) for name, annotation, default in meta
    }
    model: type[pydantic.BaseModel] = pydantic.create_model(f"{schema.__name__}Arguments", __base__=schema, **fields)
    return model


@functools.lru_cache(maxsize=256)
def _signature_model(
    target: Callable[..., Any], exclude: tuple[str, ...], meta: tuple[tuple[str, Any, Any], ...]
) -> type[pydantic.BaseModel]:
    """A pydantic model of ``target``'s keyword arguments, from its signature and annotations."""
    func = target.__init__ if inspect.isclass(target) else target
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        signature = inspect.Signature()
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: fall back to unchecked arguments
        hints = {}
    fields: dict[str, Any] = {}
    takes_var_kwargs = False
    for param in signature.parameters.values():
        if param.name in exclude or param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            takes_var_kwargs = True
            continue
        annotation = _usable_annotation(hints.get(param.name, Any))
        default = ... if param.default is param.empty else param.default
        fields[_ALIAS_PREFIX + param.name] = (annotation, Field(default, alias=param.name))
    for name, annotation, default in meta:
        fields[_ALIAS_PREFIX + name] = (annotation, Field(default, alias=name))
    config = ConfigDict(
        extra="allow" if takes_var_kwargs else "forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
    )
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{getattr(target, '__name__', 'target')}Arguments", __config__=config, **fields
    )
    return model


@functools.lru_cache(maxsize=256)
def _var_keyword_check(target: Callable[..., Any]) -> pydantic.TypeAdapter[Any] | None:
    """How a value that only ``target``'s ``**kwargs`` takes is checked: against the annotation of
    ``**kwargs`` (``StackDataset(**kwargs: Dataset)``), or None when it has none that pydantic can
    check (then only plain data, with no ``{type: ...}`` mapping inside, is accepted)."""
    func = target.__init__ if inspect.isclass(target) else target
    try:
        params = inspect.signature(target).parameters.values()
        hints = typing.get_type_hints(func)
    except Exception:
        return None
    name = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
    annotation = _usable_annotation(hints.get(name, Any)) if name is not None else Any
    if annotation is Any:
        return None
    return pydantic.TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))


def _unchecked_values(target: Callable[..., Any], extra: Mapping[str, Any]) -> list[InitErrorDetails]:
    """The problems of the values that only ``target``'s ``**kwargs`` takes: each is checked against
    the ``**kwargs`` annotation; without one it must be plain data. A string is never turned into an
    object, and a ``{type: ...}`` mapping in there is not built: it is refused, never passed on."""
    check = _var_keyword_check(target)
    details: list[InitErrorDetails] = []
    for key, value in extra.items():
        message = None
        if check is not None:
            try:
                check.validate_python(value)
            except ValidationError as e:
                message = (
                    f"not a named argument of {_qualified(target)}, and its **kwargs refuse it: {e.errors()[0]['msg']}"
                )
        elif _names_a_type(value):
            message = (
                f"a {{type: ...}} mapping under {_qualified(target)}'s **kwargs is not built (typedrunner builds "
                "only the components the config schema names): pass it to a named, annotated argument"
            )
        if message is not None:
            details.append({"type": PydanticCustomError("unchecked_argument", message), "loc": (key,), "input": value})  # pyright: ignore[reportArgumentType]
    return details


def _names_a_type(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "type" in value or any(_names_a_type(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_names_a_type(v) for v in value)
    return False


def _usable_annotation(annotation: Any) -> Any:
    """``annotation`` if pydantic can check it, else ``Any`` (never refuse a valid user class).

    ``Iterable[X]`` is checked as ``list[X]`` (pydantic would keep a one-shot iterator, checked only
    when consumed: at build time, and once); an iterator or generator argument is not checked."""
    origin = typing.get_origin(annotation)
    if origin in (collections.abc.Iterable, collections.abc.Collection):
        (item,) = typing.get_args(annotation) or (Any,)
        annotation = list[item]  # type: ignore[valid-type]
    elif origin in (collections.abc.Iterator, collections.abc.Generator):
        return Any
    try:
        pydantic.TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:
        return Any
    return annotation


def _parameter_names(target: Callable[..., Any], exclude: tuple[str, ...]) -> list[str]:
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.name not in exclude and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


ComponentJsonSchema = Callable[["Component", GetJsonSchemaHandler], JsonSchemaValue]
"""Writes a component field's JSON Schema (given the field's ``Component`` and pydantic's handler)."""

_JSON_SCHEMA: ContextVar[ComponentJsonSchema | None] = ContextVar("typedrunner_component_json_schema", default=None)


@contextlib.contextmanager
def component_json_schemas(write: ComponentJsonSchema) -> Iterator[None]:
    """Within the block, each component field's JSON Schema is ``write(component, handler)``'s (the
    editor schemas' export: one closed branch per known ``type``) instead of the open one."""
    token = _JSON_SCHEMA.set(write)
    try:
        yield
    finally:
        _JSON_SCHEMA.reset(token)


@dataclass(frozen=True)
class Component:
    """Pydantic annotation: the field holds a ``Lazy`` built from ``{type: ..., **kwargs}``.

    ``registry`` resolves ``type``; ``exclude`` names constructor arguments supplied at build time
    (an optimizer's ``params``); ``meta`` adds typedrunner's own keys ``(name, annotation, default)``;
    ``instance_of`` (a dotted class path) also accepts an already built object of that class.
    """

    registry: Registry
    exclude: tuple[str, ...] = ()
    meta: tuple[tuple[str, Any, Any], ...] = ()
    instance_of: str | tuple[str, ...] | None = None
    subclass_of: str | tuple[str, ...] | None = None
    """A class ``type`` must subclass one of these (dotted paths): checked before anything is built."""
    check: Callable[[Lazy[Any]], None] | None = None
    """Run on the validated ``Lazy``; a ``ValueError`` it raises is reported at the component's path."""
    shape: Callable[[Any], str | None] | None = None
    """A structural check (a ``Protocol``'s methods) of a ``type``'s class (before its arguments, at
    ``type``), of a ``lazy(...)`` target, and of a built object that is no ``instance_of`` kind:
    ``None`` passes, a message refuses."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            self._validate_in_context,
            serialization=core_schema.plain_serializer_function_ser_schema(self.serialize, info_arg=True),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        write = _JSON_SCHEMA.get()
        if write is not None:
            return write(self, handler)
        return {
            "type": "object",
            "properties": {
                "type": {
                    "type": "string",
                    "description": f"a registered {self.registry.name} name or a dotted import path",
                }
            },
            "required": ["type"],
            "additionalProperties": True,
        }

    # -- validation ----------------------------------------------------------------------------
    def _validate_in_context(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        context = info.context if isinstance(info.context, Mapping) else {}
        imports = context.get(CUSTOM_IMPORTS_CONTEXT, ())
        return self.validate(value, imports if isinstance(imports, frozenset) else frozenset())

    def validate(self, value: Any, custom_imports: frozenset[str] = frozenset()) -> Any:
        if isinstance(value, Lazy):
            refusal = self.shape(value.target) if self.shape is not None and inspect.isclass(value.target) else None
            if refusal is not None:
                raise PydanticCustomError("component_type", refusal)  # pyright: ignore[reportArgumentType]
            return self._check_arguments(value.target, {**value.kwargs, **value.meta})
        if isinstance(value, Mapping):
            if "type" not in value:
                raise _error(("type",), "missing_type", f"a {self.registry.name} needs a 'type' key", value)
            try:
                target = self.registry.resolve(value["type"], custom_imports)
            except LookupError as e:
                raise _error(("type",), "unknown_type", str(e), value["type"]) from None
            bases = (self.subclass_of,) if isinstance(self.subclass_of, str) else tuple(self.subclass_of or ())
            if bases and inspect.isclass(target) and not any(_is_subclass(target, base) for base in bases):
                names = " or ".join(b.rpartition(".")[2] for b in bases)
                message = f"{target.__module__}.{target.__qualname__} is not a {names} subclass"
                raise _error(("type",), "unknown_type", message, value["type"])
            refusal = self.shape(target) if self.shape is not None and inspect.isclass(target) else None
            if refusal is not None:
                raise _error(("type",), "unknown_type", refusal, value["type"])
            return self._check_arguments(target, {k: v for k, v in value.items() if k != "type"})
        kinds = (self.instance_of,) if isinstance(self.instance_of, str) else tuple(self.instance_of or ())
        if any(_is_instance(value, kind) for kind in kinds):
            return value
        if self.shape is not None and not isinstance(value, (str, int, float, bool, list, tuple)):
            refusal = self.shape(value)
            if refusal is None:
                return value
            raise PydanticCustomError("component_type", refusal)  # pyright: ignore[reportArgumentType]
        built = f", or a built {' or '.join(k.rpartition('.')[2] for k in kinds)}" if kinds else ""
        # formatted here: pydantic fills a template's {placeholders} but keeps doubled braces doubled
        message = f"expected a mapping with a 'type' key (e.g. {{type: Name, ...}}), a lazy(...) object{built}; got {type(value).__name__}"
        raise PydanticCustomError("component_type", message)  # pyright: ignore[reportArgumentType]

    def arguments_model(self, target: Callable[..., Any]) -> type[pydantic.BaseModel]:
        """The model ``{type: target, ...}``'s other keys are validated with: the schema ``target`` is
        built from, or its constructor's signature (minus ``exclude``), plus ``meta``."""
        schema = schema_of(target)
        if schema is None:
            return _signature_model(target, self.exclude, self.meta)
        return _schema_model(schema, self.meta)

    def _check_arguments(self, target: Any, kwargs: Mapping[str, Any]) -> Lazy[Any]:
        if not callable(target):
            raise _error(("type",), "unknown_type", f"{target!r} is not a class or function", target)
        schema = schema_of(target)
        model = self.arguments_model(target)
        try:
            validated = model.model_validate(dict(kwargs))
        except ValidationError as e:
            names = (
                _parameter_names(target, self.exclude)
                if schema is None
                else [n for n in schema.model_fields if n != "type"]
            ) + [m[0] for m in self.meta]
            raise name_unknown_keys(e, names, "unknown key (not an argument of the constructor)") from None
        fields = type(validated).model_fields
        values = {fields[f].alias or f: getattr(validated, f) for f in validated.model_fields_set if f in fields}
        extra = validated.model_extra or {}
        unchecked = _unchecked_values(target, extra) if extra and schema is None else []
        if unchecked:
            raise ValidationError.from_exception_data("component", unchecked)
        values.update(extra)
        meta_names = {m[0] for m in self.meta}
        meta = {m[0]: values.pop(m[0], m[2]) for m in self.meta}
        result: Lazy[Any] = Lazy(target, {k: v for k, v in values.items() if k not in meta_names}, meta)
        if self.check is not None:
            self.check(result)
        return result

    def serialize(self, value: Any, info: core_schema.SerializationInfo) -> Any:
        if isinstance(value, Lazy):
            out: dict[str, Any] = {"type": self.registry.name_of(value.target)}
            out.update(value.kwargs)
            out.update(value.meta)
            return plain_value(out) if info.mode == "json" else out
        return plain_value(value) if info.mode == "json" else value


def loaded_class(dotted: str) -> type[Any] | None:
    """The class at ``dotted`` if its package is already imported, else None: an object cannot be an
    instance (nor a class a subclass) of a class whose package was never imported, so a check never
    has to import torch."""
    if dotted.partition(".")[0] not in sys.modules:
        return None
    found = import_object(dotted)
    return found if isinstance(found, type) else None


def _is_instance(value: Any, dotted: str) -> bool:
    cls = loaded_class(dotted)
    return cls is not None and isinstance(value, cls)


def _is_subclass(cls: type[Any], dotted: str) -> bool:
    base = loaded_class(dotted)
    return base is not None and issubclass(cls, base)


def _error(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> ValidationError:
    details: InitErrorDetails = {
        "type": PydanticCustomError(kind, message),  # pyright: ignore[reportArgumentType]
        "loc": loc,
        "input": value,
    }
    return ValidationError.from_exception_data("component", [details])


def name_unknown_keys(
    error: ValidationError, names: list[str], label: str = "unknown key", list_when_unmatched: bool = False
) -> ValidationError:
    """``error`` with each unknown key (pydantic's ``extra_forbidden`` one level down) reported as
    ``label`` plus a did-you-mean against ``names`` (or, with ``list_when_unmatched``, the valid keys);
    every other error keeps its type and message."""
    details: list[InitErrorDetails] = []
    for err in error.errors():
        loc = tuple(err["loc"])
        kind, message = err["type"], err["msg"]
        if kind == "extra_forbidden" and len(loc) == 1:
            hint = did_you_mean(str(loc[0]), names)
            if not hint and list_when_unmatched:
                hint = f"; valid keys: {', '.join(names)}"
            kind, message = "unknown_key", f"{label}{hint}"
        details.append({"type": PydanticCustomError(kind, message), "loc": loc, "input": err["input"]})  # pyright: ignore[reportArgumentType]
    return ValidationError.from_exception_data(error.title, details)
