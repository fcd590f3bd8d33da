"""Every CheckpointHook option: intervals by iteration, ``save_best`` with its rules, filename templates,
``out_dir``, published checkpoints, ``max_keep_ckpts``, and best scores that survive a resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import (
    ITERS_PER_EPOCH,
    assert_same_state,
    interrupted_run,
    pointer_target,
    read_checkpoint,
    runner_weights,
)
from typedrunner import lazy
from typedrunner.config import (
    CheckpointHook,
    DefaultHooks,
    Evaluator,
    RunnerConfig,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import (
    EpochToMetric,
    Interrupt,
    ScriptedMetric,
    toy_config,
)


class BestFileHook(Hook):
    """After each validation (once the CheckpointHook has run): the metrics, and the best file's
    epoch and recorded best score, or None while there is none."""

    priority = "LOWEST"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metrics: list[dict[str, float]] = []
        self.seen: list[tuple[int, dict[str, float]] | None] = []

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self.metrics.append(dict(metrics or {}))
        if not self.path.is_file():
            self.seen.append(None)
            return
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.seen.append((int(state["meta"]["epoch"]), dict(state["hooks"]["CheckpointHook"]["best"])))


# ----------------------------------------------------------------------------------------------
# CheckpointHook options
# ----------------------------------------------------------------------------------------------
def test_iteration_checkpoints_every_interval(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=3))
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks)).train()  # 8 iterations
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_3.pth", "iter_6.pth", "iter_8.pth"]
    positions = {
        name: tuple(read_checkpoint(tmp_path / name)["meta"][k] for k in ("epoch", "iter", "inner_iter"))
        for name in ("iter_3.pth", "iter_6.pth", "iter_8.pth")
    }
    assert positions == {"iter_3.pth": (0, 3, 3), "iter_6.pth": (1, 6, 2), "iter_8.pth": (1, 8, 4)}
    assert pointer_target(tmp_path).name == "iter_8.pth"


SCRIPT = [50.0, 80.0, 70.0, 40.0, 90.0]  # validation scores of epochs 1..5


@pytest.mark.parametrize(
    ("save_best", "rule", "key", "improved_at"),
    [
        pytest.param("accuracy", None, "accuracy", [1, 2, 5], id="accuracy-greater-inferred"),
        pytest.param("accuracy", "less", "accuracy", [1, 4], id="rule-less-inverts"),
        pytest.param("auto", None, "accuracy", [1, 2, 5], id="auto-first-metric"),
        pytest.param("auto", None, "error", [1, 4], id="auto-error-is-less"),
    ],
)
def test_save_best_rewrites_only_on_improvement(
    tmp_path: Path, save_best: str, rule: Any, key: str, improved_at: list[int]
) -> None:
    best_file = tmp_path / f"best_{key}.pth"
    watcher = BestFileHook(best_file)
    cfg = toy_config(
        tmp_path,
        max_epochs=5,
        val_evaluator=Evaluator(metrics=[lazy(ScriptedMetric, key=key, values=SCRIPT)]),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(save_best=save_best, rule=rule)),
    )
    runner = Runner(cfg)
    runner.register_hook(EpochToMetric())
    runner.register_hook(watcher)
    runner.train()

    assert [m[key] for m in watcher.metrics] == SCRIPT
    expected = []
    last = 0
    for epoch in range(1, 6):
        last = epoch if epoch in improved_at else last
        expected.append((last, {key: SCRIPT[last - 1]}))
    assert watcher.seen == expected
    assert sorted(p.name for p in tmp_path.glob("best_*.pth")) == [best_file.name]


def test_filename_template(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(filename_tmpl="ckpt_{}.pth"))
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks)).train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["ckpt_1.pth", "ckpt_2.pth"]
    assert pointer_target(tmp_path) == (tmp_path / "ckpt_2.pth").resolve()


def test_out_dir_holds_the_checkpoints_and_resume_follows_the_pointer(tmp_path: Path) -> None:
    work_dir, out_dir = tmp_path / "run", tmp_path / "ckpts"
    hooks = DefaultHooks(checkpoint=CheckpointHook(out_dir=str(out_dir), save_best="accuracy"))
    first = Runner(toy_config(work_dir, max_epochs=2, default_hooks=hooks))
    first.train()
    assert sorted(p.name for p in out_dir.iterdir()) == ["best_accuracy.pth", "epoch_1.pth", "epoch_2.pth"]
    assert list(work_dir.glob("*.pth")) == []
    assert pointer_target(work_dir) == (out_dir / "epoch_2.pth").resolve()
    assert (work_dir / "scalars.jsonl").is_file()  # logs stay in work_dir

    resumed = Runner(toy_config(work_dir, max_epochs=3, default_hooks=hooks, resume=True))
    assert (resumed.epoch, resumed.iter) == (2, 2 * ITERS_PER_EPOCH)
    assert_same_state(runner_weights(resumed), runner_weights(first))


def test_published_checkpoint_holds_only_the_published_keys(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(published_keys=["meta", "state_dict"]))
    runner = Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks))
    runner.train()
    published = torch.load(tmp_path / "epoch_2_published.pth", map_location="cpu", weights_only=True)
    assert set(published) == {"meta", "state_dict"}
    full = read_checkpoint(tmp_path / "epoch_2.pth")
    assert_same_state(published["state_dict"], full["state_dict"])
    assert_same_state(published["state_dict"], runner_weights(runner))
    assert published["meta"] == full["meta"]
    assert sorted(p.name for p in tmp_path.glob("*published*")) == ["epoch_2_published.pth"]
    assert pointer_target(tmp_path).name == "epoch_2.pth"  # the pointer still names the full checkpoint


def test_max_keep_ckpts_with_iteration_checkpoints(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=2, max_keep_ckpts=2))
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks)).train()  # saves at 2, 4, 6, 8
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_6.pth", "iter_8.pth"]
    assert pointer_target(tmp_path).name == "iter_8.pth"


def test_max_keep_ckpts_survives_a_resume(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(max_keep_ckpts=2))
    interrupted_run(toy_config(tmp_path, max_epochs=4, default_hooks=hooks), Interrupt(epochs=2))
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth", "epoch_2.pth"]
    Runner(toy_config(tmp_path, max_epochs=4, default_hooks=hooks, resume=True)).train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_3.pth", "epoch_4.pth"]


def _best_run(work_dir: Path, script: list[float], **extra: Any) -> RunnerConfig:
    return toy_config(
        work_dir,
        max_epochs=4,
        val_evaluator=Evaluator(metrics=[lazy(ScriptedMetric, key="accuracy", values=script)]),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(save_best="accuracy")),
        **extra,
    )


def test_best_score_survives_a_resume(tmp_path: Path) -> None:
    # Crash at the end of epoch 2, before its validation: the best so far is epoch 1's 80.
    script = [80.0, 99.0, 70.0, 60.0]
    interrupted_run(_best_run(tmp_path, script), Interrupt(epochs=2), EpochToMetric())
    assert read_checkpoint(tmp_path / "best_accuracy.pth")["meta"]["epoch"] == 1
    watcher = BestFileHook(tmp_path / "best_accuracy.pth")
    resumed = Runner(_best_run(tmp_path, script, resume=True))
    resumed.register_hook(EpochToMetric())
    resumed.register_hook(watcher)
    resumed.train()
    # The resumed run first runs epoch 2's validation, which the crash prevented, then epochs 3 and 4.
    assert [m["accuracy"] for m in watcher.metrics] == [99.0, 70.0, 60.0]
    assert watcher.seen == [(2, {"accuracy": 99.0})] * 3  # 99 is the new best; 70 and 60 are not better


def test_best_score_of_the_last_validation_survives_a_resume(tmp_path: Path) -> None:
    # Crash during epoch 3, after epoch 2's validation set the best (90); resume from epoch_2.pth.
    script = [50.0, 90.0, 70.0, 60.0]
    interrupted_run(_best_run(tmp_path, script), Interrupt(iters=2 * ITERS_PER_EPOCH + 2), EpochToMetric())
    assert read_checkpoint(tmp_path / "best_accuracy.pth")["meta"]["epoch"] == 2
    assert pointer_target(tmp_path).name == "epoch_2.pth"
    resumed = Runner(_best_run(tmp_path, script, resume=True))
    resumed.register_hook(EpochToMetric())
    resumed.train()
    best = read_checkpoint(tmp_path / "best_accuracy.pth")
    assert best["meta"]["epoch"] == 2
    assert best["hooks"]["CheckpointHook"]["best"] == {"accuracy": 90.0}
