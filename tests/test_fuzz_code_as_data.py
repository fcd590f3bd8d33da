"""Config values are data: code-looking strings never run, a ``type`` naming a function or a class of
the wrong kind is refused, and a module named by a plain string is not imported.

Configs checked per run here: 629 written out (576 payload placements, 45 code-naming types, 5 collate
functions, 3 import checks); each validates or raises ``ConfigError`` with sound paths
(``tests.helpers.check_config``), and none creates the marker file in the working directory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz_support import (
    CHECK_LIMIT_S,
    MARKER,
    VALIDATE_LIMIT_S,
    ConfigPath,
    TimeLimit,
    assert_problems_have_paths,
    check_config,
    check_runner,
    get_at,
    small_seed,
    tree_paths,
)
from typedrunner.config import RunnerConfig
from typedrunner.errors import ConfigError


def _render(path: ConfigPath) -> str:
    """A path as ``errors.format_path`` writes it: ``a.b[0].c``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


RESERVED_MODULES = ("json.tool", "pyclbr", "sched")
"""Module names no strategy draws: kept unimported for the example-based import tests."""


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
    get_at(data, path[:-1])[path[-1]] = value
    return data


@pytest.mark.parametrize("payload", PAYLOADS)
def test_code_looking_strings_in_every_field_are_data(payload: str, in_tmp: Path, time_limit: TimeLimit) -> None:
    """The payload at every leaf of the seed, one config per leaf: it never runs, and where a field
    takes free text the payload is kept verbatim."""
    base = small_seed()
    for path in [p for p in tree_paths(base) if p and not isinstance(get_at(base, p), (dict, list))]:
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
    assert_problems_have_paths(error.value, data)
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
