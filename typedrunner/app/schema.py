"""The JSON Schema of ``RunnerConfig``, for YAML editors: ``python -m typedrunner.schema``.

Writes ``conf/.schema/runner.schema.json`` (the whole config, every key optional so that a config
group file holding a part of it checks too, plus Hydra's ``defaults``/``hydra`` keys and the command
line's own) and one ``<key>.schema.json`` per Runner argument, for the group files packaged under it
(``conf/model/*.yaml`` -> ``model.schema.json``). Field descriptions come from the schemas'
docstrings. Each YAML in ``conf/`` names its schema on its first lines::

    # yaml-language-server: $schema=../.schema/model.schema.json

The schema is as strict as validation. A component (``{type: Name, ...}``) is selected by its
``type``: each known name has its own branch, closed (``additionalProperties: false``) unless the
constructor takes ``**kwargs``. A typed config (``Adam``, ``MultiStepLR``, ``DefaultSampler``, the
built-in hooks) is its own schema; every other built-in optimizer, scheduler, hook, loop and
sampler, and every user component registered by a module the configs import (``custom_imports``
in ``conf/``, or ``--import``), gets the arguments of its constructor's signature, as validation
checks them. A ``type`` that is neither a known name nor a dotted import path is an error; a dotted
path to a class the export does not know stays open.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, PydanticJsonSchemaWarning
from pydantic_core import core_schema

from typedrunner.app.compose import CLI_KEYS
from typedrunner.config import RunnerConfig
from typedrunner.registry.lazy import Component, component_json_schemas
from typedrunner.registry.registries import Registry, object_path

__all__ = ["DOTTED", "conf_imports", "editor_schemas", "main"]

_FREE = {"description": "Hydra's own setting (see Hydra's documentation)."}
_CLI_PROPERTIES: dict[str, Any] = {
    "check": {"type": "boolean", "description": "Validate and probe, then exit without training."},
    "strict": {"type": "boolean", "description": "Treat warnings (legal but likely wrong settings) as errors."},
    "objective": {"type": ["string", "null"], "description": "The metric a sweep optimises and its report ranks by."},
    "direction": {"enum": ["maximize", "minimize"], "description": "Which way the objective is better."},
    "print_config": {
        "type": "boolean",
        "description": "Print the validated config, every default filled in; train nothing.",
    },
    "help": {"type": ["string", "null"], "description": "Print one section's fields, types, defaults and docstrings."},
}
if set(_CLI_PROPERTIES) != set(CLI_KEYS):  # pragma: no cover - a new command-line key needs its entry
    raise RuntimeError(f"schema.py: describe the command-line keys {sorted(set(CLI_KEYS) - set(_CLI_PROPERTIES))}")

DOTTED = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
"""A dotted import path (``my_project.models.MyModel``): a ``type`` the export cannot list."""
_DOTTED = {"type": "string", "pattern": DOTTED}
_NO_JSON = {"x-typedrunner-no-json": True}
"""What a type YAML cannot write becomes (a callable, a tensor): dropped from unions, else ``{}``."""
_MARK = "x-typedrunner-registry"
"""Marks a component's schema until the export has merged it with its typed siblings."""


def editor_schemas(imports: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """``{file name: schema}``: the whole config and one schema per Runner argument. ``imports``:
    the modules (imported here) whose registered components get their own branches."""
    modules = tuple(dict.fromkeys(imports))
    for module in modules:
        importlib.import_module(module)
    with component_json_schemas(lambda component, handler: _component(component, handler, modules)):
        generated = RunnerConfig.model_json_schema(mode="validation", schema_generator=_EditorSchema)
    full = _Components(generated.pop("$defs", {})).closed(generated)
    defs = full.get("$defs", {})
    whole = {**full, "required": []}
    whole["properties"] = {
        **full["properties"],
        "defaults": {"type": "array", "description": "Hydra's defaults list: the config groups this file picks."},
        "hydra": {"type": "object", **_FREE},
        **_CLI_PROPERTIES,
    }
    out = {"runner.schema.json": whole}
    for key, prop in full["properties"].items():
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"RunnerConfig.{key}",
            **prop,
        }
        used = _referenced(prop, defs)
        if used:
            schema["$defs"] = {name: defs[name] for name in sorted(used)}
        out[f"{key}.schema.json"] = schema
    return out


def conf_imports(conf_dir: Path) -> list[str]:
    """The ``custom_imports`` of every YAML under ``conf_dir``: the modules whose registered
    components the configs there name."""
    found: list[str] = []
    for path in sorted(conf_dir.rglob("*.yaml")):
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        imports = data.get("custom_imports") if isinstance(data, dict) else None
        if isinstance(imports, dict):  # MMEngine's {imports: [...]}
            imports = imports.get("imports")
        if isinstance(imports, list):
            found += [name for name in imports if isinstance(name, str) and name not in found]
    return found


# ----------------------------------------------------------------------------------------------
# One closed branch per known component type
# ----------------------------------------------------------------------------------------------
class _EditorSchema(GenerateJsonSchema):
    """pydantic's generator, lenient where a constructor argument has no JSON form."""

    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> JsonSchemaValue:
        return dict(_NO_JSON)  # a callable, a tensor, a user class: YAML cannot write one

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        with warnings.catch_warnings():  # a default JSON cannot hold (an object): left out
            warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
            out = super().default_schema(schema)
        default = out.get("default")
        if isinstance(default, float) and not math.isfinite(default):
            out.pop("default")  # JSON has no inf or nan
        return out


def _known(registry: Registry, modules: Sequence[str]) -> dict[str, Any]:
    """The ``type``s ``registry`` resolves for the export: its built-ins (torch's optimizers and
    schedulers, typedrunner's hooks, loops and samplers) and what ``modules`` registered, under
    their names and their dotted paths."""
    registered = registry.registered()
    found: dict[str, Any] = {}
    for name in registry.names():
        target = registered.get(name)
        if target is None:
            target = registry.get(name)
        elif not _from(target, modules):
            continue  # registered by some other module (a test, a notebook): not the configs'
        if callable(target):
            found[name] = target
    for name, target in registered.items():
        if name in found:
            found.setdefault(object_path(target), target)
    return found


def _from(target: Any, modules: Sequence[str]) -> bool:
    module = str(getattr(target, "__module__", ""))
    return any(module == m or module.startswith(m + ".") for m in modules)


def _component(component: Component, handler: Any, modules: Sequence[str]) -> JsonSchemaValue:
    """``{type: Name, ...}`` in ``component``'s registry: an ``if type == Name`` branch per known
    name, holding the arguments validation checks."""
    registry = component.registry
    branches: list[dict[str, Any]] = []
    for name, target in sorted(_known(registry, modules).items()):
        arguments = handler(component.arguments_model(target).__pydantic_core_schema__)
        closed = handler.resolve_ref_schema(arguments)
        closed.setdefault("properties", {}).setdefault("type", {"type": "string"})
        closed.pop("title", None)
        closed["description"] = _description(target)
        branches.append({"if": _selects(name), "then": arguments})
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"description": f"a registered {registry.name} name or a dotted import path"}},
        "allOf": branches,
        _MARK: registry.name,
    }


def _selects(name: str) -> dict[str, Any]:
    return {"properties": {"type": {"const": name}}, "required": ["type"]}


def _name(branch: dict[str, Any]) -> str:
    return str(branch["if"]["properties"]["type"]["const"])


def _description(target: Any) -> str:
    doc = (getattr(target, "__doc__", None) or "").strip().partition("\n\n")[0]
    where = object_path(target)
    return f"``{where}``: {' '.join(doc.split())}" if doc else f"``{where}``"


class _Components:
    """Rewrites the generated schema for editors:

    - a tagged union of typed configs and a component becomes one component schema, where a typed
      config's name selects the typed config;
    - each component schema moves to ``$defs`` (once, however often it is used);
    - a built object's member (``{}``) leaves the tagged unions, and a member of a type without a
      JSON form (``float | Tensor``) leaves any union: YAML cannot write them;
    - ``oneOf`` becomes ``anyOf``: which member applies is decided by ``type`` or by a field's
      value, not by exclusivity."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.out: dict[str, Any] = {}

    def closed(self, root: dict[str, Any]) -> dict[str, Any]:
        top: dict[str, Any] = self.walk(root)
        for name, schema in self.defs.items():
            self.out.setdefault(name, self.walk(schema))
        top["$defs"] = dict(sorted(self.out.items()))
        return top

    def walk(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if node == _NO_JSON:
            return {}
        if _MARK in node:
            return self.component(node, {})
        for key in ("anyOf", "oneOf"):
            members = node.get(key)
            if isinstance(members, list) and _NO_JSON in members and len(members) > 1:
                node = {**node, key: [m for m in members if m != _NO_JSON]}
        union = node.get("oneOf")
        if isinstance(union, list):
            members = [m for m in union if m != {}]
            generic = [m for m in members if _MARK in m]
            if generic:
                typed = {self.type_of(m): m for m in members if _MARK not in m}
                rest = {k: v for k, v in node.items() if k not in ("oneOf", "discriminator")}
                return {**self.walk(rest), **self.component(generic[0], typed)}
            node = {k: v for k, v in node.items() if k != "oneOf"}
            node.update({"oneOf": members} if len(members) > 1 else members[0])
        return {("anyOf" if k == "oneOf" else k): self.walk(v) for k, v in node.items() if k != "discriminator"}

    def type_of(self, member: dict[str, Any]) -> str:
        ref = str(member.get("$ref", "")).removeprefix("#/$defs/")
        const = self.defs.get(ref, {}).get("properties", {}).get("type", {}).get("const")
        if not isinstance(const, str):  # pragma: no cover - by_type's unions are tagged by type
            raise ValueError(f"a member of a component union without a type: {member}")
        return const

    def component(self, generic: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
        """``generic``'s branches, a typed name's branch being its typed config; a ``$ref`` to it."""
        registry = str(generic[_MARK])
        branches = [b for b in generic["allOf"] if _name(b) not in typed]
        branches += [{"if": _selects(name), "then": ref} for name, ref in typed.items()]
        branches.sort(key=_name)
        described = generic["properties"]["type"]
        schema = {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {**described, "anyOf": [{"enum": [_name(b) for b in branches]}, _DOTTED]}},
            "allOf": self.walk(branches),
        }
        name = "".join(word.capitalize() for word in registry.split("_")) + "Component"
        if self.out.setdefault(name, schema) != schema:  # pragma: no cover - one registry, one set of types
            raise ValueError(f"two different {registry} component schemas")
        site = {k: v for k, v in generic.items() if k not in (*schema, _MARK)}  # the field's description
        return {**site, "$ref": f"#/$defs/{name}"}


def _referenced(node: Any, defs: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """The names of the ``$defs`` that ``node`` needs, transitively."""
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name not in found:
                found.add(name)
                _referenced(defs[name], defs, found)
        for value in node.values():
            _referenced(value, defs, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, defs, found)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m typedrunner.schema", description=(__doc__ or "").partition("\n")[0]
    )
    parser.add_argument("--out", default="conf/.schema", help="directory to write the schemas into")
    parser.add_argument(
        "--conf", default="conf", help="config directory whose custom_imports name the user modules to import"
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="also import MODULE: the components it registers get their own branches (repeatable)",
    )
    args = parser.parse_args(argv)
    imports = [*conf_imports(Path(args.conf)), *args.imports]
    schemas = editor_schemas(imports)
    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (directory / name).write_text(json.dumps(schema, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(schemas)} schemas into {directory} (components registered by: {', '.join(imports) or 'none'})")


if __name__ == "__main__":
    main()
