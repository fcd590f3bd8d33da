"""``--help`` from the schema: every section of ``RunnerConfig`` with its fields, their types,
defaults and docstrings (the one-line docstrings that also describe the JSON Schema).

``python -m typedrunner --help`` prints the config groups and then every section (Hydra's
``hydra.help.template``, generated here and stored in the ConfigStore as ``hydra/help=typedrunner``);
``python -m typedrunner help=optim_wrapper`` prints one section.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from typedrunner.app.tree import CliOptions
from typedrunner.config.runner import RunnerConfig

__all__ = ["HELP_NAME", "help_node", "schema_help", "section_names"]

HELP_NAME = "typedrunner"
"""The option of Hydra's ``hydra/help`` group that ``conf/config.yaml`` picks."""

_MAX_UNION = 3
"""A union of more models than this (every torch optimizer, ...) is listed by name, not expanded."""


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The schema models a field's value may be, in order (a union's members)."""
    if get_origin(annotation) is Annotated:
        return _models(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _models(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def type_name(annotation: Any) -> str:
    """A short, readable name of a field's type: ``int | None``, ``list[int]``, ``'fork' | 'spawn'``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, types.UnionType):
        names = list(dict.fromkeys(type_name(a) for a in args))
        if "None" in names:  # None last, as it is usually written
            names = [n for n in names if n != "None"] + ["None"]
        return " | ".join(names)
    if origin is Literal:
        return " | ".join(repr(a) if isinstance(a, str) else json.dumps(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) if a is not Ellipsis else "..." for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if inner else getattr(origin, "__name__", "")
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "component"  # a {type: ..., ...} mapping, a lazy(...) or a built object
    return getattr(annotation, "__name__", re.sub(r"\b(typing|[\w.]+)\.", "", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, BaseModel):
        return "(section below)"
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _doc(text: str | None) -> str:
    return " ".join((text or "").split()).replace("``", "`")


def _fields(model: type[BaseModel], prefix: str, depth: int) -> Iterator[str]:
    """Lines for every field of ``model`` (nested sections and small unions of models expanded)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        yield f"  {key}: {type_name(field.annotation)} = {_default(field)}"
        if field.description:
            yield f"      {_doc(field.description)}"
        members = _models(field.annotation)
        if not members or depth > 4:
            continue
        if len(members) == 1:
            yield from _fields(members[0], f"{key}.", depth + 1)
        elif len(members) <= _MAX_UNION:
            for member in members:
                yield f"  {key} as {member.__name__}: {_doc(member.__doc__).split('. ')[0]}"
                yield from _fields(member, f"{key}.", depth + 1)


def section_names() -> list[str]:
    """The top-level keys: ``RunnerConfig``'s fields and the command line's own keys."""
    return [f.alias or n for n, f in RunnerConfig.model_fields.items()] + [
        f.name for f in dataclasses.fields(CliOptions)
    ]


def _section(name: str) -> list[str]:
    field = next((f for n, f in RunnerConfig.model_fields.items() if (f.alias or n) == name), None)
    if field is None:
        option = next(f for f in dataclasses.fields(CliOptions) if f.name == name)
        kind = {bool: "bool", str: "str"}.get(type(option.default), "str | None")
        return [f"{name}: {kind} = {json.dumps(option.default)}", f"    {_doc(option.metadata.get('doc'))}"]
    lines = [f"{name}: {type_name(field.annotation)} = {_default(field)}", f"    {_doc(field.description)}"]
    members = _models(field.annotation)
    if len(members) == 1:
        lines += _fields(members[0], f"{name}.", 1)
    elif 1 < len(members) <= _MAX_UNION:
        for member in members:
            lines.append(f"  {name} as {member.__name__}: {_doc(member.__doc__).split('. ')[0]}")
            lines += _fields(member, f"{name}.", 1)
    elif members:
        lines.append(f"  one of: {', '.join(m.__name__ for m in members)} (by `type`)")
    return lines


def schema_help(section: str | None = None) -> str:
    """Every section with its fields (``section=None``), or one section; ``KeyError`` for a name
    that is not a section."""
    names = section_names()
    if section is not None:
        if section not in names:
            raise KeyError(section)
        return "\n".join(_section(section))
    out = [
        "Every key below can be set on the command line (section.field=value) or in a conf/ file;",
        "`component` is {type: Name, ...}: a registered name, a torch class or a dotted path, with",
        "that class's own arguments. One section: python -m typedrunner help=SECTION",
        "",
    ]
    for name in names:
        out += [*_section(name), ""]
    return "\n".join(out).rstrip()


def help_node() -> dict[str, Any]:
    """Hydra's help config (``hydra/help``), with the schema's help in its template."""
    # the template is read through OmegaConf (${...} interpolates), then string.Template ($NAME).
    # It holds no ${...}: OmegaConf lexes a string that does, character by character, at every merge
    # of the config (16 merges of these 27,000 characters took 0.3 s of each start-up), so the header
    # and footer are written into it rather than interpolated (the same text).
    fields = schema_help().replace("${", "$ {").replace("$", "$$")
    template = "\n".join(
        [
            _HEADER.replace("$", "$$"),
            "== Config groups ==",
            "Pick an option of a group with group=option (an experiment with +experiment=NAME):",
            "",
            "$APP_CONFIG_GROUPS",
            "",
            "== Configuration: every section, its fields, types, defaults ==",
            fields,
            "",
            "== The composed config (add +experiment=NAME and overrides to see theirs) ==",
            "$CONFIG",
            _FOOTER.replace("$", "$$"),
        ]
    )
    return {"app_name": "typedrunner", "header": _HEADER, "footer": _FOOTER, "template": template}


_HEADER = "typedrunner: a typed, validated training Runner (python -m typedrunner +experiment=NAME [key=value ...])\n"
_FOOTER = (
    "print_config=true prints the validated config with every default filled in, trains nothing;\n"
    "check=true also probes one batch. Hydra's own flags: --hydra-help\n"
)
