"""The composition boundary: a Hydra ``DictConfig`` becomes a plain dict, then a ``RunnerConfig``.

Nothing past this module sees a ``DictConfig`` or a ``ListConfig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import ConfigError, Problem

__all__ = [
    "CLI_KEYS",
    "CliOptions",
    "annotate_sources",
    "compose",
    "load_python_configs",
    "register_experiment",
    "to_plain",
    "to_runner_config",
]

# Keys of the composed config that steer the command line, not the Runner.
CLI_KEYS = ("check", "strict", "objective", "direction")


@dataclass(frozen=True)
class CliOptions:
    """The command line's own keys."""

    check: bool = False
    """Validate and probe, then exit without training."""
    strict: bool = False
    """Treat warnings (legal but likely wrong settings) as errors."""
    objective: str | None = None
    """The metric a sweep optimises (the task's return value) and its report ranks by (None: the first)."""
    direction: Literal["maximize", "minimize"] = "maximize"
    """Which way ``objective`` is better."""


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations and turn the config into plain dicts and lists."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        raise ConfigError([Problem(str(key), str(e).splitlines()[0])]) from None
    if not isinstance(data, dict):  # a DictConfig always converts to a dict; a ListConfig does not
        raise ConfigError([Problem("", f"the composed config is a {type(data).__name__}, not a mapping of keys")])
    return {str(k): v for k, v in data.items()}


def to_runner_config(cfg: DictConfig) -> tuple[RunnerConfig, CliOptions]:
    """Validate a composed config; also return the command line's own options."""
    data = to_plain(cfg)
    flags = {key: data.pop(key, False) for key in ("check", "strict")}
    bad = [Problem(key, "must be true or false", value) for key, value in flags.items() if not isinstance(value, bool)]
    objective, direction = data.pop("objective", None), data.pop("direction", "maximize")
    if objective is not None and not isinstance(objective, str):
        bad.append(Problem("objective", "must be a metric name or null", objective))
    if direction not in ("maximize", "minimize"):
        bad.append(Problem("direction", "must be maximize or minimize", direction))
    if bad:
        raise ConfigError(bad)
    options = CliOptions(
        check=bool(flags["check"]), strict=bool(flags["strict"]), objective=objective, direction=direction
    )
    return RunnerConfig.from_dict(data), options


def compose(overrides: Sequence[str] = (), config_dir: str | None = None) -> DictConfig:
    """Compose ``conf/`` with Hydra's compose API (for tests and notebooks), as the CLI would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    directory = str(Path(config_dir or "conf").resolve())
    overrides = list(overrides)
    if not any(o.lstrip("+~").startswith("work_dir=") for o in overrides):
        # conf/config.yaml points work_dir at Hydra's run directory, which exists only inside a
        # Hydra run: outside one, fall back to RunnerConfig's default (work_dirs/<experiment_name>).
        overrides.append("work_dir=null")
    load_python_configs(Path(directory))
    with initialize_config_dir(config_dir=directory, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=False)


def annotate_sources(problems: Sequence[Problem], hydra_cfg: Any, conf_dir: Path) -> list[Problem]:
    """Say where each problem's value came from: a command-line override or a config-group file."""
    overrides = [str(o) for o in hydra_cfg.overrides.task]
    choices = {str(k): str(v) for k, v in hydra_cfg.runtime.choices.items() if not str(k).startswith("hydra/") and v}
    files = _group_files(choices, conf_dir)
    out = []
    for problem in problems:
        source = problem.source or _source_of(problem.path, overrides, files)
        out.append(replace(problem, source=source))
    return out


def _override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _covers(key: str, path: str) -> bool:
    """Whether an override of ``key`` sets ``path`` (``param_scheduler.gamma`` sets
    ``param_scheduler[0].gamma`` when the config gives one scheduler, not a list)."""
    keys = key.replace("[", ".").replace("]", "").split(".")
    parts = path.replace("[", ".").replace("]", "").split(".")
    if not any(k.isdigit() for k in keys):
        parts = [p for p in parts if not p.isdigit()]
    n = min(len(keys), len(parts))
    return keys[:n] == parts[:n]


def _group_files(choices: dict[str, str], conf_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(file label, package prefix, contents) of each chosen group option, experiment last (it wins)."""
    found = []
    for group, option in choices.items():
        path = conf_dir / group / f"{option}.yaml"
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        package = "" if "@package _global_" in text else group.replace("/", ".")
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        if isinstance(loaded, dict):
            loaded.pop("defaults", None)
            found.append((f"conf/{group}/{option}.yaml", package, {str(k): v for k, v in loaded.items()}))
    found.sort(key=lambda item: item[0].startswith("conf/experiment/"))
    return found


def _defines(contents: Any, parts: list[str]) -> bool:
    node = contents
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _source_of(path: str, overrides: list[str], files: list[tuple[str, str, dict[str, Any]]]) -> str | None:
    if not path:
        return None
    for override in reversed(overrides):
        key = _override_key(override)
        if "=" in override and "." in key and _covers(key, path):
            return f"command-line override {override!r}"
    parts = [p for p in path.replace("[", ".").replace("]", "").split(".") if p]
    for label, package, contents in reversed(files):
        prefix = package.split(".") if package else []
        if parts[: len(prefix)] != prefix:
            continue
        rest = parts[len(prefix) :]
        # the deepest key of the path that this file sets (a whole section counts)
        while rest and not _defines(contents, rest):
            rest = rest[:-1]
        if rest or (prefix and contents):
            return str(label)
    for override in reversed(overrides):
        if "=" in override and _covers(_override_key(override), path):
            return f"command-line override {override!r}"
    return None


def register_experiment(name: str, config: RunnerConfig, *, keep_work_dir: bool = False) -> None:
    """Store a Python config in Hydra's ConfigStore as ``experiment/<name>``, so that
    ``python -m typedrunner +experiment=<name>``, command-line overrides, ``--cfg job`` and sweeps
    work on it as on a YAML experiment. Hydra cannot store pydantic models (hydra issue 2667): the
    config goes in as the plain data it validates from. ``work_dir`` is left to Hydra's run directory
    unless ``keep_work_dir``."""
    from hydra.core.config_store import ConfigStore

    data = config.model_dump(mode="json")
    if not keep_work_dir:
        data.pop("work_dir", None)
    ConfigStore.instance().store(group="experiment", name=name, node=data, package="_global_", provider="typedrunner")


def load_python_configs(conf_dir: Path) -> list[Path]:
    """Run the Python config files under ``conf_dir`` (they call :func:`register_experiment`)."""
    import runpy
    import sys

    files = sorted(p for p in conf_dir.rglob("*.py") if not p.name.startswith("_"))
    if files and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # the project's modules, as for custom_imports
    for path in files:
        runpy.run_path(str(path), run_name=f"typedrunner_conf.{path.stem}")
    return files
