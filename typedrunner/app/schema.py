"""The JSON Schema of ``RunnerConfig``, for YAML editors: ``python -m typedrunner.app.schema``.

Writes ``conf/.schema/runner.schema.json`` (the whole config, every key optional so that a config
group file holding a part of it checks too, plus Hydra's ``defaults``/``hydra`` keys and the command
line's own) and one ``<key>.schema.json`` per Runner argument, for the group files packaged under it
(``conf/model/*.yaml`` -> ``model.schema.json``). Field descriptions come from the schemas'
docstrings. Each YAML in ``conf/`` names its schema on its first lines::

    # yaml-language-server: $schema=../.schema/model.schema.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from typedrunner.app.compose import CLI_KEYS
from typedrunner.config import RunnerConfig

__all__ = ["editor_schemas", "main"]

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


def editor_schemas() -> dict[str, dict[str, Any]]:
    """``{file name: schema}``: the whole config and one schema per Runner argument."""
    full = _any_of(RunnerConfig.model_json_schema(mode="validation"))
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


def _any_of(node: Any) -> Any:
    """``oneOf`` -> ``anyOf``: a typed ``{type: Adam, ...}`` also fits the generic component shape
    (any torch optimizer by name), and which one applies is decided by ``type``, not by exclusivity."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_any_of(v) for v in node]
    return node


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
    parser = argparse.ArgumentParser(prog="python -m typedrunner.app.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="conf/.schema", help="directory to write the schemas into")
    args = parser.parse_args(argv)
    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in editor_schemas().items():
        (directory / name).write_text(json.dumps(schema, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(editor_schemas())} schemas into {directory}")


if __name__ == "__main__":
    main()
