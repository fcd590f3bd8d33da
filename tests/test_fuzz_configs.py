"""Property tests: every config, however broken, validates or raises ``ConfigError`` with paths.

Random and mutated configs (wrong types, huge and negative numbers, NaN and infinities, unicode and
control characters, ``${...}`` and ``{}`` strings, deep nesting, wrong ``type`` names, dotted paths to
functions and to modules that do not exist, YAML oddities through Hydra's command-line overrides) go
through ``RunnerConfig.from_dict``. Each one either validates or raises ``ConfigError`` whose every
problem has a message and a sound path: a node of the input, a key or index missing from a node that
exists, or the input's keys spelled with the schemas' canonical field names; ``''`` only for the
whole-config check. Never another exception, a hang (a SIGALRM limit per example) or a file in the
working directory. Validated configs go through ``cross_field_problems``, cheap ones through
``Runner.checked`` too, which must write nothing. Config values are data: code-looking strings never
run, a ``type`` naming a function or a class of the wrong kind is refused, and a module named by a
plain string is not imported.

Configs fuzzed per run: 1,436, the same ones every run (derandomized, no example database):
730 drawn by hypothesis (300 random top-level configs, 300 mutated seeds, 100 cheap mutations also
built by ``Runner.checked``, 30 random Hydra override sets) and 706 written out (576 payload
placements, 45 code-naming types, 5 collate functions, 3 import checks, 58 Hydra compositions,
2 seeds, 17 reproductions of known bugs).

The package bugs this found were fixed; each keeps its reproduction at the end of the file
(``test_bug_...``) as a regression test.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import math
import random
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import hydra
import pytest
import torch
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel

from typedrunner.compose import CLI_KEYS, compose, to_plain, to_runner_config
from typedrunner.config import ConfigModel, RunnerConfig, TypedRunnerWarning
from typedrunner.contract import cross_field_problems
from typedrunner.errors import ConfigError, Problem
from typedrunner.runner import Runner

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
WORK_DIR = "fuzz_work_dir"
"""The seed's work_dir: relative, so it lands in the test's ``tmp_path`` (the tests chdir there)."""
MARKER = "fuzz_marker"
"""The file every code-looking payload would create in the working directory if it ran."""

VALIDATE_LIMIT_S = 5.0
"""Wall-clock limit of one config's validation (milliseconds when healthy)."""
CHECK_LIMIT_S = 20.0
"""Wall-clock limit of one ``Runner.checked`` (well under a second when healthy)."""
COMPOSE_LIMIT_S = 10.0
"""Wall-clock limit of one Hydra composition plus validation."""

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    # The fixtures (tmp_path as working directory, the SIGALRM guard) are shared by the examples on
    # purpose: the directory must stay empty across all of them, and the guard is re-armed per example.
    # Deeply nested values are large and slow to draw by design.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------------------------
# The hang guard
# ---------------------------------------------------------------------------------------------
class ExampleHang(BaseException):
    """One example ran past its wall-clock limit. A ``BaseException``, so that no ``except
    Exception`` in the package can turn a hang into a reported problem."""


TimeLimit = Callable[[float], contextlib.AbstractContextManager[None]]


@pytest.fixture
def time_limit() -> Iterator[TimeLimit]:
    """``with time_limit(seconds): ...`` raises ``ExampleHang`` when the block runs too long (SIGALRM)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise ExampleHang("an example ran past its wall-clock limit (a hang)")

    @contextlib.contextmanager
    def limit(seconds: float) -> Iterator[None]:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield limit
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty ``tmp_path``: relative work_dirs and every payload's marker land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_time_limit_fires_on_a_hang(time_limit: TimeLimit) -> None:
    with pytest.raises(ExampleHang), time_limit(0.05):
        while True:
            pass


# ---------------------------------------------------------------------------------------------
# The seed config and its paths
# ---------------------------------------------------------------------------------------------
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


def _tree_paths(value: Any, prefix: ConfigPath = ()) -> list[ConfigPath]:
    """Every node of a config, in order: dict keys and list indices from the root."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _tree_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _tree_paths(child, (*prefix, i))
    return out


def _render(path: ConfigPath) -> str:
    """A path as ``errors.format_path`` writes it: ``a.b[0].c``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
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


def _assert_problems_have_paths(error: ConfigError, data: Any) -> None:
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


# ---------------------------------------------------------------------------------------------
# Strategies: random JSON-like values
# ---------------------------------------------------------------------------------------------
TOP_LEVEL_KEYS = [*RunnerConfig.model_fields, "check", "strict", "type", "Model", "train-cfg", "_base_"]
NESTED_KEYS = [
    "type",
    "lr",
    "optimizer",
    "dataset",
    "metrics",
    "imports",
    "backend",
    "dist_cfg",
    "path",
    "max_epochs",
    "by_epoch",
    "interval",
    "milestones",
    "layers",
    "priority",
    "constructor",
    "batch_size",
    "size",
    "is_train",
    "",
    "ключ",
    "日本",
    "${x}",
    "{}",
]

HUGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63, -(2**63), 2**64, 2**70, -(2**70), 10**30, -(10**400)]
ODD_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324, 1e-7, 0.5, 1e16 + 1]
WATCHED_MODULES = ("wave", "tabnanny", "filecmp")
"""Module names that the fuzz puts into configs as plain data: validating must not import them."""
RESERVED_MODULES = ("json.tool", "pyclbr", "sched")
"""Module names no strategy draws: kept unimported for the example-based import tests."""
ODD_STRINGS = [
    "",
    " ",
    "{",
    "}",
    "{}",
    "{0}",
    "{x}",
    "%s",
    "${oc.env:HOME}",
    "${oc.decode:'[1, 2]'}",
    "${now:%Y}",
    "${foo.bar}",
    "${",
    "\x00",
    "\n",
    "\t\r",
    "\x1b[31m",
    "\u202e",
    "\ufeff",
    "\ud800",
    "é",
    "日本語",
    "😀",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "None",
    "~",
    "true",
    "True",
    "1e400",
    "0x10",
    "nan",
    ".inf",
    "-1",
    "1_000",
    "auto",
    "INFO",
    "relu",
    "Adam",
    "MultiStepLR",
    "default_collate",
    "examples.seed_mlp",
    "a" * 300,
    "x/" * 3000,
    "../../etc/passwd",
    "/",
    "<component>",
    "<Adam>",
    "[0]",
    "a.b[0]",
    *WATCHED_MODULES,
    f"__import__('os').system('touch {MARKER}')",
    f"!!python/object/apply:os.system ['touch {MARKER}']",
    f"open('{MARKER}', 'w').write('x')",
    f"$(touch {MARKER})",
]
TYPE_NAMES = [
    "MyAwesomeModel",
    "MyDataset",
    "Accuracy",
    "Adam",
    "AdamW",
    "SGD",
    "RMSprop",
    "MultiStepLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "DefaultSampler",
    "SequentialSampler",
    "CheckpointHook",
    "LoggerHook",
    "EMAHook",
    "default_collate",
    "pseudo_collate",
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "ValLoop",
    "Evaluator",
    "OptimWrapper",
    "AmpOptimWrapper",
    "norm",
    "myawesomemodel",
    "MyAwesomeModle",
    "adam",
    "os.path.join",
    "json.loads",
    "collections.OrderedDict",
    "collections:OrderedDict",
    "builtins.object",
    "builtins.int",
    "torch.nn.Linear",
    "torch.nn.Module",
    "torch.optim.Adam",
    "torch.optim.Optimizer",
    "torch.optim.lr_scheduler.LRScheduler",
    "torch.utils.data.TensorDataset",
    "torch.utils.data.ConcatDataset",
    "typedrunner.hooks.Hook",
    "typedrunner.evaluator.BaseMetric",
    "examples.seed_mlp.MyAwesomeModel",
    "examples.seed_mlp",
    "subprocess.Popen",
    "os.system",
    "builtins.eval",
    "builtins.exec",
    "no_such_module_fuzz.Thing",
    "no_such_module_fuzz",
    "no_such_module_fuzz.sub.Thing",
    "os.path.no_such_attribute",
    "..x",
    ".x",
    "a..b",
    ".",
    ":",
    "os:",
    "_private",
    "__class__",
]


def _safe_text(text: str) -> str:
    """Random text that happens to name an importable, not yet imported module is renamed, so that
    the fuzz never imports arbitrary modules (``this`` prints, ``antigravity`` opens a browser)."""
    top = text.replace(":", ".").split(".")[0]
    if not top or top in sys.modules:
        return text
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    return f"zz{text}" if found else text


texts = st.text(max_size=24).map(_safe_text)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.sampled_from(ODD_FLOATS),
    texts,
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(TYPE_NAMES),
)
keys: st.SearchStrategy[Any] = st.one_of(st.sampled_from(NESTED_KEYS), texts, st.integers(-3, 3))


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"x": value}
    return value


values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        st.builds(_nest, children, st.integers(1, 6), st.booleans()),
    ),
    max_leaves=16,
)
"""Fully random JSON-like values (plus int keys, as YAML gives), nested up to about six levels."""

deep_values: st.SearchStrategy[Any] = st.builds(_nest, scalars, st.integers(20, 200), st.booleans())
any_values = st.one_of(values, values, values, deep_values)


# ---------------------------------------------------------------------------------------------
# Strategies: mutations of the seed
# ---------------------------------------------------------------------------------------------
def _get(data: Any, path: ConfigPath) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def typos(draw: st.DrawFn, key: Any) -> Any:
    """A misspelling of ``key``: a character dropped, doubled or swapped, case, a homoglyph, ..."""
    if not isinstance(key, str) or not key:
        return draw(keys)
    i = draw(st.integers(0, len(key) - 1))
    kind = draw(st.sampled_from(["drop", "double", "swap", "upper", "suffix", "dash", "homoglyph", "space", "random"]))
    if kind == "drop":
        return key[:i] + key[i + 1 :]
    if kind == "double":
        return key[:i] + key[i] + key[i:]
    if kind == "swap" and len(key) > 1:
        j = min(i + 1, len(key) - 1)
        chars = list(key)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    if kind == "upper":
        return key.upper()
    if kind == "suffix":
        return key + draw(st.sampled_from(["s", "_", "1", "\x00"]))
    if kind == "dash":
        return key.replace("_", "-")
    if kind == "homoglyph":
        return key.replace("a", "\u0430").replace("e", "\u0435").replace("o", "\u043e")
    if kind == "space":
        return f" {key}"
    return draw(keys)


def _respelled(value: Any) -> list[Any]:
    """The same value as a YAML file might mistype it."""
    if isinstance(value, bool):
        return [str(value).lower(), "yes", int(value), [value]]
    if isinstance(value, int):
        return [str(value), float(value), value + 0.5, -value, value * 2**64, bool(value)]
    if isinstance(value, float):
        return [str(value), int(value) if math.isfinite(value) else value, -value, math.nan]
    if isinstance(value, str):
        return [value.upper(), f" {value} ", value.encode(), [value], value + "\x00", ""]
    if value is None:
        return ["null", "~", "None", 0, []]
    return [str(value), None]


MUTATIONS = ["delete", "rename", "replace", "retype", "deepen", "flip", "add_key", "respell"]


@st.composite
def mutated_configs(draw: st.DrawFn, base: Callable[[], dict[str, Any]] = seed) -> dict[str, Any]:
    """The seed with one to three random mutations at random paths."""
    data = base()
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _tree_paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent, key = _get(data, path[:-1]), path[-1]
        node = parent[key]
        op = draw(st.sampled_from(MUTATIONS))
        if op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(typos(key))] = parent.pop(key)
        elif op == "retype":
            dicts = [p for p in _tree_paths(data) if isinstance(_get(data, p), dict)]
            target = _get(data, draw(st.sampled_from(dicts)))
            target["type"] = draw(st.one_of(st.sampled_from(TYPE_NAMES), st.sampled_from(TYPE_NAMES), any_values))
        elif op == "deepen":
            parent[key] = _nest(node, draw(st.integers(1, 60)), draw(st.booleans()))
        elif op == "flip":
            if isinstance(node, dict):
                parent[key] = draw(st.sampled_from([list(node.values()), [node], list(node)]))
            elif isinstance(node, list):
                by_index = {str(i): v for i, v in enumerate(node)}
                parent[key] = draw(st.sampled_from([by_index, dict.fromkeys(by_index)]))
            else:
                parent[key] = draw(st.sampled_from([[node], {"value": node}, {"type": node}]))
        elif op == "add_key" and isinstance(node, dict):
            node[draw(keys)] = draw(any_values)
        elif op == "respell":
            parent[key] = draw(st.sampled_from(_respelled(node)))
        else:  # replace (and rename / add_key where the node is not a mapping)
            parent[key] = draw(any_values)
    return data


@st.composite
def random_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Random values at random top-level keys, with a valid model half of the time."""
    data: dict[str, Any] = draw(st.dictionaries(st.sampled_from(TOP_LEVEL_KEYS) | texts, any_values, max_size=6))
    if draw(st.booleans()):
        data.setdefault("model", {"type": "torch.nn.Linear", "in_features": 2, "out_features": 2})
    return data


# ---------------------------------------------------------------------------------------------
# The property
# ---------------------------------------------------------------------------------------------
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
            _assert_problems_have_paths(error, pristine)
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


@settings(FUZZ, max_examples=300)
@given(data=random_configs())
def test_random_configs_validate_or_report_paths(data: dict[str, Any], in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(VALIDATE_LIMIT_S):
        check_config(data, in_tmp)


@settings(FUZZ, max_examples=300)
@given(data=mutated_configs())
def test_mutated_seeds_validate_or_report_paths(data: dict[str, Any], in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(VALIDATE_LIMIT_S):
        check_config(data, in_tmp)


def test_seed_validates(in_tmp: Path) -> None:
    """The mutations start from a valid config (else every mutation would be an error anyway)."""
    assert isinstance(check_config(seed(), in_tmp), RunnerConfig)
    assert isinstance(check_config(small_seed(), in_tmp), RunnerConfig)


# ---------------------------------------------------------------------------------------------
# Validated configs are built by Runner.checked, which writes nothing
# ---------------------------------------------------------------------------------------------
CHEAP_PATHS: list[ConfigPath] = [
    ("experiment_name",),
    ("work_dir",),
    ("launcher",),
    ("log_level",),
    ("resume",),
    ("load_from",),
    ("randomness",),
    ("randomness", "seed"),
    ("randomness", "deterministic"),
    ("log_processor",),
    ("log_processor", "window_size"),
    ("model", "layers"),
    ("model", "activation"),
    ("model", "type"),
    ("train_cfg",),
    ("train_cfg", "by_epoch"),
    ("train_cfg", "max_epochs"),
    ("train_cfg", "max_iters"),
    ("train_cfg", "val_begin"),
    ("train_cfg", "val_interval"),
    ("train_cfg", "type"),
    ("val_cfg",),
    ("val_cfg", "fp16"),
    ("optim_wrapper", "type"),
    ("optim_wrapper", "clip_grad"),
    ("optim_wrapper", "accumulative_counts"),
    ("optim_wrapper", "nonfinite"),
    ("optim_wrapper", "optimizer", "type"),
    ("optim_wrapper", "optimizer", "lr"),
    ("optim_wrapper", "optimizer", "weight_decay"),
    ("param_scheduler",),
    ("param_scheduler", "type"),
    ("param_scheduler", "by_epoch"),
    ("param_scheduler", "milestones"),
    ("param_scheduler", "gamma"),
    ("param_scheduler", "begin"),
    ("param_scheduler", "end"),
    ("default_hooks", "checkpoint"),
    ("default_hooks", "checkpoint", "interval"),
    ("default_hooks", "checkpoint", "by_epoch"),
    ("default_hooks", "checkpoint", "save_best"),
    ("default_hooks", "checkpoint", "save_last"),
    ("default_hooks", "logger"),
    ("default_hooks", "logger", "interval"),
    ("default_hooks", "param_scheduler"),
    ("val_evaluator",),
    ("val_evaluator", "type"),
    ("train_dataloader", "batch_size"),
    ("train_dataloader", "drop_last"),
    ("train_dataloader", "shuffle"),
    ("train_dataloader", "sampler"),
    ("train_dataloader", "sampler", "shuffle"),
    ("train_dataloader", "collate_fn", "type"),
    ("train_dataloader", "dataset", "size"),
    ("train_dataloader", "dataset", "is_train"),
    ("val_dataloader",),
    ("val_dataloader", "batch_size"),
    ("val_dataloader", "dataset", "size"),
    ("custom_hooks",),
    ("auto_scale_lr",),
]
"""Paths whose values keep a build cheap (no worker processes, no torch.compile, no huge sizes)."""

cheap_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 12),
    st.sampled_from([0.0, 0.1, 1e-3, -1.0, math.nan, math.inf, 1e308]),
    st.sampled_from(
        ["", "auto", "yes", "{}", "${oc.env:HOME}", "日本", "\x00", "INFO", "iter", "norm", "relu", "none", "silu"]
    ),
    st.sampled_from(
        [
            "SGD",
            "AdamW",
            "RMSprop",
            "CosineAnnealingLR",
            "LinearLR",
            "StepLR",
            "OneCycleLR",
            "ReduceOnPlateauLR",
            "IterBasedTrainLoop",
            "AmpOptimWrapper",
            "Accuracy",
            "MyAwesomeModel",
            "torch.nn.Linear",
            "pseudo_collate",
            "default_collate",
            "SequentialSampler",
            "RandomSampler",
            "EMAHook",
            "EarlyStoppingHook",
            "no_such_module_fuzz.Thing",
        ]
    ),
    st.lists(st.integers(-1, 6), max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["EMAHook", "EarlyStoppingHook", "Accuracy", "CheckpointHook", "norm"]),
            "max_norm": st.sampled_from([1.0, -1.0]),
            "seed": st.integers(-1, 3),
            "interval": st.integers(0, 3),
            "monitor": st.just("accuracy"),
            "enable": st.booleans(),
            "base_batch_size": st.integers(0, 16),
        },
    ),
)


PLAUSIBLE: dict[ConfigPath, list[Any]] = {
    ("experiment_name",): ["exp", "日本語", "a b", "${oc.env:HOME}"],
    ("resume",): ["auto", False],
    ("log_level",): ["DEBUG", "ERROR"],
    ("randomness",): [{"seed": 0, "deterministic": True}, {"diff_rank_seed": True}],
    ("randomness", "seed"): [0, 2**32 - 1],
    ("log_processor",): [{"window_size": 1, "by_epoch": False, "num_digits": 12}],
    ("model", "layers"): [1, 3],
    ("model", "activation"): ["silu", "none"],
    ("train_cfg",): [{"by_epoch": False, "max_iters": 3, "val_interval": 1}, {"max_epochs": 1}],
    ("train_cfg", "max_epochs"): [1, 3],
    ("train_cfg", "val_interval"): [1, 2],
    ("val_cfg", "fp16"): [False],
    ("optim_wrapper", "type"): ["AmpOptimWrapper"],
    ("optim_wrapper", "clip_grad"): [{"max_norm": 1.0}, {"type": "value", "clip_value": 0.5}],
    ("optim_wrapper", "accumulative_counts"): [2, 3],
    ("optim_wrapper", "nonfinite"): ["skip"],
    ("optim_wrapper", "optimizer", "type"): ["SGD", "AdamW", "RMSprop", "Adagrad", "torch.optim.SGD"],
    ("optim_wrapper", "optimizer", "lr"): [0.1, 1e-6],
    ("param_scheduler",): [
        [],
        None,
        {"type": "CosineAnnealingLR", "T_max": 2},
        [{"type": "LinearLR", "by_epoch": False, "end": 3}, {"type": "StepLR", "step_size": 1}],
        {"type": "ConstantLR", "factor": 0.5},
    ],
    ("param_scheduler", "milestones"): [[1], [1, 1]],
    ("param_scheduler", "gamma"): [0.5, 2.0],
    ("default_hooks", "checkpoint"): [None, {"interval": 2, "save_best": "accuracy", "rule": "greater"}],
    ("default_hooks", "checkpoint", "save_best"): ["auto", "accuracy", "loss", "no_such_metric"],
    ("default_hooks", "logger", "interval"): [1, 100],
    ("val_evaluator",): [[{"type": "Accuracy"}], {"type": "Evaluator", "metrics": {"type": "Accuracy"}}],
    ("train_dataloader", "batch_size"): [1, 32, 33],
    ("train_dataloader", "drop_last"): [True],
    ("train_dataloader", "sampler"): [{"type": "SequentialSampler"}, {"type": "DefaultSampler", "seed": 1}],
    ("train_dataloader", "collate_fn", "type"): ["pseudo_collate", "torch.utils.data.default_collate"],
    ("train_dataloader", "dataset", "size"): [1, 7],
    ("val_dataloader",): [None],
    ("val_dataloader", "batch_size"): [1, 100],
    ("custom_hooks",): [
        [{"type": "EMAHook"}],
        [{"type": "EarlyStoppingHook", "monitor": "accuracy"}],
        [{"type": "EmptyCacheHook", "priority": "LOWEST"}],
    ],
    ("auto_scale_lr",): [{"enable": True, "base_batch_size": 16}],
}
"""Values that keep the config valid (or nearly), so that many cheap configs reach ``Runner.checked``."""


@st.composite
def cheap_configs(draw: st.DrawFn) -> dict[str, Any]:
    """The small seed with one to three cheap paths set to plausible or odd small values, or deleted."""
    data = small_seed()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(CHEAP_PATHS))
        try:
            parent = _get(data, path[:-1])
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, dict):
            continue
        choice = draw(st.integers(0, 5))
        if choice == 0:
            parent.pop(path[-1], None)
        elif choice <= 2 and path in PLAUSIBLE:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(PLAUSIBLE[path])))
        else:
            parent[path[-1]] = draw(cheap_values)
    return data


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


@settings(FUZZ, max_examples=100)
@given(data=cheap_configs())
def test_cheap_configs_build_or_report(data: dict[str, Any], in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(VALIDATE_LIMIT_S):
        cfg = check_config(data, in_tmp)
    if cfg is not None:
        with time_limit(CHECK_LIMIT_S):
            check_runner(cfg, in_tmp)


# ---------------------------------------------------------------------------------------------
# Config values are data
# ---------------------------------------------------------------------------------------------
PAYLOADS = [
    f"__import__('os').system('touch {MARKER}')",
    f"exec(\"open('{MARKER}', 'w').write('x')\")",
    f"open('{MARKER}', 'w').write('x')",
    "${oc.env:HOME}",
    f"${{oc.decode:'!!python/object/apply:os.system [\"touch {MARKER}\"]'}}",
    f"!!python/object/apply:os.system ['touch {MARKER}']",
    f"!!python/object/new:subprocess.Popen [['touch', '{MARKER}']]",
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f"{{__import__('os').system('touch {MARKER}')}}",
    f"lambda: __import__('os').system('touch {MARKER}')",
    f"os.system:touch {MARKER}",
]
FREE_TEXT_FIELDS: list[ConfigPath] = [("experiment_name",), ("work_dir",)]


def _with_value(data: dict[str, Any], path: ConfigPath, value: Any) -> dict[str, Any]:
    _get(data, path[:-1])[path[-1]] = value
    return data


@pytest.mark.parametrize("payload", PAYLOADS)
def test_code_looking_strings_in_every_field_are_data(payload: str, in_tmp: Path, time_limit: TimeLimit) -> None:
    """The payload at every leaf of the seed, one config per leaf: it never runs, and where a field
    takes free text the payload is kept verbatim."""
    base = small_seed()
    for path in [p for p in _tree_paths(base) if p and not isinstance(_get(base, p), (dict, list))]:
        with time_limit(VALIDATE_LIMIT_S):
            check_config(_with_value(small_seed(), path, payload), in_tmp)
        assert not (in_tmp / MARKER).exists()
    for path in FREE_TEXT_FIELDS:
        cfg = check_config(_with_value(small_seed(), path, payload), in_tmp)
        assert cfg is not None
        assert getattr(cfg, path[0]) == payload
        with time_limit(CHECK_LIMIT_S):
            check_runner(cfg, in_tmp)
        assert not (in_tmp / MARKER).exists()


COMPONENT_PATHS: list[ConfigPath] = [
    ("model",),
    ("data_preprocessor",),
    ("train_dataloader", "dataset"),
    ("train_dataloader", "sampler"),
    ("val_evaluator",),
    ("custom_hooks", 0),
    ("optim_wrapper", "optimizer"),
    ("param_scheduler",),
    ("train_dataloader", "collate_fn"),
]
CODE_TARGETS: dict[str, dict[str, Any]] = {
    "os.system": {"command": f"touch {MARKER}"},
    "builtins.eval": {"source": f"open('{MARKER}', 'w').write('x')"},
    "builtins.exec": {"source": f"open('{MARKER}', 'w').write('x')"},
    "subprocess.Popen": {"args": ["touch", MARKER]},
    "subprocess.run": {"args": ["touch", MARKER]},
}


def _component_config(path: ConfigPath, target: str) -> dict[str, Any]:
    data = small_seed()
    data["custom_hooks"] = [None]
    data["data_preprocessor"] = None
    return _with_value(data, path, {"type": target, **CODE_TARGETS[target]})


@pytest.mark.parametrize(
    ("path", "target"),
    [
        pytest.param(
            path,
            target,
            id=f"{_render(path)}={target}",
        )
        for path in COMPONENT_PATHS
        for target in CODE_TARGETS
    ],
)
def test_a_type_naming_code_is_refused(path: ConfigPath, target: str, in_tmp: Path, time_limit: TimeLimit) -> None:
    data = _component_config(path, target)
    with time_limit(VALIDATE_LIMIT_S), pytest.raises(ConfigError) as error:
        RunnerConfig.from_dict(data)
    assert not (in_tmp / MARKER).exists()
    _assert_problems_have_paths(error.value, data)
    where = _render(path)
    assert any(p.path.startswith(f"{where}.type") for p in error.value.problems), error.value.render()


@pytest.mark.parametrize("target", list(CODE_TARGETS))
def test_a_collate_fn_naming_code_never_creates_the_marker(target: str, in_tmp: Path, time_limit: TimeLimit) -> None:
    """Whatever validation decides about a collate function (see the xfail above), building and
    probing the config does not run the payload."""
    with time_limit(VALIDATE_LIMIT_S):
        cfg = check_config(_component_config(("train_dataloader", "collate_fn"), target), in_tmp)
    if cfg is not None:
        with time_limit(CHECK_LIMIT_S):
            check_runner(cfg, in_tmp)
    assert not (in_tmp / MARKER).exists()


def test_a_module_named_in_a_plain_field_is_not_imported(in_tmp: Path) -> None:
    """Importing happens only for ``custom_imports`` and ``type`` paths: ``json.tool`` as a plain
    string (or as the ``type`` of a typed schema, which is a name, never a path) is not imported."""
    name = "json.tool"
    assert name not in sys.modules, "precondition: nothing imported json.tool yet"
    data = small_seed()
    data.update(experiment_name=name, work_dir=name, load_from=name)
    data["model"]["activation"] = name
    data["train_cfg"]["type"] = name
    data["optim_wrapper"]["type"] = name
    data["default_hooks"]["checkpoint"]["save_best"] = name
    data["default_hooks"]["checkpoint"]["out_dir"] = name
    data["train_dataloader"]["dataset"]["extra"] = name
    check_config(data, in_tmp)
    assert name not in sys.modules
    data = small_seed()
    data.update(experiment_name=name)
    assert check_config(data, in_tmp) is not None
    assert name not in sys.modules


def test_custom_imports_and_type_paths_do_import(in_tmp: Path) -> None:
    """The counterpart, so that the check above can fail: ``custom_imports`` and a ``type`` path import."""
    assert "pyclbr" not in sys.modules and "sched" not in sys.modules, "precondition: neither imported yet"
    data = small_seed()
    data["custom_imports"] = [*data["custom_imports"], "pyclbr"]
    data["model"]["type"] = "sched.NoSuchModel"
    check_config(data, in_tmp)
    assert "pyclbr" in sys.modules and "sched" in sys.modules


# ---------------------------------------------------------------------------------------------
# YAML oddities through Hydra
# ---------------------------------------------------------------------------------------------
HYDRA_DIR = Path(hydra.__file__).resolve().parent


def _raised_by_hydra(error: BaseException) -> bool:
    """Hydra's own refusal: a ``HydraException``, or another exception raised inside Hydra's code
    (its override visitor raises a bare ``ValueError`` for ``=1``), before typedrunner sees anything."""
    if isinstance(error, HydraException):
        return True
    frames = list(traceback.walk_tb(error.__traceback__))
    return bool(frames) and Path(frames[-1][0].f_code.co_filename).resolve().is_relative_to(HYDRA_DIR)


def check_composed(overrides: list[str], work_dir: Path) -> None:
    """Hydra refuses the overrides with its own exception, or the composed config validates or
    raises ``ConfigError`` whose paths exist in the composition."""
    try:
        composed = compose(["+experiment=mlp", f"work_dir={WORK_DIR}", *overrides], config_dir=str(CONF))
    except Exception as error:
        assert _raised_by_hydra(error), f"composition failed outside Hydra: {error!r}"
        return
    raw = OmegaConf.to_container(composed, resolve=False)
    assert isinstance(composed, DictConfig) and isinstance(raw, dict)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            to_runner_config(composed)
        except ConfigError as error:
            _assert_problems_have_paths(error, raw)
    env = raw.get("env_cfg")
    for warning in caught:
        assert issubclass(warning.category, TypedRunnerWarning), warning
        assert isinstance(env, dict) and "backend" in env, warning
    assert not list(work_dir.iterdir())


HYDRA_OVERRIDES = [
    "experiment_name='yes'",
    "experiment_name=yes",
    "experiment_name=null",
    "experiment_name=''",
    "experiment_name=日本語",
    "experiment_name=${oc.env:NO_SUCH_VARIABLE_FOR_FUZZ}",
    "experiment_name=${no_such_key}",
    f"experiment_name='!!python/object/apply:os.system [\"touch {MARKER}\"]'",
    f"experiment_name=${{oc.decode:'!!python/object/apply:os.system [touch {MARKER}]'}}",
    f"experiment_name=\"__import__('os').system('touch {MARKER}')\"",
    "train_cfg.max_epochs=1e400",
    "train_cfg.max_epochs=nan",
    f"train_cfg.max_epochs={2**70}",
    f"train_cfg.max_epochs={-(2**70)}",
    "train_cfg.max_epochs=1_0",
    "train_cfg.max_epochs='10'",
    "train_cfg.max_epochs=true",
    "train_cfg=null",
    "train_cfg=[]",
    "~train_cfg",
    "~model",
    "model.layers=0x10",
    "model.layers=int(3)",
    "model.layers=choice(1,2)",
    "model.layers=range(3)",
    "model.activation=null",
    "model.type=os.system",
    "model.type=subprocess.Popen",
    "+model.extra=[1,[2,[3]]]",
    "+model.extra={a:{b:{c:1}}}",
    "+model.ключ=1",
    "+ключ=1",
    "+model.\x00=1",
    "model=no_such_option",
    "optim_wrapper=sgd",
    "param_scheduler=cosine",
    "optim_wrapper.optimizer.lr=.inf",
    "param_scheduler.milestones=[a,b]",
    "env_cfg.backend=gloo",
    "+env_cfg.backend=gloo",
    "env_cfg.dist_cfg=[]",
    "custom_imports=[filecmp]",
    "custom_imports=null",
    "launcher=slurm",
    "check=yes",
    "default_hooks.checkpoint=null",
    "load_from=does/not/exist.pth",
    "resume=maybe",
    "=1",
    "model..layers=2",
    "model.layers=[",
    "model.layers=${",
]


@pytest.mark.parametrize("override", HYDRA_OVERRIDES)
def test_hydra_overrides_with_odd_values(override: str, in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(COMPOSE_LIMIT_S):
        check_composed([override], in_tmp)
    assert not (in_tmp / MARKER).exists()


def test_hydra_parse_errors_are_hydras(in_tmp: Path) -> None:
    """The override parser's errors reach the caller as Hydra's exceptions, before typedrunner runs."""
    for override in ("model.layers=[", "model.layers='unterminated", "model.layers=choice(1,2)", "model..layers=2"):
        with pytest.raises(HydraException):
            compose(["+experiment=mlp", f"work_dir={WORK_DIR}", override], config_dir=str(CONF))
    with pytest.raises(ValueError, match="Config group override must be a string") as error:
        compose(["+experiment=mlp", f"work_dir={WORK_DIR}", "=1"], config_dir=str(CONF))
    assert _raised_by_hydra(error.value)


def test_a_python_tag_in_a_conf_file_never_runs(in_tmp: Path, time_limit: TimeLimit) -> None:
    """A ``!!python/...`` YAML tag in a config file is refused by OmegaConf's safe loader."""
    import shutil

    conf = in_tmp / "conf"
    shutil.copytree(CONF, conf)
    (conf / "experiment" / "evil.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - mlp\n  - _self_\n"
        f"experiment_name: !!python/object/apply:os.system ['touch {MARKER}']\n",
        encoding="utf-8",
    )
    with time_limit(COMPOSE_LIMIT_S), pytest.raises(Exception, match="python/object/apply") as error:
        compose(["+experiment=evil", f"work_dir={WORK_DIR}"], config_dir=str(conf))
    assert type(error.value).__module__ == "yaml.constructor", repr(error.value)  # the safe loader's refusal
    assert not (in_tmp / MARKER).exists()


OVERRIDE_VALUES = [
    "yes",
    "no",
    "on",
    "off",
    "null",
    "~",
    "true",
    "FALSE",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "0x10",
    "0b11",
    "1_000",
    str(2**70),
    str(-(2**70)),
    "-1",
    "0",
    "0.5",
    "''",
    "'yes'",
    "[]",
    "{}",
    "[1,[2,[3]]]",
    "{a:{b:1}}",
    "日本語",
    "'${oc.env:HOME}'",
    "${oc.env:NO_SUCH_VARIABLE_FOR_FUZZ}",
    "${now:%Y}",
    "'\\${x}'",
    "'{}'",
    "int(3)",
    "str(3)",
    "choice(1,2)",
    "SGD",
    "Adam",
    "os.system",
    "no_such_module_fuzz.Thing",
    "relu",
]


@st.composite
def override_sets(draw: st.DrawFn) -> list[str]:
    """One to three command-line overrides of seed keys (or new ones) with odd values."""
    dotted = [
        ".".join(map(str, p))
        for p in _tree_paths(seed())
        if p and all(isinstance(x, str) for x in p) and p[0] != "work_dir"
    ]
    out = []
    for _ in range(draw(st.integers(1, 3))):
        prefix = draw(st.sampled_from(["", "", "", "+", "++", "~"]))
        key = draw(st.sampled_from([*dotted, "model.extra", "ключ", "train_cfg.新", "model.layers.deeper"]))
        if prefix == "~" and draw(st.booleans()):
            out.append(f"~{key}")
        else:
            out.append(f"{prefix}{key}={draw(st.sampled_from(OVERRIDE_VALUES))}")
    return out


@settings(FUZZ, max_examples=30)
@given(overrides=override_sets())
def test_random_hydra_overrides(overrides: list[str], in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(COMPOSE_LIMIT_S):
        check_composed(overrides, in_tmp)


# ---------------------------------------------------------------------------------------------
# Known bugs: minimal reproductions
# ---------------------------------------------------------------------------------------------
LINEAR = {"type": "torch.nn.Linear", "in_features": 2, "out_features": 2}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"model": LINEAR, "resume": {}}, "resume"),
        ({"model": LINEAR, "default_hooks": {"checkpoint": {"save_best": {}}}}, "default_hooks.checkpoint.save_best"),
        ({"model": LINEAR, "param_scheduler": {0: {"type": "StepLR", "step_size": 1}}}, "param_scheduler[0]"),
    ],
)
def test_bug_union_tags_leak_into_paths(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as error:
        RunnerConfig.from_dict(data)
    assert {p.path for p in error.value.problems} == {path}


@pytest.mark.parametrize("dist_cfg", [[1, 2], 5, True])
def test_bug_flat_backend_with_a_non_mapping_dist_cfg(dist_cfg: Any, in_tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TypedRunnerWarning)
        check_config({"model": LINEAR, "env_cfg": {"backend": "nccl", "dist_cfg": dist_cfg}}, in_tmp)


@pytest.mark.parametrize("imports", [5, None, 1.5])
def test_bug_custom_imports_mapping_with_a_non_list(imports: Any, in_tmp: Path) -> None:
    check_config({"model": LINEAR, "custom_imports": {"imports": imports}}, in_tmp)


@pytest.mark.parametrize("type_", ["..x", ".a.B", "..:x"])
def test_bug_relative_dotted_type(type_: str, in_tmp: Path) -> None:
    check_config({"model": {"type": type_}}, in_tmp)


@pytest.mark.parametrize("work_dir", ["a" * 300, "x/" * 3000], ids=["300-byte-name", "6000-byte-path"])
def test_bug_work_dir_too_long(work_dir: str, in_tmp: Path) -> None:
    check_config({"model": LINEAR, "work_dir": work_dir}, in_tmp)


@pytest.mark.parametrize("load_from", ["a" * 300, "x/" * 3000], ids=["300-byte-name", "6000-byte-path"])
def test_bug_load_from_too_long(load_from: str, in_tmp: Path) -> None:
    cfg = RunnerConfig.from_dict({"model": LINEAR, "load_from": load_from})
    assert all(p.path == "load_from" for p in cross_field_problems(cfg))


def test_bug_iterable_arguments_are_validated_late(in_tmp: Path, time_limit: TimeLimit) -> None:
    """Fixed: an ``Iterable[X]`` argument is checked as a list when the config is validated."""
    data = small_seed()
    data["train_dataloader"]["dataset"] = {"type": "torch.utils.data.ConcatDataset", "datasets": [[1, 2]]}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert [p.path for p in info.value.problems] == ["train_dataloader.dataset.datasets[0]"]
