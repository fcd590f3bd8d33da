"""Security: a checkpoint whose pickle would run code is refused (every checkpoint the runner writes loads
with ``weights_only``), and a config naming a function or a foreign class as a ``type`` is refused,
in-process and on the command line; nothing they name runs.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import FAST, SendSignal, explain, read_checkpoint, run_cli, signal_config
from typedrunner import ConfigError
from typedrunner.config import (
    CheckpointHook,
    DefaultHooks,
)
from typedrunner.errors import TrainingStopped
from typedrunner.parts.checkpoint import CheckpointError, load_checkpoint
from typedrunner.runner import Runner
from typedrunner.testing import toy_config


# ----------------------------------------------------------------------------------------------
# Safe loading
# ----------------------------------------------------------------------------------------------
class RunsCode:
    """Unpickling this calls ``function(argument)``."""

    def __init__(self, function: Callable[[str], object], argument: str) -> None:
        self.function = function
        self.argument = argument

    def __reduce__(self) -> tuple[Callable[[str], object], tuple[str]]:
        return self.function, (self.argument,)


def _payload(kind: str, marker: Path) -> RunsCode:
    if kind == "os.system":
        return RunsCode(os.system, f"touch {marker}")
    return RunsCode(builtins.exec, f"open({str(marker)!r}, 'w').close()")


def _write_malicious(path: Path, kind: str, fmt: str, marker: Path) -> None:
    state = {"meta": {"iter": 1}, "state_dict": {"net.0.weight": _payload(kind, marker)}}
    if fmt == "torch.save":
        torch.save(state, path, pickle_protocol=2)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("fmt", ["torch.save", "pickle"])
@pytest.mark.parametrize("kind", ["os.system", "builtins.exec"])
def test_a_checkpoint_that_runs_code_is_refused(tmp_path: Path, kind: str, fmt: str) -> None:
    # The file is live: unpickled without weights_only, it runs (here: creates another marker).
    control = tmp_path / "control_marker"
    _write_malicious(tmp_path / "control.pth", kind, fmt, control)
    if fmt == "torch.save":
        torch.load(tmp_path / "control.pth", weights_only=False)
    else:
        with open(tmp_path / "control.pth", "rb") as f:
            pickle.load(f)
    assert control.exists()

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    _write_malicious(evil, kind, fmt, marker)

    with pytest.raises(ConfigError) as loading:
        Runner(toy_config(tmp_path / "load", load_from=str(evil)))
    assert "weights_only=True" in str(loading.value) and str(evil) in str(loading.value)
    with pytest.raises(ConfigError) as resuming:
        Runner(toy_config(tmp_path / "load", load_from=str(evil), resume=True))
    assert [p.path for p in resuming.value.problems] == ["resume"]
    # resume: auto, finding it in work_dir through last_checkpoint
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    os.replace(evil, work_dir / "iter_1.pth")
    (work_dir / "last_checkpoint").write_text(str(work_dir / "iter_1.pth"), encoding="utf-8")
    with pytest.raises(ConfigError) as auto:
        Runner(toy_config(work_dir, resume="auto"))
    assert "cannot load checkpoint" in str(auto.value) and "iter_1.pth" in str(auto.value)
    with pytest.raises(CheckpointError):
        load_checkpoint(work_dir / "iter_1.pth")
    assert not marker.exists()


def test_every_own_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    runner = Runner(signal_config(tmp_path))
    runner.register_hook(SendSignal(signal.SIGTERM, 6))
    with pytest.raises(TrainingStopped):
        runner.train()
    Runner(signal_config(tmp_path, resume=True)).train()
    iterations = DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=5))
    Runner(toy_config(tmp_path / "iters", default_hooks=iterations)).train()

    paths = sorted([*tmp_path.glob("*.pth"), *(tmp_path / "iters").glob("*.pth")])
    names = [p.name for p in paths]
    for kind in ("stopped_iter_6.pth", "epoch_3.pth", "best_accuracy.pth", "epoch_3_published.pth", "iter_5.pth"):
        assert kind in names, names
    for path in paths:
        state = read_checkpoint(path)
        assert "state_dict" in state and "meta" in state, path
        assert load_checkpoint(path).keys() == state.keys()


# ----------------------------------------------------------------------------------------------
# A config names a class to build, never a function to call
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("model", {"type": "os.system", "command": "touch {marker}"}),
        ("model", {"type": "subprocess.Popen", "args": ["touch", "{marker}"]}),
        ("model", {"type": "builtins.exec", "source": "open('{marker}', 'w').close()"}),
        ("train_dataloader.dataset", {"type": "subprocess.Popen", "args": ["touch", "{marker}"]}),
        ("custom_hooks", [{"type": "os.system", "command": "touch {marker}"}]),
        ("custom_hooks", [{"type": "subprocess.Popen", "args": ["touch", "{marker}"]}]),
    ],
    ids=["model-os.system", "model-Popen", "model-exec", "dataset-Popen", "hook-os.system", "hook-Popen"],
)
def test_a_type_naming_a_function_or_a_foreign_class_is_refused(tmp_path: Path, path: str, spec: Any) -> None:
    marker = tmp_path / "pwned"
    spec = json.loads(json.dumps(spec).replace("{marker}", str(marker)))
    data = toy_config(tmp_path / "run").model_dump(mode="json")
    parent, _, key = path.rpartition(".")
    (data[parent] if parent else data)[key] = spec
    with pytest.raises(ConfigError) as info:
        Runner(data)
    assert any(p.path.startswith(path.split(".")[0]) and p.path.endswith("type") for p in info.value.problems), str(
        info.value
    )
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.type=os.system", "~model.layers", "~model.activation", "+model.command='touch {marker}'"],
        ["model.type=subprocess.Popen", "~model.layers", "~model.activation", "+model.args=[touch,'{marker}']"],
    ],
    ids=["os.system", "subprocess.Popen"],
)
def test_cli_type_naming_a_function_or_a_foreign_class_exits_2(
    tmp_path: Path, overrides: list[str], subprocess_env: dict[str, str]
) -> None:
    marker = tmp_path / "pwned"
    args = ["+experiment=mlp", *FAST, f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli([*args, *(o.replace("{marker}", str(marker)) for o in overrides)], subprocess_env)
    assert result.returncode == 2, explain(result)
    assert "model.type" in result.stderr and overrides[0].split("=")[1] in result.stderr, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert not marker.exists()
    assert list((tmp_path / "run").glob("*.pth")) == []
    # the command itself works: it is refused, not broken
    subprocess.run(["touch", str(marker)], check=True)
    assert marker.exists()
