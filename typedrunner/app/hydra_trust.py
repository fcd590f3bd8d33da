"""Hydra's own settings (``hydra:``) are data too: what Hydra would import and call from them is
checked before it does.

An experiment file (``# @package _global_``), a config group file or a command-line override can set
``hydra.callbacks``, ``hydra.launcher``, ``hydra.sweeper`` and Hydra's logging configuration. Hydra
instantiates each ``_target_`` under the first three (recursively: a nested ``_target_`` too) and
hands the logging blocks to ``logging.config.dictConfig``, which calls each ``class`` / ``()``
factory and imports each ``ext://`` name. Each composed config is checked here, right after Hydra
composes it and before Hydra configures logging or instantiates anything: a target outside
:data:`ALLOWED_TARGETS` is refused (exit 2, the report naming the key), unless the user trusts it by
name in the environment variable :data:`TRUST_ENV`, which no config file or override can set.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, Node

from typedrunner.errors import ConfigError, Problem

__all__ = ["ALLOWED_TARGETS", "TRUST_ENV", "checking_hydra_targets", "untrusted_hydra_targets"]

TRUST_ENV = "TYPEDRUNNER_TRUSTED_HYDRA_TARGETS"
"""Comma-separated dotted names of further Hydra callbacks, launchers, sweepers (or logging
factories) to allow, e.g. ``TYPEDRUNNER_TRUSTED_HYDRA_TARGETS=my_lab.hydra.SlackNotifier``."""

_OPTUNA_SAMPLERS = ("TPESampler", "RandomSampler", "CmaEsSampler", "NSGAIISampler", "MOTPESampler", "GridSampler")

ALLOWED_TARGETS: dict[str, frozenset[str]] = {
    "callbacks": frozenset({"typedrunner.app.sweep_callbacks.SweepReport"}),
    "launcher": frozenset(
        {
            "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
            "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
        }
    ),
    "sweeper": frozenset(
        {
            "hydra_plugins.typedrunner_sweeper.typedrunner_sweeper.TypedRunnerSweeper",
            "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
            "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
            *(f"optuna.samplers.{name}" for name in _OPTUNA_SAMPLERS),
        }
    ),
    # logging.config.dictConfig's factories (``class``, ``()``) and ``ext://`` objects
    "hydra_logging": frozenset(
        {
            "logging.StreamHandler",
            "logging.FileHandler",
            "logging.NullHandler",
            "logging.Formatter",
            "colorlog.ColoredFormatter",
            "ext://sys.stdout",
            "ext://sys.stderr",
        }
    ),
}
"""Per ``hydra:`` key, what typedrunner ships or documents (conf/hydra/, docs/sweeps.md)."""
ALLOWED_TARGETS["job_logging"] = ALLOWED_TARGETS["hydra_logging"]

_KINDS = {
    "callbacks": "Hydra callback",
    "launcher": "Hydra launcher",
    "sweeper": "Hydra sweeper",
    "hydra_logging": "logging factory",
    "job_logging": "logging factory",
}


def trusted_by_user() -> frozenset[str]:
    """The names the user trusts in :data:`TRUST_ENV`."""
    return frozenset(name.strip() for name in os.environ.get(TRUST_ENV, "").split(",") if name.strip())


def untrusted_hydra_targets(cfg: DictConfig, trusted: frozenset[str] = frozenset()) -> list[Problem]:
    """Every target under ``cfg.hydra`` that Hydra would import and call and that is neither in
    :data:`ALLOWED_TARGETS` nor in ``trusted``; and every file Hydra would write outside the run
    directory (``hydra.output_subdir``, a logging block's ``filename``)."""
    hydra = cfg.get("hydra") if isinstance(cfg, DictConfig) else None
    if not isinstance(hydra, DictConfig):
        return []
    problems = []
    for key, allowed in ALLOWED_TARGETS.items():
        node = hydra._get_node(key)
        if not isinstance(node, (DictConfig, ListConfig)):
            continue
        logging_block = key.endswith("_logging")
        for path, value in _targets(node, f"hydra.{key}", logging_block):
            if isinstance(value, str) and (value in allowed or value in trusted):
                continue
            shown = ", ".join(sorted(allowed))
            what = f"{value!r}" if isinstance(value, str) else f"a {type(value).__name__} ({value!r})"
            problems.append(
                Problem(
                    path,
                    f"{what} is not a {_KINDS[key]} typedrunner ships or documents, and Hydra would import and "
                    f"call it (allowed here: {shown}). If you trust it, name it in the environment, not in a "
                    f"config: {TRUST_ENV}={value if isinstance(value, str) else '<dotted.name>'}",
                    value,
                )
            )
    return problems + _paths_outside_the_run_directory(hydra)


_IN_OUTPUT_DIR = re.compile(r"\$\{hydra[:.]runtime\.output_dir\}/([^/\\$]|\$\{hydra[:.]job\.name\})+")


def _paths_outside_the_run_directory(hydra: DictConfig) -> list[Problem]:
    """Where Hydra itself writes files: ``hydra.output_subdir`` (relative to the run directory)
    and the log files of its logging blocks must stay inside the run directory."""
    problems = []
    subdir = hydra._get_node("output_subdir")
    raw = subdir._value() if isinstance(subdir, Node) else None
    if raw is not None and (
        not isinstance(raw, str) or "$" in raw or Path(raw).is_absolute() or ".." in Path(raw).parts
    ):
        problems.append(
            Problem(
                "hydra.output_subdir",
                "must be a plain relative directory inside the run directory (no '..', not absolute), or null",
                raw,
            )
        )
    job = hydra._get_node("job")
    name = job._get_node("name") if isinstance(job, DictConfig) else None
    raw = name._value() if isinstance(name, Node) else None
    if isinstance(raw, str) and ("/" in raw or "\\" in raw or raw in (".", "..") or "$" in raw):
        problems.append(Problem("hydra.job.name", "must be a plain name (log files are named after it)", raw))
    for key in ("hydra_logging", "job_logging"):
        node = hydra._get_node(key)
        if isinstance(node, (DictConfig, ListConfig)):
            for path, value in _raw_values(node, f"hydra.{key}", "filename"):
                if not (isinstance(value, str) and _IN_OUTPUT_DIR.fullmatch(value) and ".." not in value):
                    problems.append(
                        Problem(
                            path,
                            "a log file must be a file name in the run directory: ${hydra.runtime.output_dir}/NAME.log",
                            value,
                        )
                    )
    return problems


def _raw_values(node: DictConfig | ListConfig, path: str, name: str) -> Iterator[tuple[str, Any]]:
    """(path, value as written) of each key ``name`` under ``node``."""
    keys = list(node) if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        child = node._get_node(key)
        where = f"{path}[{key}]" if isinstance(node, ListConfig) else f"{path}.{key}"
        if isinstance(child, (DictConfig, ListConfig)):
            yield from _raw_values(child, where, name)
        elif key == name and isinstance(child, Node):
            yield where, child._value()


def _targets(node: DictConfig | ListConfig, path: str, logging_block: bool) -> Iterator[tuple[str, Any]]:
    """(path, resolved value) of each ``_target_`` under ``node``; in a logging block, of each
    ``class`` and ``()`` factory and each ``ext://`` value."""
    items: list[tuple[Any, Any]] = (
        [(k, node._get_node(k)) for k in node]
        if isinstance(node, DictConfig)
        else list(enumerate(node._iter_ex(False)))
    )
    for key, child in items:
        where = f"{path}[{key}]" if isinstance(node, ListConfig) else f"{path}.{key}"
        if isinstance(child, (DictConfig, ListConfig)):
            yield from _targets(child, where, logging_block)
            continue
        checked = key == "_target_" or (logging_block and key in ("class", "()"))
        if not checked and not logging_block:
            continue
        value = _resolved(node, key)
        if checked or (isinstance(value, str) and value.startswith("ext://")):
            yield where, value


def _resolved(node: DictConfig | ListConfig, key: Any) -> Any:
    """The value at ``key``, interpolations resolved; one that does not resolve is shown as written."""
    try:
        return node[key]
    except Exception:
        child = node._get_node(key)
        return child._value() if isinstance(child, Node) else None


@contextlib.contextmanager
def checking_hydra_targets(conf_dir: Path) -> Iterator[None]:
    """While the command line runs: each config Hydra composes (the run's, and each sweep point's)
    is checked by :func:`untrusted_hydra_targets` before Hydra uses it; a refusal raises
    ``ConfigError`` (exit 2), its problems naming where the target came from."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    original: Callable[..., DictConfig] = ConfigLoaderImpl.load_configuration

    def load_configuration(self: ConfigLoaderImpl, *args: Any, **kwargs: Any) -> DictConfig:
        cfg = original(self, *args, **kwargs)
        problems = untrusted_hydra_targets(cfg, trusted_by_user())
        if problems:
            from typedrunner.app.compose import annotate_sources

            with contextlib.suppress(Exception):  # where it came from, when that can be told
                problems = annotate_sources(problems, cfg.hydra, conf_dir)
            raise ConfigError(problems, title="refused: a hydra: setting names code typedrunner does not allow")
        return cfg

    ConfigLoaderImpl.load_configuration = load_configuration  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConfigLoaderImpl.load_configuration = original  # type: ignore[method-assign]
