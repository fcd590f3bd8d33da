"""Helpers of the config fuzz tests (test_fuzz_*): the hang guard, the seed config, its paths and the
properties every fuzzed config must have."""

from __future__ import annotations

import contextlib
import copy
import functools
import random
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from pydantic import BaseModel

from tests.helpers import CONF
from typedrunner.app.compose import CLI_KEYS, compose, to_plain
from typedrunner.check.cross_field import cross_field_problems
from typedrunner.config import (
    ConfigModel,
    RunnerConfig,
    TypedRunnerWarning,
)
from typedrunner.errors import ConfigError, Problem
from typedrunner.runner import Runner

# ----------------------------------------------------------------------------------------------
# Config fuzz (test_fuzz_*): the hang guard, the seed config, its paths and the properties
# ----------------------------------------------------------------------------------------------
WORK_DIR = "fuzz_work_dir"
"""The seed's work_dir: relative, so it lands in the test's ``tmp_path`` (the tests chdir there)."""
MARKER = "fuzz_marker"
"""The file every code-looking payload would create in the working directory if it ran."""

VALIDATE_LIMIT_S = 5.0
"""Wall-clock limit of one config's validation (milliseconds when healthy)."""
CHECK_LIMIT_S = 20.0
"""Wall-clock limit of one ``Runner.checked`` (well under a second when healthy)."""

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    # The fixtures (tmp_path as working directory, the SIGALRM guard) are shared by the examples on
    # purpose: the directory must stay empty across all of them, and the guard is re-armed per example.
    # Deeply nested values are large and slow to draw by design.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


class ExampleHang(BaseException):
    """One example ran past its wall-clock limit. A ``BaseException``, so that no ``except
    Exception`` in the package can turn a hang into a reported problem."""


TimeLimit = Callable[[float], contextlib.AbstractContextManager[None]]


@functools.lru_cache(maxsize=1)
def _composed_seed() -> dict[str, Any]:
    cfg = compose(["+experiment=mlp", f"work_dir={WORK_DIR}"], config_dir=str(CONF))
    data = to_plain(cfg)
    for key in CLI_KEYS:  # the command line's own keys, not Runner arguments
        data.pop(key)
    return data


def seed() -> dict[str, Any]:
    """The seed config (conf/experiment/mlp.yaml composed), as a fresh plain dict."""
    return copy.deepcopy(_composed_seed())


def small_seed() -> dict[str, Any]:
    """The seed made cheap to build and probe: small datasets, no workers, two epochs."""
    data = seed()
    for key, size in (("train_dataloader", 32), ("val_dataloader", 16)):
        loader = data[key]
        loader["dataset"]["size"] = size
        loader.update(num_workers=0, batch_size=8, pin_memory=False)
    data["train_cfg"].update(max_epochs=2, val_begin=1)
    data["param_scheduler"]["milestones"] = [1]
    return data


ConfigPath = tuple[Any, ...]


def tree_paths(value: Any, prefix: ConfigPath = ()) -> list[ConfigPath]:
    """Every node of a config, in order: dict keys and list indices from the root."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += tree_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += tree_paths(child, (*prefix, i))
    return out


def _schema_names() -> frozenset[str]:
    """Every field name (and alias) of every schema: the canonical keys a path may use although the
    input spelled them another way (``val_evaluator: [m]`` is ``val_evaluator.metrics[0]``)."""
    names: set[str] = set()
    todo: list[type[BaseModel]] = [ConfigModel]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        for name, field in cls.model_fields.items():
            names |= {name, field.alias or name}
    return frozenset(names)


SCHEMA_NAMES = _schema_names()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def _nodes(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(rendered path, node)`` for every node of the input (iterative: inputs nest hundreds deep)."""
    todo = [(prefix, value)]
    while todo:
        path, node = todo.pop()
        yield path, node
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, int) and not isinstance(key, bool):
                    todo.append((f"{path}[{key}]", child))
                else:
                    todo.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(node, list):
            todo += [(f"{path}[{i}]", child) for i, child in enumerate(node)]


_MISSING = re.compile(r"(.*)(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])")


class InputPaths:
    """The paths of one input config, to judge the paths of its problems."""

    def __init__(self, data: Any) -> None:
        self.top = {str(k) for k in data} if isinstance(data, dict) else set()
        self.nodes: dict[str, Any] = dict(_nodes(data))
        self.keys = {str(k) for node in self.nodes.values() if isinstance(node, dict) for k in node}

    def sound(self, path: str) -> bool:
        """The path names a node of the input; or a key (a field or argument name) or an index
        missing from a node that exists; or is spelled with the input's own keys and the schemas'
        canonical field names (no union tags or other validator internals)."""
        if path in self.nodes or _IDENTIFIER.fullmatch(path):
            return True
        missing = _MISSING.fullmatch(path)
        if missing is not None and missing.group(1) in self.nodes:
            return True
        parts = [m.group(2) for m in _PART.finditer(path) if m.group(2) is not None]
        return (
            bool(parts)
            and parts[0] in (self.top | set(RunnerConfig.model_fields))
            and set(parts) <= self.keys | SCHEMA_NAMES
        )


def assert_problems_have_paths(error: ConfigError, data: Any) -> None:
    assert error.problems, "a ConfigError must list at least one problem"
    paths = InputPaths(data)
    for problem in error.problems:
        assert isinstance(problem, Problem)
        assert isinstance(problem.message, str) and problem.message.strip(), problem
        assert isinstance(problem.path, str), problem
        if problem.path == "":  # whole-config problems: RunnerConfig's check across two fields
            assert "param_scheduler" in problem.message and "optim_wrapper" in problem.message, problem
        else:
            assert paths.sound(problem.path), f"problem path {problem.path!r} is unsound: {problem.render()}"
        assert problem.render()
    assert str(error)


WATCHED_MODULES = ("wave", "tabnanny", "filecmp")
"""Module names that the fuzz puts into configs as plain data: validating must not import them."""


def get_at(data: Any, path: ConfigPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _strings_outside_types(value: Any, key: Any = None) -> Iterator[str]:
    """Strings of the config that are data (not a ``type`` nor a ``custom_imports`` entry)."""
    if key in ("type", "custom_imports", "imports"):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings_outside_types(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings_outside_types(v, key)


def _named_for_import(value: Any, key: Any = None) -> Iterator[str]:
    """Strings that a ``type`` or ``custom_imports`` may legitimately import (and their parents)."""
    if isinstance(value, str) and key in ("type", "custom_imports", "imports"):
        parts = value.replace(":", ".").split(".")
        yield from (".".join(parts[: i + 1]) for i in range(len(parts)))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _named_for_import(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _named_for_import(v, key)


def check_config(data: dict[str, Any], work_dir: Path) -> RunnerConfig | None:
    """``from_dict`` validates or raises ``ConfigError`` with paths; it writes and imports nothing."""
    watched = [
        name
        for name in set(_strings_outside_types(data)) - set(_named_for_import(data))
        if name in WATCHED_MODULES and name not in sys.modules
    ]
    pristine = copy.deepcopy(data)
    cfg: RunnerConfig | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cfg = RunnerConfig.from_dict(data)
        except ConfigError as error:
            assert_problems_have_paths(error, pristine)
    env = pristine.get("env_cfg")
    for warning in caught:
        assert issubclass(warning.category, TypedRunnerWarning), warning
        assert isinstance(env, Mapping) and "backend" in env, warning
    assert not [name for name in watched if name in sys.modules], "a module named only as data was imported"
    assert not list(work_dir.iterdir()), "validating a config wrote files"
    if cfg is not None:
        for problem in cross_field_problems(cfg):
            assert isinstance(problem, Problem) and problem.path and problem.message, problem
    return cfg


@contextlib.contextmanager
def _global_state_restored() -> Iterator[None]:
    """``Runner`` seeds the global RNGs and may switch torch to deterministic algorithms."""
    python_rng, torch_rng = random.getstate(), torch.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    try:
        yield
    finally:
        random.setstate(python_rng)
        torch.set_rng_state(torch_rng)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


def check_runner(cfg: RunnerConfig, work_dir: Path) -> None:
    """``Runner.checked`` builds or raises ``ConfigError`` (a ``ContractError`` included); it writes nothing."""
    with _global_state_restored(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Runner.checked(cfg)
        except ConfigError as error:
            assert error.problems and all(p.message for p in error.problems)
    assert not [w for w in caught if not issubclass(w.category, TypedRunnerWarning)], [str(w.message) for w in caught]
    assert not list(work_dir.iterdir()), f"Runner.checked wrote {sorted(p.name for p in work_dir.iterdir())}"
