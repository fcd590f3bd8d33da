"""Fail fast on ``load_from``: a checkpoint that does not fit is refused before training, listing every
mismatched key (strict), loading what matches (partial) or naming why the file cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from examples.seed_mlp import MyAwesomeModel
from tests.helpers import (
    assert_bit_identical,
    config_problems,
    find,
    recording_runner,
    seed_config,
    state,
)
from typedrunner import ConfigError
from typedrunner.runner import Runner
from typedrunner.testing import ToyModel, toy_config


# ----------------------------------------------------------------------------------------------
# load_from
# ----------------------------------------------------------------------------------------------
def save_weights(path: Path, model: nn.Module, prefix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {prefix + k: v for k, v in model.state_dict().items()}}, path)
    return path


def real_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint as typedrunner writes it (meta, state_dict, optimizer, schedulers)."""
    return Runner(toy_config(tmp_path / "source")).save_checkpoint("epoch_1.pth")


@pytest.mark.parametrize(
    ("source", "messages"),
    [
        pytest.param(
            (4, 0),
            [
                "missing in the checkpoint: net.0.weight",
                "missing in the checkpoint: net.2.bias",
                "not in the model: net.weight",
            ],
            id="other-architecture",
        ),
        pytest.param(
            (3, 8),
            ["shape mismatch for net.0.weight: checkpoint [8, 3], model [8, 4]"],
            id="other-input-width",
        ),
    ],
)
def test_load_from_strict_mismatch_lists_every_key(
    tmp_path: Path, source: tuple[int, int], messages: list[str]
) -> None:
    checkpoint = save_weights(tmp_path / "pretrained.pth", ToyModel(dim=source[0], hidden=source[1]))
    work_dir = tmp_path / "run"
    problems = config_problems(lambda: Runner(toy_config(work_dir, load_from=str(checkpoint))))
    for message in messages:
        find(problems, "load_from", message)
    assert not work_dir.exists()


def test_load_from_strict_mismatch_yaml(tmp_path: Path, repo_root: Path) -> None:
    checkpoint = save_weights(tmp_path / "mlp4.pth", MyAwesomeModel(layers=4))
    with pytest.raises(ConfigError) as info:
        Runner(seed_config(repo_root, tmp_path / "run", f"load_from='{checkpoint}'"))
    assert str(info.value).startswith(f"load_from {str(checkpoint)!r} does not fit the model")
    find(list(info.value.problems), "load_from", "not in the model: layers.1.weight")
    find(list(info.value.problems), "load_from", "not in the model: layers.2.bias")
    assert not (tmp_path / "run").exists()


def test_load_from_partial_loads_what_matches_and_trains(tmp_path: Path) -> None:
    source = ToyModel(dim=3, hidden=8)  # same hidden and output layers, another input width
    checkpoint = save_weights(tmp_path / "pretrained.pth", source)
    runner, hook = recording_runner(toy_config(tmp_path / "run", load_from={"path": str(checkpoint), "strict": False}))
    loaded = state(runner.model)
    for key in ("net.0.bias", "net.2.weight", "net.2.bias"):
        assert torch.equal(loaded[key], source.state_dict()[key]), key
    assert loaded["net.0.weight"].shape == (8, 4)  # kept its own initialisation
    runner.train()
    assert hook.names().count("before_train_iter") == 8
    assert (tmp_path / "run" / "epoch_2.pth").is_file()


def test_load_from_partial_yaml(tmp_path: Path, repo_root: Path) -> None:
    source = MyAwesomeModel(layers=4)
    checkpoint = save_weights(tmp_path / "mlp4.pth", source)
    cfg = seed_config(repo_root, tmp_path / "run", f"load_from={{path: '{checkpoint}', strict: false}}")
    runner = Runner(cfg)
    assert torch.equal(state(runner.model)["classifier.weight"], source.classifier.weight)
    assert runner.check() == []


def test_load_from_partial_with_nothing_matching_is_an_error(tmp_path: Path) -> None:
    checkpoint = tmp_path / "encoder.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3, 3)}}, checkpoint)
    work_dir = tmp_path / "run"
    cfg = toy_config(work_dir, load_from={"path": str(checkpoint), "strict": False})
    find(config_problems(lambda: Runner(cfg)), "load_from", "nothing would load")
    assert not work_dir.exists()


def test_load_from_revise_keys(tmp_path: Path) -> None:
    source = ToyModel(dim=4, hidden=8)
    ddp = save_weights(tmp_path / "ddp.pth", source, prefix="module.")
    runner = Runner(toy_config(tmp_path / "a", load_from=str(ddp)))  # DDP's 'module.' stripped by default
    assert_bit_identical(state(runner.model), source.state_dict())

    backbone = save_weights(tmp_path / "backbone.pth", source, prefix="backbone.")
    problems = config_problems(lambda: Runner(toy_config(tmp_path / "b", load_from=str(backbone))))
    find(problems, "load_from", "not in the model: backbone.net.0.weight")
    renamed = {"path": str(backbone), "revise_keys": [(r"^backbone\.", "")]}
    runner = Runner(toy_config(tmp_path / "c", load_from=renamed))
    assert_bit_identical(state(runner.model), source.state_dict())


@pytest.mark.parametrize("damage", ["truncated", "random-bytes"])
def test_load_from_unreadable_file(tmp_path: Path, repo_root: Path, damage: str) -> None:
    path = tmp_path / "broken.pth"
    if damage == "truncated":
        data = real_checkpoint(tmp_path).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    work_dir = tmp_path / "run"
    problem = find(
        config_problems(lambda: Runner(toy_config(work_dir, load_from=str(path)))), "load_from", "broken.pth"
    )
    assert "cannot load checkpoint" in problem.message
    problems = config_problems(lambda: Runner(seed_config(repo_root, work_dir, f"load_from='{path}'")))
    find(problems, "load_from", "broken.pth", "cannot load checkpoint")
    assert not work_dir.exists()
