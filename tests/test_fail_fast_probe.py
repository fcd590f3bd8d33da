"""Fail fast after building: iteration-stepped schedules are checked against the run's real length, and
the contract probe sends one real batch per dataloader through the user's code, refusing every mismatch
before the first optimizer step and naming its config path (YAML and Python configs alike).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from examples.seed_mlp import Accuracy, MyAwesomeModel, MyDataset
from tests.helpers import assert_nothing_trained, find, recording_runner, seed_config
from typedrunner import ContractError, lazy
from typedrunner.config import (
    DataLoader,
    DefaultSampler,
    Evaluator,
    MultiStepLR,
)
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, ToyMetric, ToyModel, toy_config

HERE = __name__
"""This module's dotted path: YAML configs below name its classes as ``type: <HERE>.ClassName``."""


# ----------------------------------------------------------------------------------------------
# User code with the mistakes users make
# ----------------------------------------------------------------------------------------------
class Float64Dataset(ToyDataset):
    """Data built with numpy defaults: float64."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index].double(), self.labels[index]


class FloatLabelDataset(ToyDataset):
    """Labels stored as floats (read from a CSV, say)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index].float()


class LabelFiveDataset(ToyDataset):
    """Class ids 0 and 5 (e.g. two classes picked out of a larger label set, not remapped)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index] * 5


class DictDataset(ToyDataset):
    """Samples as dicts whose keys do not match ``ToyModel.forward(data, labels)``."""

    def __getitem__(self, index: int) -> dict[str, Tensor]:  # type: ignore[override]
        return {"inputs": self.data[index], "labels": self.labels[index]}


class WithIndexDataset(ToyDataset):
    """Samples with an extra element (the index), so the batch has three items, not two."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:  # type: ignore[override]
        return self.data[index], self.labels[index], index


class MissingFileDataset(ToyDataset):
    """``__getitem__`` reads a file that is not there."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        raise FileNotFoundError(f"images/{index:05d}.png")


class RaggedDataset(ToyDataset):
    """Variable-length samples that ``default_collate`` cannot stack."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index][: 1 + index % 4], self.labels[index]


class TensorLossModel(ToyModel):
    """``mode='loss'`` returns the loss tensor itself instead of ``{'loss': ...}``."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return F.cross_entropy(self.net(data), labels)
        return super().forward(data, labels, mode)


class NoLossKeyModel(ToyModel):
    """Returns ``{'ce': ...}``: no key contains 'loss', so nothing would be optimised."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return {"ce": F.cross_entropy(self.net(data), labels)}
        return super().forward(data, labels, mode)


class PerSampleLossModel(ToyModel):
    """Forgets to reduce: the loss has one entry per sample."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return {"loss": F.cross_entropy(self.net(data), labels, reduction="none")}
        return super().forward(data, labels, mode)


class NaNLossModel(ToyModel):
    """A log of a negative number: the loss is NaN from the first batch."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return {"loss": F.cross_entropy(self.net(data), labels) + torch.log(torch.tensor(-1.0))}
        return super().forward(data, labels, mode)


class NoGradLossModel(ToyModel):
    """Computes the loss under ``torch.no_grad()`` (copied from the evaluation code)."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            with torch.no_grad():
                return {"loss": F.cross_entropy(self.net(data), labels)}
        return super().forward(data, labels, mode)


class DetachedLossModel(ToyModel):
    """Detaches the logits, then re-enables grad on the copy: a graph that reaches no parameter."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            logits = self.net(data).detach().requires_grad_()
            return {"loss": F.cross_entropy(logits, labels)}
        return super().forward(data, labels, mode)


class DictOutputMetric(ToyMetric):
    """Written for a model whose predictions are a dict; ToyModel returns a tuple."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append((len(data_samples["labels"]), int(data_samples["correct"])))


class ScalarMetric(ToyMetric):
    """``compute_metrics`` returns a bare number instead of ``{name: number}``."""

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return cast(dict[str, float], 97.5)


class TextMetric(ToyMetric):
    """``compute_metrics`` returns a string value."""

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return cast(dict[str, float], {"accuracy": "97.5%"})


# Seed-workload variants, for YAML configs that swap one component with ``type: <HERE>.Name``.
class Float64Rings(MyDataset):
    """The seed's rings, converted with ``torch.tensor(numpy_array)``: float64."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index].double(), self.labels[index]


class OneBasedRings(MyDataset):
    """The seed's rings labelled 1 and 2 (1-based), for a 2-class classifier."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index] + 1


class ThreeFeatureMLP(MyAwesomeModel):
    """The seed's MLP with a first layer expecting 3 features; the rings have 2."""

    def __init__(self, layers: int = 4, activation: Literal["relu", "silu", "none"] = "relu") -> None:
        super().__init__(layers=layers, activation=activation)
        self.layer0 = nn.Linear(3, 64)


class DictAccuracy(Accuracy):
    """Expects predictions as ``{'scores': ..., 'labels': ...}``; the seed model returns a tuple."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        correct = (data_samples["scores"].argmax(dim=1) == data_samples["labels"]).sum()
        self.results.append({"batch_size": len(data_samples["labels"]), "correct": correct})


def toy_loader(dataset: Any, **kwargs: Any) -> DataLoader:
    return DataLoader(dataset=dataset, sampler=DefaultSampler(shuffle=True), batch_size=16, **kwargs)


# ----------------------------------------------------------------------------------------------
# Built checks: iteration-stepped schedules against the run's real length
# ----------------------------------------------------------------------------------------------
def test_iteration_milestones_beyond_the_run_python(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, param_scheduler=[MultiStepLR(by_epoch=False, milestones=[40, 80])])
    runner, hook = recording_runner(cfg)  # the length of the run is known only once data is built
    find(runner.check(), "param_scheduler[0].milestones", "only 8 iterations", "4 per epoch", "by_epoch: true")
    with pytest.raises(ContractError) as info:
        runner.train()
    find(list(info.value.problems), "param_scheduler[0].milestones", "only 8 iterations")
    assert_nothing_trained(tmp_path, hook)


def test_iteration_milestones_in_the_first_epoch_python(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path / "a", param_scheduler=[MultiStepLR(by_epoch=False, milestones=[1, 2])])
    runner, hook = recording_runner(cfg)
    findings = runner.check()
    find(findings, "param_scheduler[0].milestones", "inside the first epoch", severity="warning")
    assert [p.severity for p in findings] == ["warning"]
    with pytest.raises(ContractError):
        runner.train(strict=True)
    assert_nothing_trained(tmp_path, hook)
    runner.train()  # not strict: a warning does not stop the run
    assert hook.names().count("before_train_iter") == 8


def test_iteration_milestones_yaml(tmp_path: Path, repo_root: Path) -> None:
    beyond = seed_config(
        repo_root, tmp_path / "beyond", "param_scheduler.by_epoch=false", "param_scheduler.milestones=[400,800]"
    )
    runner, hook = recording_runner(beyond)
    find(runner.check(), "param_scheduler[0].milestones", "only 40 iterations")
    with pytest.raises(ContractError):
        runner.train()
    assert_nothing_trained(tmp_path / "beyond", hook)

    # The seed's [4, 8] with by_epoch: false on 1024 points (16 iterations per epoch): over in epoch 1.
    early = seed_config(
        repo_root, tmp_path / "early", "param_scheduler.by_epoch=false", "train_dataloader.dataset.size=1024"
    )
    runner, hook = recording_runner(early)
    find(runner.check(), "param_scheduler[0].milestones", "[4, 8]", "first epoch (16 iterations)", severity="warning")
    with pytest.raises(ContractError):
        runner.train(strict=True)
    assert_nothing_trained(tmp_path / "early", hook)


# ----------------------------------------------------------------------------------------------
# The contract probe: one real batch per dataloader through the user's code
# ----------------------------------------------------------------------------------------------
LOSS = "mode='loss'"
PROBE_CASES = [
    pytest.param(
        {"train_dataloader": toy_loader(lazy(Float64Dataset, size=64))},
        [("train_dataloader", "probe: train", "float64", "float32", "Tensor[16, 4] float64")],
        id="float64-data",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(FloatLabelDataset, size=64))},
        [("model", "probe: train", LOSS, "ToyModel.forward", "Tensor[16] float32", "int64")],
        id="float-labels",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(LabelFiveDataset, size=64))},
        [("model", "probe: train", LOSS, "ToyModel.forward", "Target 5 is out of bounds", "Tensor[16, 4] float32")],
        id="label-out-of-range",
    ),
    pytest.param(
        {"model": lazy(ToyModel, dim=3, hidden=8)},
        [
            ("model", "probe: train", LOSS, "ToyModel.forward", "Tensor[16, 4] float32", "first layer"),
            ("model", "probe: val", "mode='predict'", "ToyModel.forward", "Tensor[32, 4] float32", "first layer"),
        ],
        id="first-layer-width",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(DictDataset, size=64))},
        [("model", "probe: train", "ToyModel.forward(data, labels, mode)", "['inputs', 'labels']", "'data'")],
        id="dict-keys",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(WithIndexDataset, size=64))},
        [("model", "probe: train", "ToyModel.forward(data, labels, mode)", "list of 3 items", "Tensor[16] int64)")],
        id="tuple-arity",
    ),
    pytest.param(
        {"model": lazy(TensorLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "TensorLossModel.forward(mode='loss') must return a mapping", "Tensor[] float32")],
        id="loss-not-a-mapping",
    ),
    pytest.param(
        {"model": lazy(NoLossKeyModel, dim=4, hidden=8)},
        [("model", "probe: train", "NoLossKeyModel.forward(mode='loss')", "['ce']", "none containing 'loss'")],
        id="no-loss-key",
    ),
    pytest.param(
        {"model": lazy(PerSampleLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "PerSampleLossModel.forward(mode='loss')['loss']", "shape [16]", "not a scalar")],
        id="non-scalar-loss",
    ),
    pytest.param(
        {"model": lazy(NaNLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "NaNLossModel.forward(mode='loss')['loss'] is nan", "Tensor[16, 4] float32")],
        id="nan-loss",
    ),
    pytest.param(
        {"model": lazy(NoGradLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "NoGradLossModel.forward(mode='loss')", "torch.no_grad")],
        id="loss-under-no-grad",
    ),
    pytest.param(
        {"model": lazy(DetachedLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "DetachedLossModel.forward(mode='loss')", "reaches none of the model's")],
        id="detached-loss",
    ),
    pytest.param(
        {"val_evaluator": Evaluator(metrics=[lazy(DictOutputMetric)])},
        [("val_evaluator.metrics[0]", "probe: val", "process", "DictOutputMetric.process", "Tensor[32, 2] float32")],
        id="metric-process-raises",
    ),
    pytest.param(
        {"val_evaluator": Evaluator(metrics=[lazy(ScalarMetric)])},
        [("val_evaluator.metrics[0]", "probe: val", "compute_metrics", "ScalarMetric.compute_metrics", "mapping")],
        id="metrics-not-a-mapping",
    ),
    pytest.param(
        {"val_evaluator": Evaluator(metrics=[lazy(TextMetric)])},
        [("val_evaluator.metrics[0]", "probe: val", "TextMetric.compute_metrics()['accuracy'] is str, not a number")],
        id="metric-not-a-number",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(MissingFileDataset, size=64))},
        [("train_dataloader.dataset", "probe: train", "MissingFileDataset[", "FileNotFoundError", "images/")],
        id="getitem-raises",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(RaggedDataset, size=64))},
        [("train_dataloader.collate_fn", "probe: train", "default_collate failed", "stack expects each tensor")],
        id="collate-fails",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(ToyDataset, size=0))},
        [("train_dataloader.dataset", "probe: train", "no batch", "empty dataset")],
        id="empty-dataset",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), PROBE_CASES)
def test_probe_python(tmp_path: Path, overrides: dict[str, Any], expected: list[tuple[str, ...]]) -> None:
    runner, hook = recording_runner(toy_config(tmp_path, **overrides))
    findings = runner.check()
    for path, stage, *fragments in expected:
        assert find(findings, path, *fragments).stage == stage
    assert len([p for p in findings if p.severity == "error"]) == len(expected), findings

    with pytest.raises(ContractError) as info:
        runner.train()
    for path, _, *fragments in expected:
        find(list(info.value.problems), path, *fragments)
    assert hook.calls == []
    assert_nothing_trained(tmp_path, hook)


YAML_PROBE_CASES = [
    pytest.param(
        [f"train_dataloader.dataset.type={HERE}.Float64Rings"],
        ("train_dataloader", "probe: train", "float64 data", "Tensor[64, 2] float64"),
        id="float64-data",
    ),
    pytest.param(
        [f"train_dataloader.dataset.type={HERE}.OneBasedRings"],
        ("model", "probe: train", LOSS, "MyAwesomeModel.forward", "Target 2 is out of bounds", "Tensor[64, 2] float32"),
        id="label-out-of-range",
    ),
    pytest.param(
        [f"model.type={HERE}.ThreeFeatureMLP"],
        ("model", "probe: train", LOSS, "ThreeFeatureMLP.forward", "(64x2 and 3x64)", "first layer"),
        id="first-layer-width",
    ),
    pytest.param(
        [f"val_evaluator.type={HERE}.DictAccuracy"],
        ("val_evaluator.metrics[0]", "probe: val", "process: DictAccuracy.process raised", "Tensor[64, 2] float32"),
        id="metric-process-raises",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), YAML_PROBE_CASES)
def test_probe_yaml(tmp_path: Path, repo_root: Path, overrides: list[str], expected: tuple[str, ...]) -> None:
    runner, hook = recording_runner(seed_config(repo_root, tmp_path, *overrides))
    path, stage, *fragments = expected
    assert find(runner.check(), path, *fragments).stage == stage
    with pytest.raises(ContractError) as info:
        runner.train()
    find(list(info.value.problems), path, *fragments)
    assert_nothing_trained(tmp_path, hook)


def test_probe_reports_every_mismatch_in_one_error(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path,
        train_dataloader=toy_loader(lazy(FloatLabelDataset, size=64)),
        val_evaluator=Evaluator(metrics=[lazy(TextMetric)]),
        param_scheduler=[MultiStepLR(by_epoch=False, milestones=[100])],
    )
    runner, hook = recording_runner(cfg)
    with pytest.raises(ContractError) as info:
        runner.train()
    paths = {p.path for p in info.value.problems}
    assert paths == {"model", "val_evaluator.metrics[0]", "param_scheduler[0].milestones"}
    text = str(info.value)
    assert "[probe: train]" in text
    assert "[probe: val]" in text
    assert "[cross-field]" in text
    assert_nothing_trained(tmp_path, hook)


def test_good_config_reports_batches_and_metric_names(tmp_path: Path, repo_root: Path) -> None:
    runner = Runner(toy_config(tmp_path / "toy"))
    assert runner.check() == []
    assert runner.metric_names == {"val": ["accuracy"]}
    assert runner.batch_structure == {
        "train": "list(Tensor[16, 4] float32, Tensor[16] int64)",
        "val": "list(Tensor[32, 4] float32, Tensor[32] int64)",
    }
    assert runner.val_loop is not None
    assert runner.val_loop.evaluator.metrics[0].results == []  # the probe used a copy of the metric

    seed = Runner(seed_config(repo_root, tmp_path / "seed"))
    assert seed.check() == []
    assert seed.metric_names["val"] == ["accuracy"]
    assert seed.batch_structure["train"] == "list(Tensor[64, 2] float32, Tensor[64] int64)"
