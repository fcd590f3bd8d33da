"""``load_from`` takes the weights (and ``meta``) of a checkpoint written by MMEngine itself, without
running or importing anything it names: its ``message_hub`` holds MMEngine's ``HistoryBuffer`` objects
(which ``weights_only=True`` alone refuses), loaded as data-only stand-ins and dropped. Key renames
through ``revise_keys``; errors with a true headline, the refused class named in full, no terminal
colour codes. Resuming from an MMEngine checkpoint is refused with the way to use it instead."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import config_problems
from tests.mmengine_support import mmengine_checkpoint
from typedrunner import RunnerConfig, lazy
from typedrunner.errors import ConfigError
from typedrunner.hooks import Hook, RunView
from typedrunner.parts.checkpoint import CheckpointError, load_checkpoint
from typedrunner.runner import Runner
from typedrunner.testing import ToyModel, toy_config

RENAME = [(r"^backbone\.", "net.")]


class SeenCheckpoint(Hook):
    def __init__(self) -> None:
        self.checkpoint: dict[str, Any] = {}

    def after_load_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        self.checkpoint = checkpoint


def toy(work_dir: Path, **values: Any) -> RunnerConfig:
    """The toy config with a model whose layers are MMClassifier's, named ``net``."""
    return toy_config(work_dir, model=lazy(ToyModel, dim=4, hidden=8), **values)


def test_an_mmengine_checkpoint_loads_its_weights_with_revise_keys(tmp_path: Path) -> None:
    path, weights = mmengine_checkpoint(tmp_path / "mmengine")
    with pytest.raises(Exception, match="HistoryBuffer"):  # what stopped it: weights_only alone refuses
        torch.load(path, weights_only=True)
    seen = SeenCheckpoint()
    runner = Runner(toy(tmp_path / "run", load_from={"path": str(path), "revise_keys": RENAME}, custom_hooks=[seen]))
    loaded = runner.model.state_dict()
    assert sorted(loaded) == sorted(k.replace("backbone.", "net.") for k in weights)
    for key, value in weights.items():
        assert torch.equal(loaded[key.replace("backbone.", "net.")], value)
    # meta came along (plain data); the message hub (MMEngine objects) did not
    assert seen.checkpoint["meta"]["epoch"] == 1 and seen.checkpoint["meta"]["iter"] == 4
    assert "message_hub" not in seen.checkpoint
    runner.train()  # and it trains from there
    assert runner.iter == runner.max_iters


def test_nothing_named_in_the_checkpoint_is_imported_or_run(tmp_path: Path) -> None:
    """The stand-ins replace even a class whose module does not exist here, and run nothing."""
    path, _ = mmengine_checkpoint(tmp_path / "mmengine")
    data = path.read_bytes()
    # the same file, but the history buffer's module renamed to one that cannot be imported at all
    renamed = tmp_path / "renamed.pth"
    renamed.write_bytes(data.replace(b"mmengine.logging.history_buffer", b"mmenginx.logging.history_buffer"))
    state = load_checkpoint(renamed, stand_ins=True)
    assert "mmenginx" not in sys.modules
    buffer = state["message_hub"]["log_scalars"]["train/loss"]
    assert type(buffer).__module__ == "typedrunner.parts.standins"
    assert repr(buffer) == "<stand-in for mmenginx.logging.history_buffer.HistoryBuffer>"


def test_without_revise_keys_the_mismatch_is_named_under_a_true_headline(tmp_path: Path) -> None:
    path, _ = mmengine_checkpoint(tmp_path / "mmengine")
    with pytest.raises(ConfigError) as info:
        Runner(toy(tmp_path / "run", load_from=str(path)))
    text = str(info.value)
    assert text.startswith(f"load_from {str(path)!r} does not fit the model")
    assert "not in the model: backbone.0.weight" in text and "missing in the checkpoint: net.0.weight" in text


class Opaque:
    """A class the loader has never heard of, pickled into a checkpoint's weights."""


def test_weights_that_are_not_tensors_are_refused_by_class_name_without_colour_codes(tmp_path: Path) -> None:
    module = type(sys)("foreign_layers")
    Opaque.__module__ = "foreign_layers"
    sys.modules["foreign_layers"] = module
    module.Opaque = Opaque  # type: ignore[attr-defined]
    try:
        path = tmp_path / "odd.pth"
        torch.save({"state_dict": {"net.0.weight": Opaque()}}, path)
    finally:
        del sys.modules["foreign_layers"]
        Opaque.__module__ = __name__
    with pytest.raises(ConfigError) as info:
        Runner(toy(tmp_path / "run", load_from=str(path)))
    text = str(info.value)
    assert text.startswith(f"load_from {str(path)!r} cannot be loaded as model weights")
    assert "its weights hold objects of foreign_layers.Opaque, not tensors" in text
    assert "\x1b" not in text


def test_resuming_an_mmengine_checkpoint_is_refused_with_the_way_to_load_it(tmp_path: Path) -> None:
    path, _ = mmengine_checkpoint(tmp_path / "mmengine")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "unsupported global mmengine.logging.history_buffer.HistoryBuffer" in message
    assert "loads with load_from" in message and "\x1b" not in message
    problems = config_problems(lambda: Runner(toy(tmp_path / "run", load_from=str(path), resume=True)))
    assert [p.path for p in problems] == ["resume"]
    assert "HistoryBuffer" in problems[0].message


def test_a_plain_pickle_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"state_dict": {}}))
    problems = config_problems(lambda: Runner(toy(tmp_path / "run", load_from=str(path))))
    assert problems and all(p.path == "load_from" for p in problems)
