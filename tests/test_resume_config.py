"""Resume: how it finds (or refuses) a checkpoint, checkpoints that do not fit the model or the optimizer,
and what a changed config does to a resumed run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ITERS_PER_EPOCH, assert_same_state, optim_wrapper_of, read_checkpoint, runner_weights
from typedrunner import ConfigError, lazy
from typedrunner.config import (
    SGD,
    MultiStepLR,
    OptimWrapper,
    ParamwiseCfg,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import (
    Interrupt,
    Interrupted,
    RecordingHook,
    ToyModel,
    toy_config,
)


class LrHook(Hook):
    """The learning rate at the start of each epoch."""

    def __init__(self) -> None:
        self.per_epoch: list[float] = []

    def before_train_epoch(self, runner: RunView) -> None:
        self.per_epoch.append(optim_wrapper_of(runner).get_lr()[0])


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------------
# Finding the checkpoint to resume
# ----------------------------------------------------------------------------------------------
def test_resume_true_without_checkpoint_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path / "new", resume=True))
    assert [p.path for p in info.value.problems] == ["resume"]
    assert "resume: auto" in info.value.problems[0].message
    assert "holds no checkpoint" in str(info.value)
    assert not (tmp_path / "new").exists()


def test_resume_auto_without_checkpoint_starts_from_scratch(tmp_path: Path) -> None:
    plain = Runner(toy_config(tmp_path / "plain", max_epochs=2))
    plain.train()
    auto = Runner(toy_config(tmp_path / "auto", max_epochs=2, resume="auto"))
    assert (auto.epoch, auto.iter, auto.inner_iter) == (0, 0, 0)
    auto.train()
    assert auto.iter == 2 * ITERS_PER_EPOCH
    assert (tmp_path / "auto" / "epoch_2.pth").is_file()
    assert_same_state(runner_weights(auto), runner_weights(plain))


def test_resume_auto_with_a_checkpoint_resumes(tmp_path: Path) -> None:
    first = Runner(toy_config(tmp_path, max_epochs=3))
    first.register_hook(Interrupt(epochs=2))
    with pytest.raises(Interrupted):
        first.train()
    recorder = RecordingHook()
    auto = Runner(toy_config(tmp_path, max_epochs=3, resume="auto"))
    assert (auto.epoch, auto.iter) == (2, 2 * ITERS_PER_EPOCH)
    auto.register_hook(recorder)
    auto.train()
    assert [e for name, e, _ in recorder.calls if name == "before_train_epoch"] == [2]
    straight = Runner(toy_config(tmp_path / "straight", max_epochs=3))
    straight.train()
    assert_same_state(runner_weights(auto), runner_weights(straight))


def test_load_from_with_resume_true_resumes_from_that_file(tmp_path: Path) -> None:
    full = Runner(toy_config(tmp_path / "a", max_epochs=3))
    full.train()
    epoch_1 = read_checkpoint(tmp_path / "a" / "epoch_1.pth")

    resumed = Runner(
        toy_config(tmp_path / "b", max_epochs=3, load_from=str(tmp_path / "a" / "epoch_1.pth"), resume=True)
    )
    assert (resumed.epoch, resumed.iter) == (1, ITERS_PER_EPOCH)  # not epoch_3, the latest in a/
    assert_same_state(runner_weights(resumed), epoch_1["state_dict"])
    resumed.train()
    assert_same_state(runner_weights(resumed), runner_weights(full))
    assert sorted(p.name for p in (tmp_path / "b").glob("*.pth")) == ["epoch_2.pth", "epoch_3.pth"]


def test_resume_follows_the_last_checkpoint_pointer(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=3)).train()
    # the newest file is epoch_3.pth; the pointer (here relative to work_dir) names epoch_2.pth
    (tmp_path / "last_checkpoint").write_text("epoch_2.pth", encoding="utf-8")
    resumed = Runner(toy_config(tmp_path, max_epochs=3, resume=True))
    assert (resumed.epoch, resumed.iter) == (2, 2 * ITERS_PER_EPOCH)
    assert_same_state(runner_weights(resumed), read_checkpoint(tmp_path / "epoch_2.pth")["state_dict"])


# ----------------------------------------------------------------------------------------------
# Checkpoints that do not fit
# ----------------------------------------------------------------------------------------------
def test_resume_from_another_model_lists_shape_mismatches(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=1)).train()  # ToyModel(hidden=8)
    before = _files(tmp_path)
    wider = toy_config(tmp_path, max_epochs=2, model=lazy(ToyModel, dim=4, hidden=16), resume=True)
    with pytest.raises(ConfigError) as info:
        Runner(wider)
    messages = sorted(p.message for p in info.value.problems)
    assert messages == [
        "net.0.bias: checkpoint shape [8], model shape [16]",
        "net.0.weight: checkpoint shape [8, 4], model shape [16, 4]",
        "net.2.weight: checkpoint shape [2, 8], model shape [2, 16]",
    ]
    assert {p.path for p in info.value.problems} == {"resume"}
    assert "epoch_1.pth" in info.value.title
    assert _files(tmp_path) == before  # nothing trained, nothing written


def test_resume_with_another_optimizer_structure_names_the_optimizer(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=1)).train()  # one parameter group
    before = _files(tmp_path)
    per_parameter = OptimWrapper(optimizer=SGD(lr=0.1), paramwise_cfg=ParamwiseCfg())  # one group per parameter
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path, max_epochs=2, optim_wrapper=per_parameter, resume=True))
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.path == "resume"
    assert "optimizer" in problem.message and "parameter groups" in problem.message
    assert _files(tmp_path) == before


def test_resume_from_a_truncated_checkpoint_is_a_config_error(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=1)).train()
    path = tmp_path / "epoch_1.pth"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path, max_epochs=2, resume=True))
    assert [p.path for p in info.value.problems] == ["resume"]
    assert "cannot load checkpoint" in info.value.problems[0].message
    assert "epoch_1.pth" in info.value.problems[0].message


# ----------------------------------------------------------------------------------------------
# Resuming with a changed config
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("new_lr", "new_milestones", "expected_lines"),
    [
        pytest.param(
            0.1,
            [2, 5],
            ["param_scheduler[0].milestones: [3] -> [2, 5]", "train_cfg.max_epochs: 4 -> 6"],
            id="longer-run-new-milestones",
        ),
        pytest.param(
            0.05,
            [3],
            ["optim_wrapper.optimizer.lr: 0.1 -> 0.05", "train_cfg.max_epochs: 4 -> 6"],
            id="longer-run-other-lr",
        ),
    ],
)
def test_resume_with_a_changed_config_reports_it_and_follows_the_new_schedule(
    tmp_path: Path, new_lr: float, new_milestones: list[int], expected_lines: list[str]
) -> None:
    gamma = 0.1
    Runner(
        toy_config(
            tmp_path,
            max_epochs=4,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1)),
            param_scheduler=[MultiStepLR(milestones=[3], gamma=gamma)],
        )
    ).train()

    lr = LrHook()
    resumed = Runner(
        toy_config(
            tmp_path,
            max_epochs=6,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=new_lr)),
            param_scheduler=[MultiStepLR(milestones=new_milestones, gamma=gamma)],
            resume=True,
        )
    )
    assert resumed.epoch == 4
    findings = [p for p in resumed.check() if p.stage == "resume"]
    assert all(p.severity == "warning" and p.path == "resume" for p in findings)
    assert [p.message.removeprefix("differs from the checkpoint's config: ") for p in findings] == expected_lines

    # The new schedule from the resumed position: base_lr * gamma ** (new milestones already passed).
    def expected_lr(epoch: int) -> float:
        return new_lr * gamma ** sum(1 for m in new_milestones if m <= epoch)

    assert optim_wrapper_of(resumed).get_lr()[0] == pytest.approx(expected_lr(4), rel=1e-12)
    resumed.register_hook(lr)
    resumed.train()  # warnings are logged, not raised
    assert lr.per_epoch == pytest.approx([expected_lr(4), expected_lr(5)], rel=1e-12)
    assert optim_wrapper_of(resumed).get_lr()[0] == pytest.approx(expected_lr(6), rel=1e-12)
    assert resumed.epoch == 6
    assert [p.message for p in resumed.findings if p.stage == "resume"] == [p.message for p in findings]
    assert expected_lines[-1] in (tmp_path / "run.log").read_text(encoding="utf-8")
