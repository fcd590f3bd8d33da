"""Property tests: every config, however broken, validates or raises ``ConfigError`` with paths.

Random top-level configs and mutated seeds (wrong types, huge and negative numbers, NaN and infinities,
unicode and control characters, ``${...}`` and ``{}`` strings, deep nesting, wrong ``type`` names,
dotted paths to functions and to modules that do not exist) go through ``RunnerConfig.from_dict``.
Each one either validates or raises ``ConfigError`` whose every problem has a message and a sound path:
a node of the input, a key or index missing from a node that exists, or the input's keys spelled with
the schemas' canonical field names; ``''`` only for the whole-config check. Never another exception, a
hang (a SIGALRM limit per example) or a file in the working directory. Validated configs go through
``cross_field_problems`` too (the property itself is ``tests.helpers.check_config``).

Configs fuzzed per run here: 602, the same ones every run (derandomized, no example database): 600
drawn by hypothesis (300 random top-level configs, 300 mutated seeds) and the 2 seeds. The other fuzz
modules: ``test_fuzz_build`` (built configs), ``test_fuzz_code_as_data`` (config values are data),
``test_fuzz_overrides`` (YAML oddities through Hydra), ``test_fuzz_regressions`` (known bugs).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_support import (
    FUZZ,
    MARKER,
    VALIDATE_LIMIT_S,
    WATCHED_MODULES,
    ExampleHang,
    TimeLimit,
    check_config,
    get_at,
    seed,
    small_seed,
    tree_paths,
)
from typedrunner.config import RunnerConfig


def test_time_limit_fires_on_a_hang(time_limit: TimeLimit) -> None:
    with pytest.raises(ExampleHang), time_limit(0.05):
        while True:
            pass


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
    "typedrunner.parts.hooks.base.Hook",
    "typedrunner.parts.evaluator.BaseMetric",
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
        paths = [p for p in tree_paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent, key = get_at(data, path[:-1]), path[-1]
        node = parent[key]
        op = draw(st.sampled_from(MUTATIONS))
        if op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(typos(key))] = parent.pop(key)
        elif op == "retype":
            dicts = [p for p in tree_paths(data) if isinstance(get_at(data, p), dict)]
            target = get_at(data, draw(st.sampled_from(dicts)))
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
