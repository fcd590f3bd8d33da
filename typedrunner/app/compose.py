"""The composition boundary: a Hydra ``DictConfig`` becomes a plain dict, then a ``RunnerConfig``.

Nothing past this module sees a ``DictConfig`` or a ``ListConfig``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from typedrunner.app.hydra_store import install
from typedrunner.app.tree import CliOptions, prune_defaults, section_fields
from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import ConfigError, Problem, did_you_mean

__all__ = [
    "CLI_KEYS",
    "CliOptions",
    "annotate_sources",
    "compose",
    "composition_problems",
    "load_python_configs",
    "register_experiment",
    "to_plain",
    "to_runner_config",
]

# Keys of the composed config that steer the command line, not the Runner.
CLI_KEYS = ("check", "strict", "objective", "direction", "print_config", "help")


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
    try:
        return _to_runner_config(cfg)
    except RecursionError:
        raise ConfigError([Problem("", _TOO_DEEP)]) from None


def _to_runner_config(cfg: DictConfig) -> tuple[RunnerConfig, CliOptions]:
    # The generated defaults (app/tree.py) are the schema's own: validation sees what the files and
    # the command line gave, and fills the defaults in again.
    data = prune_defaults(to_plain(cfg))
    flags = {key: data.pop(key, False) for key in ("check", "strict", "print_config")}
    data.pop("help", None)  # handled before validation (cli.py)
    bad = [Problem(key, "must be true or false", value) for key, value in flags.items() if not isinstance(value, bool)]
    objective, direction = data.pop("objective", None), data.pop("direction", "maximize")
    if objective is not None and not isinstance(objective, str):
        bad.append(Problem("objective", "must be a metric name or null", objective))
    if direction not in ("maximize", "minimize"):
        bad.append(Problem("direction", "must be maximize or minimize", direction))
    if bad:
        raise ConfigError(bad)
    options = CliOptions(
        check=bool(flags["check"]),
        strict=bool(flags["strict"]),
        objective=objective,
        direction=direction,
        print_config=bool(flags["print_config"]),
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
    install()
    load_python_configs(Path(directory))
    with initialize_config_dir(config_dir=directory, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=False)


_TOO_DEEP = "the configuration is nested too deeply to compose (Python's recursion limit): flatten it"


def composition_problems(error: BaseException, overrides: Sequence[str] = ()) -> list[Problem] | None:
    """The problems behind an error that Hydra, OmegaConf or YAML raised while composing the config
    (a missing group option, a list where a mapping is expected, an interpolation that does not
    resolve, a YAML syntax error, a nesting too deep), or None when ``error`` is not one of those.
    ``overrides`` are the command line's, to name the one behind an error."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    if isinstance(error, RecursionError):
        deep = [o for o in overrides if "=" in o and o.count("{") + o.count("[") > 20]
        return [Problem(_override_key(o), _TOO_DEEP, source=f"command-line override {o!r}") for o in deep] or [
            Problem("", _TOO_DEEP)
        ]
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and "/" in error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        options = [str(o) for o in error.options or []]
        known = f" (options: {', '.join(options)}){did_you_mean(option, options)}" if options else ""
        return [Problem(group.replace("/", "."), f"no option {option!r} in the config group {group!r}{known}")]
    if isinstance(error, OverrideParseException) and "=" in error.override:
        message = str(error).split("; See ")[0]  # Hydra's link to its override grammar follows
        return [Problem(_override_key(error.override), message, source=f"command-line override {error.override!r}")]
    cause = error.__cause__ if error.__cause__ is not None else error.__context__
    for found in (error, cause):
        if type(found).__module__.startswith("yaml."):  # PyYAML's errors (OmegaConf loads with it)
            return [Problem("", _yaml_message(found))]
    unknown = _unknown_key(cause, overrides) if isinstance(error, HydraException) else None
    if unknown is not None:
        return [unknown]
    if isinstance(error, HydraException) and isinstance(cause, OmegaConfBaseException):
        first = str(error).splitlines()[0]
        problem = _omegaconf_problem(cause, overrides)
        source = problem.source or _merging(first, overrides)
        return [replace(problem, message=f"{problem.message} ({first.rstrip('.:')})", source=source)]
    if isinstance(error, OmegaConfBaseException):
        return [_omegaconf_problem(error, overrides)]
    if isinstance(error, HydraException):
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return [Problem("", "; ".join(lines[:3]) or type(error).__name__)]
    return None


def _unknown_key(cause: BaseException | None, overrides: Sequence[str]) -> Problem | None:
    """An override of a key that is not in a closed section of the tree (``randomness.sed=0``):
    the schema's fields there, with a did-you-mean."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or "is not in struct" not in str(cause):
        return None
    path = str(getattr(cause, "full_key", None) or "")
    parent, _, key = path.rpartition(".")
    if not key or path.startswith("hydra."):
        return None
    names = section_fields(parent.split(".") if parent else [])
    if not names:
        return None
    hint = did_you_mean(key, names) or (
        f"; the keys here are {', '.join(names)}"
        if parent
        else ": not a Runner argument nor a command-line key (python -m typedrunner --help lists them)"
    )
    source = next((f"command-line override {o!r}" for o in overrides if _override_key(o) == path), None)
    return Problem(path, f"unknown key{hint}", source=source)


def _omegaconf_problem(error: OmegaConfBaseException, overrides: Sequence[str]) -> Problem:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    if message.startswith("Cannot merge DictConfig with ListConfig"):
        message = "expected a mapping of keys, got a list"
    elif message.startswith("Cannot merge ListConfig with DictConfig"):
        message = "expected a list, got a mapping"
    override = _interpolating(message, overrides)
    if override is not None:
        return Problem(_override_key(override), message, source=f"command-line override {override!r}")
    return Problem(str(getattr(error, "full_key", None) or ""), message)


def _interpolating(message: str, overrides: Sequence[str]) -> str | None:
    """The override holding the interpolation that ``message`` says does not resolve (``${nope}``,
    ``${oc.env:UNSET}``), if any."""
    for override in overrides:
        names = [n.rpartition(":")[2].strip() for n in re.findall(r"\$\{([^}]*)\}", override.partition("=")[2])]
        if any(n and f"'{n}'" in message for n in names):
            return override
    return None


def _merging(first_line: str, overrides: Sequence[str]) -> str | None:
    """The override Hydra names in ``Error merging override KEY=VALUE``."""
    for override in overrides:
        if first_line.endswith(override):
            return f"command-line override {override!r}"
    return None


def _yaml_message(error: Any) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "a YAML file"
    what = " ".join(str(x) for x in (getattr(error, "context", None), getattr(error, "problem", None)) if x)
    return f"YAML syntax error in {where}: {what or str(error).splitlines()[0]}"


def annotate_sources(problems: Sequence[Problem], hydra_cfg: Any, conf_dir: Path) -> list[Problem]:
    """Say where each problem's value came from: a command-line override or a config-group file."""
    # unresolved: an override may hold the very interpolation that did not resolve (${nope})
    overrides = [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False) or []]
    given = OmegaConf.to_container(hydra_cfg.runtime.choices, resolve=False)
    given = given if isinstance(given, dict) else {}
    choices = {str(k): str(v) for k, v in given.items() if not str(k).startswith("hydra/") and v}
    files = _group_files(choices, conf_dir)
    out = []
    for problem in problems:
        interpolating = _interpolating(problem.message, overrides)
        source = problem.source or (
            f"command-line override {interpolating!r}"
            if interpolating
            else _source_of(problem.path, overrides, files, {str(k) for k in given})
        )
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


def _source_of(
    path: str, overrides: list[str], files: list[tuple[str, str, dict[str, Any]]], groups: Collection[str] = ()
) -> str | None:
    """The command-line override that set ``path`` (overrides apply after every file), else the
    last config-group file that sets it. An override of a config group (``optim_wrapper=sgd``,
    ``+experiment=mlp``) picks a file; that file is the source."""
    if not path:
        return None
    for override in reversed(overrides):
        key = _override_key(override)
        if "=" in override and key not in groups and _covers(key, path):
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
    if not config.debug.active:
        data.pop("debug")  # else it would undo debug=fast, which the defaults list puts before experiments
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


def for_sweep_job(config: RunnerConfig, sweep_dir: Path, job_name: str) -> RunnerConfig:
    """A sweep job's visualizer defaults: every job is a run of one MLflow store (in the sweep
    directory) and one W&B group (the sweep directory's name), named by its overrides. Values the
    config sets are kept."""
    if config.visualizer is None:
        return config
    from typedrunner.config.visualizer import MLflowVisBackend, WandbVisBackend

    backends = []
    for backend in config.visualizer.vis_backends:
        if isinstance(backend, MLflowVisBackend):
            uri = backend.tracking_uri or f"sqlite:///{(sweep_dir / 'mlflow.db').resolve()}"
            backend = backend.model_copy(update={"tracking_uri": uri, "run_name": backend.run_name or job_name})
        elif isinstance(backend, WandbVisBackend):
            group = backend.group or f"{config.experiment_name}/{sweep_dir.name}"
            backend = backend.model_copy(update={"group": group, "name": backend.name or job_name})
        backends.append(backend)
    visualizer = config.visualizer.model_copy(update={"vis_backends": backends})
    return config.model_copy(update={"visualizer": visualizer})
