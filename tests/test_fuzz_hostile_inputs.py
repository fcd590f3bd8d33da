"""Fuzz (issue 13): hostile ``hydra:`` blocks, interpolations and crafted checkpoints.

Whatever is drawn, nothing runs code (marker files that the hostile callables would create stay
absent), nothing is written or deleted outside the run directory (a sentinel directory next to it is
compared before and after, and nothing new appears beside the run directory), and the run ends with
exit 0, 1, 2 or 3; any other ending (a traceback) fails, as does a non-zero exit without a message.

The ``hydra:`` blocks run the real command line (``check=true``: composition, the hydra checks,
validation and the probe, no training); the checkpoints are resumed in-process, where an exit code
is the type of what ``Runner.train`` raises (the command line maps it one to one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_support import FUZZ
from tests.helpers import CONF, FAST, plugin_cli_env, read_checkpoint, run_cli
from typedrunner.config import CheckpointHook, DefaultHooks
from typedrunner.errors import TypedRunnerError
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

MARKER_MODULE = '''
"""Callables a hostile config would name: each leaves a marker file when called."""
import os
from pathlib import Path
from typing import Any

MARKER = os.environ.get("FUZZ_MARKER", "MARKER")


class Touch:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Path(MARKER).touch()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        Path(MARKER).touch()


def touch(*args: Any, **kwargs: Any) -> None:
    Path(MARKER).touch()
'''


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _sentinel(root: Path) -> Path:
    sentinel = root / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "precious.txt").write_text("precious", encoding="utf-8")
    (sentinel / "epoch_1.pth").write_bytes(b"not yours")
    (sentinel / "sub" / "last_checkpoint").write_text("epoch_1.pth", encoding="utf-8")
    return sentinel


# ----------------------------------------------------------------------------------------------
# Hostile hydra: blocks and interpolations, through the command line
# ----------------------------------------------------------------------------------------------
TARGETS = [
    "marker_module.Touch",
    "marker_module.touch",
    "os.system",
    "builtins.eval",
    "subprocess.Popen",
    "${oc.env:FUZZ_TARGET}",  # the environment names marker_module.Touch
    "${oc.env:FUZZ_UNSET_TARGET,marker_module.Touch}",
    "${oc.env:${oc.env:FUZZ_TARGET_NAME}}",  # nested: FUZZ_TARGET_NAME=FUZZ_TARGET
    "${now:%Y}",
    "${no_such_key}",
    "typedrunner.app.sweep_callbacks.SweepReport",
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "optuna.samplers.TPESampler",
]
ARGUMENTS = [
    "touch {marker}",
    "{sentinel}/precious.txt",
    "../sentinel/precious.txt",
    "${oc.env:HOME}",
    "${oc.env:FUZZ_UNSET}",
    "${now:%H-%M}",
    "${hydra:runtime.output_dir}/../sentinel/x",
    "${oc.decode:'[1, 2]'}",
    "!!python/object/apply:os.system ['touch {marker}']",
]
SECTIONS = ["callbacks", "launcher", "sweeper", "hydra_logging", "job_logging", "sweeper.sampler"]
PLAIN_KEYS = [
    "output_subdir",
    "job.name",
    "job.chdir",
    "run.dir",
    "searchpath",
    "job.env_set.FUZZ_SET",
    "verbose",
]


@st.composite
def hydra_blocks(draw: st.DrawFn) -> dict[str, Any]:
    """A ``hydra:`` block of one to three hostile entries, plus interpolations elsewhere."""
    block: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(SECTIONS))
        target = draw(st.sampled_from(TARGETS))
        argument = draw(st.sampled_from(ARGUMENTS))
        if section.endswith("_logging"):
            key = draw(st.sampled_from(["class", "()"]))
            entry = {"version": 1, "handlers": {"x": {key: target, "filename": argument}}, "root": {"handlers": ["x"]}}
        elif section == "callbacks":
            entry = {"fuzz": {"_target_": target, "arg": argument}}
        elif section == "sweeper.sampler":
            section, entry = "sweeper", {"sampler": {"_target_": target, "seed": argument}}
        else:
            entry = {"_target_": target, "nested": {"_target_": draw(st.sampled_from(TARGETS)), "x": argument}}
        block[section] = entry
    for key in draw(st.lists(st.sampled_from(PLAIN_KEYS), max_size=2, unique=True)):
        node = block
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = draw(st.sampled_from(ARGUMENTS)) if key != "searchpath" else [draw(st.sampled_from(ARGUMENTS))]
    return block


@settings(FUZZ, max_examples=4)
@given(
    block=hydra_blocks(),
    elsewhere=st.sampled_from(["experiment_name", "train_dataloader.dataset.size", "model.activation"]),
    value=st.sampled_from(ARGUMENTS),
    multirun=st.booleans(),
)
def test_hostile_hydra_blocks_and_interpolations_run_nothing_and_write_nothing_outside(
    tmp_path_factory: pytest.TempPathFactory, block: dict[str, Any], elsewhere: str, value: str, multirun: bool
) -> None:
    root = tmp_path_factory.mktemp("hostile_hydra")
    sentinel, marker = _sentinel(root), root / "MARKER"
    before = _snapshot(sentinel)
    conf = root / "conf"
    shutil.copytree(CONF, conf)
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "marker_module.py").write_text(MARKER_MODULE, encoding="utf-8")
    fill = {"marker": str(marker), "sentinel": str(sentinel)}
    text = f"hydra: {json.dumps(block)}\n"  # JSON is YAML
    head, _, leaf = elsewhere.rpartition(".")
    nested: dict[str, Any] = {leaf: value}
    for part in reversed(head.split(".") if head else []):
        nested = {part: nested}
    text += "".join(f"{k}: {json.dumps(v)}\n" for k, v in nested.items())
    for key, filled in fill.items():
        text = text.replace("{" + key + "}", filled)
    (conf / "experiment" / "hostile.yaml").write_text(
        f"# @package _global_\ndefaults:\n  - mlp\n  - _self_\n{text}", encoding="utf-8"
    )
    env = plugin_cli_env(plugins)
    env.update(
        TYPEDRUNNER_CONF=str(conf),
        FUZZ_MARKER=str(marker),
        FUZZ_TARGET="marker_module.Touch",
        FUZZ_TARGET_NAME="FUZZ_TARGET",
    )
    env.pop("TYPEDRUNNER_TRUSTED_HYDRA_TARGETS", None)
    work = root / "work"
    work.mkdir()
    runs = root / "runs"
    args = [
        *(["-m"] if multirun else []),
        "+experiment=hostile",
        *FAST,
        f"hydra.run.dir={runs / 'run'}",
        f"hydra.sweep.dir={runs / 'sweep'}",
        "check=true",
    ]
    result = run_cli(args, env, cwd=work)
    story = f"{text}\nexit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.returncode in (0, 1, 2, 3), story
    assert "Traceback" not in result.stderr + result.stdout, story
    if result.returncode != 0:
        assert result.stderr.strip(), story
    assert not marker.exists(), f"a hostile target ran:\n{story}"
    assert _snapshot(sentinel) == before, story
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["conf", "plugins", "sentinel", "work", *(["runs"] if runs.exists() else [])]
    ), story
    assert not list(work.iterdir()), f"written beside the run directory: {list(work.iterdir())}\n{story}"


# ----------------------------------------------------------------------------------------------
# Crafted checkpoints, resumed in-process
# ----------------------------------------------------------------------------------------------
ODD_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.integers(-(2**63), 2**63),
    st.sampled_from([0, -1, 1, 10**12, "abc", None, True, 1.5, float("nan"), [], {}, [1, 2], "../../x"]),
)
PATHS = st.sampled_from(
    [
        "{sentinel}/precious.txt",
        "{sentinel}/epoch_1.pth",
        "../sentinel/precious.txt",
        "../../sentinel/precious.txt",
        "sub/../../sentinel/epoch_1.pth",
        "..",
        "/",
        "",
        "epoch_1.pth",
        "epoch_2.pth",
        "\x00",
        "a" * 300,
    ]
)
CONFIG_JSON = st.sampled_from(
    [
        '{"model": {"type": "marker_module.Touch"}}',
        '{"custom_imports": ["marker_module"], "model": {"type": "marker_module.touch"}}',
        '{"work_dir": "{sentinel}", "load_from": "{sentinel}/epoch_1.pth"}',
        "not json",
        "",
    ]
)


@st.composite
def crafted(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """One to four changes: (what, value), applied to a real checkpoint and its run directory."""
    changes: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["meta", "saved", "best", "pointer", "config", "drop", "rng", "optimizer"]))
        if what == "meta":
            key = draw(st.sampled_from(["epoch", "iter", "inner_iter", "last_val_iter", "seed", "typedrunner_version"]))
            changes.append((f"meta.{key}", draw(ODD_VALUES)))
        elif what in ("saved", "best"):
            changes.append((what, draw(st.lists(PATHS, max_size=3)) if what == "saved" else draw(PATHS)))
        elif what == "pointer":
            changes.append(("pointer", draw(PATHS)))
        elif what == "config":
            changes.append(("config", draw(CONFIG_JSON)))
        elif what == "drop":
            changes.append(("drop", draw(st.sampled_from(["meta", "rng", "hooks", "optimizer", "state_dict"]))))
        else:
            changes.append((what, draw(ODD_VALUES)))
    return changes


def _apply(state: dict[str, Any], run_dir: Path, changes: list[tuple[str, Any]], sentinel: Path) -> None:
    def filled(value: Any) -> Any:
        return value.replace("{sentinel}", str(sentinel)) if isinstance(value, str) else value

    for what, value in changes:
        if what.startswith("meta.") and isinstance(state.get("meta"), dict):
            state["meta"][what.removeprefix("meta.")] = value
        elif what == "saved" and isinstance(state.get("hooks"), dict):
            state["hooks"].setdefault("CheckpointHook", {})["saved"] = [filled(v) for v in value]
        elif what == "best" and isinstance(state.get("hooks"), dict):
            state["hooks"].setdefault("CheckpointHook", {})["best"] = {"accuracy": filled(value)}
        elif what == "pointer":
            with contextlib.suppress(OSError, ValueError):
                (run_dir / "last_checkpoint").write_text(filled(value), encoding="utf-8")
        elif what == "config" and isinstance(state.get("meta"), dict):
            state["meta"]["config"] = filled(value)
        elif what == "drop":
            state.pop(value, None)
        elif what in ("rng", "optimizer"):
            state[what] = value if not isinstance(value, float) else {"state": value}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy run of 2 epochs keeping one checkpoint, best by accuracy: what the examples craft."""
    run = tmp_path_factory.mktemp("trained") / "run"
    Runner(_config(run, 2)).train()
    return run


def _config(work_dir: Path, epochs: int, **overrides: Any) -> Any:
    hooks = DefaultHooks(checkpoint=CheckpointHook(max_keep_ckpts=1, save_best="accuracy"))
    return toy_config(work_dir, max_epochs=epochs, default_hooks=hooks, log_level="ERROR", **overrides)


@settings(FUZZ, max_examples=50)
@given(changes=crafted())
def test_crafted_checkpoints_run_nothing_and_touch_nothing_outside(
    tmp_path_factory: pytest.TempPathFactory, trained_run: Path, changes: list[tuple[str, Any]]
) -> None:
    root = tmp_path_factory.mktemp("crafted")
    sentinel, marker = _sentinel(root), root / "MARKER"
    before = _snapshot(sentinel)
    run = root / "run"
    shutil.copytree(trained_run, run)
    checkpoint = run / "epoch_2.pth"
    state = read_checkpoint(checkpoint)
    _apply(state, run, changes, sentinel)
    torch.save(state, checkpoint)
    previous = os.environ.get("FUZZ_MARKER")
    os.environ["FUZZ_MARKER"] = str(marker)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        runner = Runner(_config(run, 3, resume=True))
        runner.train()
    except TypedRunnerError as e:  # exit 2 (ConfigError, ContractError), 1 (a failure) or 3 (stopped)
        assert str(e).strip(), f"an error without a message: {type(e).__name__}"
    finally:
        if previous is None:
            os.environ.pop("FUZZ_MARKER", None)
        else:
            os.environ["FUZZ_MARKER"] = previous
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert not marker.exists(), f"crafted checkpoint ran code: {changes}"
    assert _snapshot(sentinel) == before, f"crafted checkpoint touched files outside: {changes}"
    assert sorted(p.name for p in root.iterdir()) == ["run", "sentinel"], changes
