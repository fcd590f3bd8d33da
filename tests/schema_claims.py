"""The checks behind ``test_schema_claims``: each trains a small toy run (3 epochs of 4 iterations)
and reads back what it wrote (``scalars.jsonl``, ``run.log``, the checkpoints)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.utils.data import Sampler

from typedrunner import ConfigError, lazy
from typedrunner.config.evaluator import Evaluator
from typedrunner.config.hooks import DefaultHooks
from typedrunner.config.logging import LogProcessor
from typedrunner.config.lr_schedules import MultiStepLR
from typedrunner.hooks import (
    CheckpointHook,
    DistSamplerSeedHook,
    Event,
    Hook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    Priority,
    RuntimeInfoHook,
    RunView,
)
from typedrunner.registry.lazy import Lazy
from typedrunner.runner import Runner
from typedrunner.testing import EpochToMetric, RecordingHook, ScriptedMetric, toy_config

EPOCHS = 3
ITERS_PER_EPOCH = 4  # toy_config: 64 training samples, batch 16
LR = 0.1  # toy_config's SGD lr


# ----------------------------------------------------------------------------------------------
# Running a toy run and reading back what it wrote
# ----------------------------------------------------------------------------------------------
def train(
    work_dir: Path,
    hooks: Mapping[str, Any] | None = None,
    *,
    epochs: int = EPOCHS,
    **overrides: Any,
) -> Runner:
    """Train ``toy_config`` with ``default_hooks`` given as data (``{"logger": {"interval": 2}}``)."""
    cfg = toy_config(
        work_dir, max_epochs=epochs, default_hooks=DefaultHooks.model_validate(dict(hooks or {})), **overrides
    )
    runner = Runner(cfg)
    runner.train()
    return runner


def scalars(work_dir: Path, mode: str = "train") -> list[dict[str, Any]]:
    """The ``scalars.jsonl`` records of one mode (``train``, ``val``)."""
    lines = (work_dir / "scalars.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if r["mode"] == mode]


def log_lines(work_dir: Path) -> list[str]:
    return (work_dir / "run.log").read_text(encoding="utf-8").splitlines()


def log_fields(line: str) -> dict[str, str]:
    """``key=value`` (or the scalar lines' ``key: value``) pairs of one ``run.log`` line."""
    return dict(re.findall(r"(\w+)(?:=|: )(\S+)", line))


def train_log_lines(work_dir: Path) -> list[str]:
    return [line for line in log_lines(work_dir) if re.search(r"\] Epoch\(train\) \[\d+\]\[\d+/\d+\]", line)]


def hook_order(work_dir: Path) -> dict[str, list[str]]:
    """RuntimeInfoHook's log, read back: per event, the hook names in the order logged."""
    order: dict[str, list[str]] = {}
    for line in hook_order_lines(work_dir):
        match = re.search(r" on=(\w+) order=(?:'([^']*)'|(\S+))", line)
        assert match is not None, line
        order[match.group(1)] = (match.group(2) or match.group(3)).split(" > ")
    return order


def hook_order_lines(work_dir: Path) -> list[str]:
    """RuntimeInfoHook's lines: ``hooks on=<event> order=<A > B>``."""
    return [line for line in log_lines(work_dir) if re.search(r"\] hooks on=\w+ order=", line)]


def checkpoint_files(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.pth")}


def load(path: Path) -> dict[str, Any]:
    checkpoint = torch.load(path, weights_only=True)
    assert isinstance(checkpoint, dict)
    return checkpoint


def steps(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["step"]) for r in records]


def scripted(values: list[float], key: str = "accuracy") -> dict[str, Any]:
    """Overrides for a validation whose metric takes ``values[epoch - 1]`` (the best epoch is known)."""
    return dict(
        val_evaluator=Evaluator(metrics=[lazy(ScriptedMetric, key=key, values=values)]),
        custom_hooks=[lazy(EpochToMetric)],
    )


def subdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


# ----------------------------------------------------------------------------------------------
# Test parts
# ----------------------------------------------------------------------------------------------
class LossRecorder(Hook):
    """Records each iteration's raw loss (what the LoggerHook averages)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        assert outputs is not None
        self.losses.append(float(outputs["loss"].item()))


CALLS: list[str] = []
"""What the ordered hooks below saw, in order (cleared by each test that uses them)."""


class _Ordered(Hook):
    def before_train_epoch(self, runner: RunView) -> None:
        CALLS.append(type(self).__name__)

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        CALLS.append(type(self).__name__)


class FirstHook(_Ordered):
    priority = Priority.HIGHEST


class MiddleHook(_Ordered):
    priority = Priority.NORMAL


class LastHook(_Ordered):
    priority = Priority.LOWEST


class EpochSampler(Sampler[int]):
    """A user sampler (not typedrunner's DefaultSampler): shuffled by ``seed + epoch``; records
    each ``set_epoch`` and the order of each pass."""

    def __init__(self, dataset: Sized, seed: int = 0) -> None:
        self.size = len(dataset)
        self.seed = seed
        self.epoch = 0
        self.set_epoch_calls: list[int] = []
        self.orders: list[list[int]] = []

    def set_epoch(self, epoch: int) -> None:
        self.set_epoch_calls.append(epoch)
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        self.orders.append(order)
        return iter(order)

    def __len__(self) -> int:
        return self.size


def train_with_epoch_sampler(work_dir: Path, hooks: Mapping[str, Any] | None = None) -> EpochSampler:
    base = toy_config(work_dir)
    assert base.train_dataloader is not None and not isinstance(base.train_dataloader, torch.utils.data.DataLoader)
    loader = base.train_dataloader.model_copy(update={"sampler": Lazy(EpochSampler, {"seed": 7})})
    runner = train(work_dir, hooks, train_dataloader=loader)
    sampler = getattr(runner.train_dataloader, "sampler", None)
    assert isinstance(sampler, EpochSampler)
    return sampler


# ----------------------------------------------------------------------------------------------
# The checks: one per claim
# ----------------------------------------------------------------------------------------------
def check_logger_class(tmp_path: Path) -> None:
    train(tmp_path, {"logger": {"interval": 2}})
    assert steps(scalars(tmp_path)) == [2, 4, 6, 8, 10, 12]
    val = scalars(tmp_path, "val")
    assert [r["epoch"] for r in val] == [1, 2, 3]  # every validation
    assert all("accuracy" in r for r in val)


def check_logger_interval(tmp_path: Path) -> None:
    every_1, every_2 = subdir(tmp_path, "1"), subdir(tmp_path, "2")
    train(every_1, {"logger": {"interval": 1}})
    train(every_2, {"logger": {"interval": 2}})
    assert steps(scalars(every_1)) == list(range(1, EPOCHS * ITERS_PER_EPOCH + 1))
    assert steps(scalars(every_2)) == list(range(2, EPOCHS * ITERS_PER_EPOCH + 1, 2))
    assert len(train_log_lines(every_2)) == EPOCHS * ITERS_PER_EPOCH // 2  # the human log too


def check_logger_ignore_last(tmp_path: Path) -> None:
    # 4 iterations per epoch, interval 3: iteration 4 of each epoch does not fill an interval
    ignore, keep = subdir(tmp_path, "ignore"), subdir(tmp_path, "keep")
    train(ignore, {"logger": {"interval": 3, "ignore_last": True}})
    train(keep, {"logger": {"interval": 3, "ignore_last": False}})
    assert [r["iter"] for r in scalars(ignore)] == [3] * EPOCHS
    assert [r["iter"] for r in scalars(keep)] == [3, 4] * EPOCHS
    assert steps(scalars(keep)) == [3, 4, 7, 8, 11, 12]


def check_checkpoint_class(tmp_path: Path) -> None:
    by_epoch, by_iter = subdir(tmp_path, "epoch"), subdir(tmp_path, "iter")
    train(by_epoch, {"checkpoint": {"save_best": "accuracy"}})
    assert checkpoint_files(by_epoch) == {"epoch_1.pth", "epoch_2.pth", "epoch_3.pth", "best_accuracy.pth"}
    pointer = by_epoch / (by_epoch / "last_checkpoint").read_text(encoding="utf-8").strip()  # relative
    assert pointer.resolve() == (by_epoch / "epoch_3.pth").resolve()  # the pointer names the latest, not the best
    train(by_iter, {"checkpoint": {"by_epoch": False, "interval": 6}})
    assert checkpoint_files(by_iter) == {"iter_6.pth", "iter_12.pth"}


def check_checkpoint_interval(tmp_path: Path) -> None:
    epochs, iters = subdir(tmp_path, "epochs"), subdir(tmp_path, "iters")
    train(epochs, {"checkpoint": {"interval": 2, "save_last": False}})
    assert checkpoint_files(epochs) == {"epoch_2.pth"}
    train(iters, {"checkpoint": {"interval": 5, "by_epoch": False, "save_last": False}})
    assert checkpoint_files(iters) == {"iter_5.pth", "iter_10.pth"}


def check_checkpoint_by_epoch(tmp_path: Path) -> None:
    train(tmp_path, {"checkpoint": {"interval": 3, "by_epoch": False}})
    assert checkpoint_files(tmp_path) == {"iter_3.pth", "iter_6.pth", "iter_9.pth", "iter_12.pth"}
    assert [load(tmp_path / f"iter_{n}.pth")["meta"]["iter"] for n in (3, 6, 9, 12)] == [3, 6, 9, 12]


def check_checkpoint_save_begin(tmp_path: Path) -> None:
    epochs, iters = subdir(tmp_path, "epochs"), subdir(tmp_path, "iters")
    train(epochs, {"checkpoint": {"save_begin": 1, "save_last": False}})
    assert checkpoint_files(epochs) == {"epoch_2.pth", "epoch_3.pth"}
    train(iters, {"checkpoint": {"by_epoch": False, "interval": 2, "save_begin": 8, "save_last": False}})
    assert checkpoint_files(iters) == {"iter_10.pth", "iter_12.pth"}


def check_checkpoint_save_last(tmp_path: Path) -> None:
    last, no_last = subdir(tmp_path, "last"), subdir(tmp_path, "no_last")
    train(last, {"checkpoint": {"interval": 2, "save_last": True}})
    train(no_last, {"checkpoint": {"interval": 2, "save_last": False}})
    assert checkpoint_files(last) == {"epoch_2.pth", "epoch_3.pth"}
    assert checkpoint_files(no_last) == {"epoch_2.pth"}


def check_checkpoint_max_keep_ckpts(tmp_path: Path) -> None:
    keep_2, keep_all = subdir(tmp_path, "keep_2"), subdir(tmp_path, "keep_all")
    overrides = scripted([90.0, 10.0, 20.0])  # the best is epoch 1's, the first periodic one removed
    train(keep_2, {"checkpoint": {"max_keep_ckpts": 2, "save_best": "accuracy"}}, **overrides)
    train(keep_all, {"checkpoint": {"max_keep_ckpts": -1}})
    assert checkpoint_files(keep_2) == {"epoch_2.pth", "epoch_3.pth", "best_accuracy.pth"}  # best: not periodic
    assert checkpoint_files(keep_all) == {"epoch_1.pth", "epoch_2.pth", "epoch_3.pth"}


def check_checkpoint_save_optimizer(tmp_path: Path) -> None:
    with_, without = subdir(tmp_path, "with"), subdir(tmp_path, "without")
    train(with_, {"checkpoint": {"save_optimizer": True}}, epochs=1)
    train(without, {"checkpoint": {"save_optimizer": False}}, epochs=1)
    assert "optimizer" in load(with_ / "epoch_1.pth")
    assert "optimizer" not in load(without / "epoch_1.pth")


def check_checkpoint_save_param_scheduler(tmp_path: Path) -> None:
    with_, without = subdir(tmp_path, "with"), subdir(tmp_path, "without")
    schedule = dict(param_scheduler=[MultiStepLR(milestones=[1])])
    train(with_, {"checkpoint": {"save_param_scheduler": True}}, epochs=2, **schedule)
    train(without, {"checkpoint": {"save_param_scheduler": False}}, epochs=2, **schedule)
    assert load(with_ / "epoch_1.pth")["param_schedulers"]
    assert "param_schedulers" not in load(without / "epoch_1.pth")


def check_checkpoint_save_best(tmp_path: Path) -> None:
    named, auto = subdir(tmp_path, "named"), subdir(tmp_path, "auto")
    values = [50.0, 80.0, 60.0]
    train(named, {"checkpoint": {"save_best": "accuracy"}}, **scripted(values))
    two_metrics = Evaluator(
        metrics=[
            lazy(ScriptedMetric, key="accuracy", values=values),
            lazy(ScriptedMetric, key="error", values=[0.5, 0.1, 0.3]),
        ]
    )
    auto_overrides = {**scripted(values), "val_evaluator": two_metrics}
    train(auto, {"checkpoint": {"save_best": "auto"}}, **auto_overrides)
    assert [r["accuracy"] for r in scalars(named, "val")] == values
    assert [r["error"] for r in scalars(auto, "val")] == [0.5, 0.1, 0.3]
    assert not (auto / "best_error.pth").exists()  # auto: the first metric only
    for directory in (named, auto):
        meta = load(directory / "best_accuracy.pth")["meta"]
        assert (meta["best_metric"], meta["best_score"], meta["epoch"]) == ("accuracy", 80.0, 2)


def check_checkpoint_rule(tmp_path: Path) -> None:
    less, inferred_less, inferred_greater = (subdir(tmp_path, n) for n in ("less", "loss", "accuracy"))
    train(less, {"checkpoint": {"save_best": "accuracy", "rule": "less"}}, **scripted([50.0, 80.0, 60.0]))
    train(inferred_less, {"checkpoint": {"save_best": "loss"}}, **scripted([0.5, 0.2, 0.4], key="loss"))
    train(inferred_greater, {"checkpoint": {"save_best": "accuracy"}}, **scripted([50.0, 80.0, 60.0]))
    assert load(less / "best_accuracy.pth")["meta"]["best_score"] == 50.0
    assert load(inferred_less / "best_loss.pth")["meta"]["best_score"] == 0.2
    assert load(inferred_greater / "best_accuracy.pth")["meta"]["best_score"] == 80.0


def check_checkpoint_out_dir(tmp_path: Path) -> None:
    work_dir, out_dir = subdir(tmp_path, "work"), tmp_path / "elsewhere"
    train(work_dir, {"checkpoint": {"out_dir": str(out_dir)}})
    assert checkpoint_files(out_dir) == {"epoch_1.pth", "epoch_2.pth", "epoch_3.pth"}
    assert checkpoint_files(work_dir) == set()


def check_checkpoint_filename_tmpl(tmp_path: Path) -> None:
    train(tmp_path, {"checkpoint": {"filename_tmpl": "toy-{}.ckpt.pth"}})
    assert checkpoint_files(tmp_path) == {"toy-1.ckpt.pth", "toy-2.ckpt.pth", "toy-3.ckpt.pth"}
    pointer = Path((tmp_path / "last_checkpoint").read_text(encoding="utf-8").strip())
    assert pointer.name == "toy-3.ckpt.pth"


def check_checkpoint_published_keys(tmp_path: Path) -> None:
    published, plain = subdir(tmp_path, "published"), subdir(tmp_path, "plain")
    train(published, {"checkpoint": {"published_keys": ["meta", "state_dict"]}})
    train(plain, {})
    assert set(load(published / "epoch_3_published.pth")) == {"meta", "state_dict"}
    assert "optimizer" in load(published / "epoch_3.pth")  # the original keeps everything
    assert checkpoint_files(published) - checkpoint_files(plain) == {"epoch_3_published.pth"}


def check_runtime_info_class(tmp_path: Path) -> None:
    debug, info = subdir(tmp_path, "debug"), subdir(tmp_path, "info")
    hooks = [lazy(FirstHook), lazy(MiddleHook), lazy(LastHook), lazy(RecordingHook)]
    CALLS.clear()
    runner = train(debug, log_level="DEBUG", custom_hooks=hooks, epochs=1)
    lines = hook_order_lines(debug)
    order = hook_order(debug)
    # when the run starts: before the first training line, after the run's opening line
    text = log_lines(debug)
    first_train = text.index(train_log_lines(debug)[0]) if train_log_lines(debug) else len(text)
    assert all(text.index(line) < first_train for line in lines)
    # which hooks handle each event: each hook is listed under exactly the events it handles
    assert set(order) == {event.value for event in Event}  # RecordingHook handles every event
    assert all("RecordingHook" in names for names in order.values())
    handled = {
        name: {event for event, names in order.items() if name in names} for name in ("LoggerHook", "CheckpointHook")
    }
    assert handled == {
        "LoggerHook": {"after_train_iter", "after_val_epoch", "after_test_epoch"},
        "CheckpointHook": {"after_train_epoch"},  # by epoch, no save_best, no published_keys
    }
    recorder = next(h for h in runner.hooks.hooks if isinstance(h, RecordingHook))
    assert {"before_run", "after_train_iter", "after_val_epoch"} <= set(recorder.names())
    # in call order: the order logged is the order the hooks ran in
    ordered = ["FirstHook", "MiddleHook", "LastHook"]
    for event in ("before_train_epoch", "after_train_iter"):
        assert [name for name in order[event] if name in ordered] == ordered
    assert ordered * (1 + ITERS_PER_EPOCH) == CALLS  # one epoch start, then each iteration
    priority = {type(h).__name__: h.priority_value for h in runner.hooks.hooks}
    for names in order.values():
        assert [priority[n] for n in names] == sorted(priority[n] for n in names)
    assert order["after_train_iter"].index("IterTimerHook") < order["after_train_iter"].index("LoggerHook")
    # at DEBUG level: nothing of it at INFO
    train(info, log_level="INFO", epochs=1)
    assert hook_order_lines(info) == []
    assert not any("order=" in line for line in log_lines(info))


def check_default_runtime_info(tmp_path: Path) -> None:
    on, off = subdir(tmp_path, "on"), subdir(tmp_path, "off")
    train(on, log_level="DEBUG", epochs=1)
    train(off, {"runtime_info": None}, log_level="DEBUG", epochs=1)
    events = {log_fields(line)["on"] for line in hook_order_lines(on)}
    assert {"before_train_epoch", "after_train_iter", "after_train_epoch"} <= events
    assert hook_order_lines(off) == []


def check_timer_class(tmp_path: Path) -> None:
    train(tmp_path, {"logger": {"interval": 2}})
    records = scalars(tmp_path)
    assert records
    for r in records:
        assert r["time"] > 0 and 0 <= r["data_time"] <= r["time"]  # data-loading is part of the iteration
        assert r["eta_s"] >= 0
    assert records[-1]["eta_s"] == 0.0  # nothing left after the last iteration
    for line in train_log_lines(tmp_path):
        assert {"time", "data_time", "eta"} <= set(log_fields(line))


def check_default_timer(tmp_path: Path) -> None:
    on, off = subdir(tmp_path, "on"), subdir(tmp_path, "off")
    train(on, {"logger": {"interval": 2}})
    train(off, {"logger": {"interval": 2}, "timer": None})
    timing = {"time", "data_time", "eta_s"}
    assert all(timing <= set(r) for r in scalars(on))
    assert scalars(off) and all(not (timing & set(r)) for r in scalars(off))
    assert all("loss" in r for r in scalars(off))  # still logged, only without timing
    shown = {"time", "data_time", "eta"}  # eta_s is shown as eta, h:mm:ss
    assert train_log_lines(off) and all(not (shown & set(log_fields(line))) for line in train_log_lines(off))


def check_param_scheduler_class(tmp_path: Path) -> None:
    per_epoch, per_iter = subdir(tmp_path, "epoch"), subdir(tmp_path, "iter")
    train(per_epoch, {"logger": {"interval": 1}}, param_scheduler=[MultiStepLR(milestones=[1, 2], gamma=0.1)])
    lrs = {r["epoch"]: r["lr"] for r in scalars(per_epoch)}
    assert lrs == pytest.approx({1: LR, 2: LR * 0.1, 3: LR * 0.01})
    train(
        per_iter,
        {"logger": {"interval": 1}},
        param_scheduler=[MultiStepLR(milestones=[6], gamma=0.1, by_epoch=False)],
    )
    expected = [LR] * 6 + [LR * 0.1] * 6  # iterations 1-6 at lr, 7-12 after the 6th step
    assert [r["lr"] for r in scalars(per_iter)] == pytest.approx(expected)


def check_default_param_scheduler(tmp_path: Path) -> None:
    on, off = subdir(tmp_path, "on"), subdir(tmp_path, "off")
    schedule = [MultiStepLR(milestones=[1], gamma=0.1)]
    train(on, {"logger": {"interval": 1}}, param_scheduler=schedule)
    assert sorted({r["lr"] for r in scalars(on)}) == pytest.approx([LR * 0.1, LR])
    # without the hook nothing would step the schedule: the config is refused before anything is written
    cfg = toy_config(off, default_hooks=DefaultHooks(param_scheduler=None), param_scheduler=schedule)
    with pytest.raises(ConfigError, match=r"default_hooks\.param_scheduler"):
        Runner(cfg)
    assert not (off / "scalars.jsonl").exists()
    # and without both, the lr never changes
    constant = subdir(tmp_path, "constant")
    train(constant, {"logger": {"interval": 1}, "param_scheduler": None})
    assert {r["lr"] for r in scalars(constant)} == {LR}


def check_sampler_seed_class(tmp_path: Path) -> None:
    sampler = train_with_epoch_sampler(tmp_path)
    assert sampler.set_epoch_calls == list(range(EPOCHS))
    passes = sampler.orders[-EPOCHS:]  # the training passes (a check before training may draw one)
    assert len({tuple(order) for order in passes}) == EPOCHS  # each epoch shuffled differently


def check_default_sampler_seed(tmp_path: Path) -> None:
    sampler = train_with_epoch_sampler(tmp_path, {"sampler_seed": None})
    assert sampler.set_epoch_calls == []
    passes = sampler.orders[-EPOCHS:]
    assert len(passes) == EPOCHS and len({tuple(order) for order in passes}) == 1  # the same order every epoch


def check_default_logger(tmp_path: Path) -> None:
    train(tmp_path, {"logger": None})
    assert scalars(tmp_path, "train") == [] and scalars(tmp_path, "val") == []
    assert train_log_lines(tmp_path) == []
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["iters"] == EPOCHS * ITERS_PER_EPOCH


def check_default_checkpoint(tmp_path: Path) -> None:
    train(tmp_path, {"checkpoint": None})
    assert checkpoint_files(tmp_path) == set()
    assert not (tmp_path / "last_checkpoint").exists()
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["epochs"] == EPOCHS


def check_default_hooks_class(tmp_path: Path) -> None:
    every, none = subdir(tmp_path, "every"), subdir(tmp_path, "none")
    builtins = {RuntimeInfoHook, IterTimerHook, DistSamplerSeedHook, LoggerHook, ParamSchedulerHook, CheckpointHook}
    runner = train(every, epochs=1)
    assert {type(h) for h in runner.hooks.hooks} == builtins
    for name in DefaultHooks.model_fields:
        kept = train(subdir(tmp_path, name), {name: None}, epochs=1)
        removed = type(getattr(DefaultHooks(), name)).__name__
        assert removed not in {type(h).__name__ for h in kept.hooks.hooks}
        assert len(kept.hooks.hooks) == len(builtins) - 1
    bare = train(none, dict.fromkeys(DefaultHooks.model_fields), epochs=1)
    assert bare.hooks.hooks == []
    assert json.loads((none / "summary.json").read_text(encoding="utf-8"))["iters"] == ITERS_PER_EPOCH


def check_log_processor_window_size(tmp_path: Path) -> None:
    for window in (1, 3):
        work_dir = subdir(tmp_path, f"window_{window}")
        runner = train(
            work_dir,
            {"logger": {"interval": 2}},
            log_processor=LogProcessor(window_size=window),
            custom_hooks=[lazy(LossRecorder)],
        )
        raw = next(h for h in runner.hooks.hooks if isinstance(h, LossRecorder)).losses
        timer = next(h for h in runner.hooks.hooks if isinstance(h, IterTimerHook))
        assert timer.iter_times.maxlen == window  # time and data_time: averaged over the same window
        assert len(raw) == EPOCHS * ITERS_PER_EPOCH
        for record in scalars(work_dir):
            step = record["step"]
            expected = sum(raw[max(step - window, 0) : step]) / len(raw[max(step - window, 0) : step])
            assert record["loss"] == pytest.approx(expected, rel=1e-5)
        if window == 3:  # the average is not the last value: the claim is not vacuous on this data
            assert any(abs(r["loss"] - raw[r["step"] - 1]) > 1e-6 for r in scalars(work_dir))


def check_log_processor_num_digits(tmp_path: Path) -> None:
    for digits in (2, 6):
        work_dir = subdir(tmp_path, f"digits_{digits}")
        train(work_dir, {"logger": {"interval": 2}}, log_processor=LogProcessor(num_digits=digits))
        records, lines = scalars(work_dir), train_log_lines(work_dir)
        assert len(records) == len(lines)
        for record, line in zip(records, lines, strict=True):
            shown = log_fields(line)
            for key in ("loss", "time", "data_time"):
                assert float(shown[key]) == float(f"{record[key]:.{digits}g}")
        if digits == 2:  # scalars.jsonl keeps full precision: only the human log is rounded
            assert any(record["loss"] != float(f"{record['loss']:.2g}") for record in records)


def check_log_processor_by_epoch(tmp_path: Path) -> None:
    train(tmp_path, {"logger": {"interval": 2}}, log_processor=LogProcessor(by_epoch=True))
    labels = [re.search(r"Epoch\(train\) (\[\d+\]\[\d+/\d+\])", line) for line in train_log_lines(tmp_path)]
    assert [m.group(1) if m else None for m in labels] == [
        f"[{e}][{i}/{ITERS_PER_EPOCH}]" for e in range(1, EPOCHS + 1) for i in (2, 4)
    ]
