"""``python -m typedrunner.migrate path/to/config.py [--out conf/experiment/NAME.yaml]``: an MMEngine Python
config (with its ``_base_`` files) as a typedrunner experiment.

1. The config is read, not run (``typedrunner.config.pyconfig``: values from the syntax tree; no import of
   it runs), its bases merged as MMEngine merges them.
2. What typedrunner has no place for is left out, one line per key with the reason: variables of the file
   that are not Runner arguments, ``default_scope``, what the ``visualizer`` has that typedrunner's has
   not (a task visualizer's type and drawing arguments, a backend it does not have: see
   ``typedrunner.app.migrate_visualizer``), ``default_hooks.visualization``, and any key or optional part
   (a default hook, a custom hook, a data preprocessor) that validation refuses, such as a registry name
   of an OpenMMLab package that is not installed. MMEngine's own classes named by dotted path
   (``mmengine.dataset.DefaultSampler``) become typedrunner's names for them.
3. The rest is written as a Hydra experiment YAML (``# @package _global_``) and validated: the full report,
   exit 2 when invalid (the file is still written, to be edited), 0 when valid.

Validation imports what the config's ``custom_imports`` names (as any run of it would).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from typedrunner.app.migrate_visualizer import carry_visualization_hook, carry_visualizer
from typedrunner.config import RunnerConfig
from typedrunner.config.pyconfig import read_config
from typedrunner.errors import ConfigError

__all__ = ["convert", "main"]

EXIT_INVALID = 2
_LEFT_OUT = {
    "default_scope": "registry scopes: typedrunner has one registry per kind, names resolve without a scope",
}
_OPTIONAL = re.compile(r"^(default_hooks\.\w+|custom_hooks\[\d+\]|data_preprocessor|model\.data_preprocessor)")
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _mmengine_names(value: Any) -> Any:
    """``type: mmengine.x.Name`` (a new-style config's imported class) as ``Name``, typedrunner's name for it."""
    if isinstance(value, dict):
        out = {k: _mmengine_names(v) for k, v in value.items()}
        kind = out.get("type")
        if isinstance(kind, str) and kind.startswith("mmengine."):
            out["type"] = kind.rpartition(".")[2]
        return out
    if isinstance(value, (list, tuple)):
        return [_mmengine_names(v) for v in value]
    return value


def _steps(path: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _STEP.findall(path)]


def _remove(data: dict[str, Any], path: str) -> Any:
    """Remove the value at a problem's ``path`` (``a.b[2].c``) from ``data``: its ``type`` (or ``True``),
    or ``False`` when nothing was there."""
    steps = _steps(path)
    holder: Any = data
    for step in steps[:-1]:
        try:
            holder = holder[step]
        except (KeyError, IndexError, TypeError):
            return False
    last: Any = steps[-1] if steps else None
    if (isinstance(holder, dict) and last in holder) or (
        isinstance(holder, list) and isinstance(last, int) and last < len(holder)
    ):
        removed = holder.pop(last)
        return removed.get("type", True) if isinstance(removed, dict) else True
    return False


def _problems(data: dict[str, Any]) -> list[Any]:
    try:
        RunnerConfig.from_dict(data)
    except ConfigError as e:
        return list(e.problems)
    return []


def convert(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The config as typedrunner keys, and one ``key: reason`` line per thing left out."""
    data = _mmengine_names(values)
    notes: list[str] = []
    imports = data.get("custom_imports")
    if isinstance(imports, dict) and isinstance(imports.get("imports", []), (list, tuple)):
        # MMEngine's {imports: [...]} as typedrunner spells it: a list (Hydra's generated tree holds a
        # list there, so the mapping would not compose)
        data["custom_imports"] = list(imports.get("imports", []))
    for key in list(data):
        if key == "visualizer":
            notes.extend(carry_visualizer(data))
        elif key in _LEFT_OUT:
            notes.append(f"{key}: {_LEFT_OUT[key]}")
            del data[key]
        elif key not in RunnerConfig.model_fields:
            notes.append(
                f"{key}: not a Runner argument (a variable of the config file; where it was used, its value was copied)"
            )
            del data[key]
    notes.extend(carry_visualization_hook(data))
    for _ in range(50):  # each round leaves out one refused key or optional part, then validates again
        removed = False
        for problem in _problems(data):
            unknown = problem.message.startswith("unknown key")
            optional = _OPTIONAL.match(problem.path)
            target = problem.path if unknown else optional.group(1) if optional else None
            removed = _remove(data, target) if target is not None else False
            if removed is not False:
                kind = f" ({removed})" if isinstance(removed, str) else ""
                notes.append(f"{target}{kind}: {problem.message}")
                removed = True
                break
        if not removed:
            break
    return data, notes


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def _yaml(data: dict[str, Any], source: Path, name: str) -> str:
    header = (
        "# @package _global_\n"
        f"# Converted from {source} by `python -m typedrunner.migrate`.\n"
        f"# Run: python -m typedrunner +experiment={name}\n"
    )
    return header + OmegaConf.to_yaml(OmegaConf.create(_plain(data)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m typedrunner.migrate",
        description="Convert an MMEngine Python config (with its _base_ files) into a typedrunner experiment YAML.",
    )
    parser.add_argument("config", type=Path, help="the MMEngine config file (.py)")
    parser.add_argument("--out", type=Path, default=None, help="the YAML to write (default: conf/experiment/NAME.yaml)")
    args = parser.parse_args(argv)
    source: Path = args.config
    out: Path = args.out or Path("conf") / "experiment" / f"{source.stem}.yaml"
    try:
        read = read_config(source)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return EXIT_INVALID
    data, notes = convert(read.values)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_yaml(data, source, out.stem), encoding="utf-8")
    print(f"wrote {out} (from {source} and {len(read.files) - 1} base files)")
    print(f"not carried over ({len(notes)}):")
    for note in notes:
        print(f"  {note}")
    problems = _problems(data)
    if problems:
        print(ConfigError(problems).render(), file=sys.stderr)
        return EXIT_INVALID
    print(f"valid; run it: python -m typedrunner +experiment={out.stem}")
    return 0
