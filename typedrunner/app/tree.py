"""Hydra's view of the schema: every ``RunnerConfig`` field in the composed tree, with its default.

``conf/config.yaml`` lists ``typedrunner_defaults`` first in its defaults list: a plain config that
this module generates from ``RunnerConfig`` (and the command line's own keys) and stores in Hydra's
ConfigStore, so it can never drift from the schema. Then ``randomness.seed=0`` or
``default_hooks.checkpoint.max_keep_ckpts=3`` override a key that exists, without ``+``.

Two kinds of node:

- **closed sections**: a field whose schema is one fixed model with a default (``randomness``,
  ``env_cfg``, ``default_hooks`` and its hooks, ...) is a mapping of all its fields with their
  defaults. Hydra refuses an unknown key there; :func:`unknown_key` names it with a did-you-mean.
- **open parts**: everything else (``model``, the dataloaders, the loops, ``optim_wrapper``,
  ``param_scheduler``, the evaluators, ...) is ``null`` until a config file or an override gives
  it, and takes any key then (a component's arguments depend on its ``type``; a loop's fields on
  its kind). Validation checks them against the schema and the constructors' signatures, with a
  did-you-mean, as before.

At the boundary, :func:`prune_defaults` takes out every value that is still the generated default,
so validation sees what the config files and the command line gave, as it did before the defaults
were in the tree (the validated ``config.json`` is unchanged).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from typedrunner.config.base import ConfigModel
from typedrunner.config.runner import RunnerConfig

__all__ = [
    "BASE_NAME",
    "CliOptions",
    "base_tree",
    "give_open_part",
    "holds_generated_default",
    "open_parts",
    "prune_defaults",
    "section_fields",
]

BASE_NAME = "typedrunner_defaults"
"""The ConfigStore name of the generated base (listed first in ``conf/config.yaml``'s defaults)."""


def _fixed_model(annotation: Any) -> type[ConfigModel] | None:
    """The model class when ``annotation`` is one ``ConfigModel`` (or it or None), else None."""
    if get_origin(annotation) is Annotated:
        return _fixed_model(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _fixed_model(members[0]) if len(members) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, ConfigModel):
        return annotation
    return None


def _closed(field: FieldInfo, value: Any) -> type[ConfigModel] | None:
    """The model of a closed section: a fixed model whose default is an instance of it."""
    model = _fixed_model(field.annotation)
    return model if model is not None and type(value) is model else None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


_OTHER_SHAPES = frozenset({"custom_imports"})
"""List fields whose validation also takes another shape (``custom_imports``: MMEngine's
``{imports: [...], allow_failed_imports: ...}``): open in the tree, or a file giving that shape could
not merge over the default list."""


def _leaf(field: FieldInfo, value: Any, name: str = "") -> Any:
    """A default as the tree holds it: scalars as they are, and lists of scalars of a field that
    takes only a list; anything else (``param_scheduler``, which a mapping may give, a model of a
    union, a list field of :data:`_OTHER_SHAPES`) is an open ``null`` that validation fills with the
    default."""
    if _scalar(value):
        return value
    if name in _OTHER_SHAPES:
        return None
    if isinstance(value, list) and get_origin(field.annotation) is list and all(_scalar(v) for v in value):
        return list(value)
    return None


def _tree_of(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        out[field.alias or name] = _tree_of(value) if _closed(field, value) else _leaf(field, value, name)
    return out


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclasses.dataclass(frozen=True)
class CliOptions:
    """The command line's own keys (in the tree beside the Runner's, with these defaults); each
    field's ``metadata["doc"]`` is its ``--help`` line."""

    check: bool = dataclasses.field(default=False, metadata=_doc("Validate and probe, then exit without training."))
    strict: bool = dataclasses.field(
        default=False, metadata=_doc("Treat warnings (legal but likely wrong settings) as errors.")
    )
    objective: str | None = dataclasses.field(
        default=None,
        metadata=_doc(
            "The metric a sweep optimises (the task's return value) and its report ranks by (None: the first)."
        ),
    )
    direction: Literal["maximize", "minimize"] = dataclasses.field(
        default="maximize", metadata=_doc("Which way ``objective`` is better.")
    )
    print_config: bool = dataclasses.field(
        default=False,
        metadata=_doc("Print the validated config with every default filled in (YAML), then exit without training."),
    )
    help: str | None = dataclasses.field(
        default=None,
        metadata=_doc(
            "Print one section's fields, types, defaults and docstrings (``help=optim_wrapper``), then exit."
        ),
    )


def _cli_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(CliOptions)}


@functools.cache
def _base() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in RunnerConfig.model_fields.items():
        key = field.alias or name
        if field.is_required():
            out[key] = None
            continue
        value = field.get_default(call_default_factory=True, validated_data={})
        out[key] = _tree_of(value) if _closed(field, value) else _leaf(field, value, name)
    return {**out, **_cli_defaults()}


def base_tree() -> dict[str, Any]:
    """The generated base config: every ``RunnerConfig`` field, closed sections with all their
    defaults, open parts ``null``; and the command line's own keys (``check``, ``strict``, ...)."""
    import copy

    return copy.deepcopy(_base())


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (``True`` is not the default ``1``: the schema refuses it)."""
    return type(a) is type(b) and a == b


def prune_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without the values of ``RunnerConfig`` fields that are still the generated defaults
    (a section left empty goes too): what the config files and the command line gave. The command
    line's own keys stay."""
    keep = {n for n, f in RunnerConfig.model_fields.items() if f.is_required()} | set(_cli_defaults())
    return _prune(data, _base(), frozenset(keep))


def _prune(data: Mapping[str, Any], base: Mapping[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in base and key not in keep:
            default = base[key]
            if isinstance(default, dict) and isinstance(value, Mapping):
                rest = _prune(value, default)
                if rest:
                    out[key] = rest
                continue
            if _same(value, default):
                continue
        out[key] = value
    return out


def section_fields(path: Sequence[str]) -> list[str]:
    """The keys the tree holds at the closed section ``path`` (for a did-you-mean)."""
    node: Any = _base()
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return list(node) if isinstance(node, dict) else []


def open_parts(cfg: Any, base: Mapping[str, Any] | None = None) -> None:
    """Let every open part that a config file gave take new keys (closed sections stay closed)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    base = _base() if base is None else base
    if not isinstance(cfg, DictConfig) or cfg._is_none() or cfg._is_missing():
        return
    for key in list(cfg.keys()):
        if key == "hydra":
            continue
        child = cfg._get_node(key)
        default = base.get(str(key)) if str(key) in base else ...
        if isinstance(default, dict):
            open_parts(child, default)
        elif default is not ... and isinstance(child, (DictConfig, ListConfig)) and not child._is_none():
            OmegaConf.set_struct(child, False)


def holds_generated_default(cfg: Any, key: str) -> bool:
    """Whether the composed ``cfg`` holds, at the dotted ``key``, a closed section's field (or a
    whole closed section, such as a hook) whose value is still the generated default."""
    from omegaconf import OmegaConf

    node: Any = _base()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=False, throw_on_resolution_failure=False)
        if OmegaConf.is_config(value):  # a closed section (a hook): all of it still the defaults
            value = OmegaConf.to_container(value, resolve=False)
    except Exception:  # a key Hydra cannot select: let Hydra report it
        return False
    return _same(value, node)


def give_open_part(cfg: Any, key: str) -> None:
    """``train_cfg.max_epochs=3`` when no config file gave ``train_cfg``: the override gives it, as
    an empty open mapping that the override then fills (Hydra would refuse a key under ``null``)."""
    from omegaconf import DictConfig, OmegaConf, open_dict

    node: Any = cfg
    base: Mapping[str, Any] = _base()
    for part in key.split(".")[:-1]:
        if not isinstance(node, DictConfig) or node._is_none() or part not in node or part not in base:
            return
        default = base[part]
        if isinstance(default, dict):
            node, base = node._get_node(part), default
            continue
        child = node._get_node(part)
        if child is not None and child._is_none():
            with open_dict(node):
                node[part] = {}
            given = node._get_node(part)
            if isinstance(given, DictConfig):
                OmegaConf.set_struct(given, False)
        return
