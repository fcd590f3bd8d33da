"""Code written the way MMEngine's Runner tutorial writes it runs with only the imports changed.

Registry names here start with ``Spell`` so they never clash with other test modules (registries are
global). Data is tiny (a few hundred points, two epochs, no worker processes).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Adam
from torch.utils.data import DataLoader, Dataset, default_collate

from typedrunner import DATASETS, METRICS, MODELS, BaseMetric, BaseModel, Config, ConfigError, Runner
from typedrunner.config import TypedRunnerWarning
from typedrunner.parts.checkpoint import load_checkpoint
from typedrunner.parts.optim import OptimWrapper as RuntimeOptimWrapper

# --------------------------------------------------------------------------------------------
# The tutorial's parts (model, dataset, metric), registered with MMEngine's decorators
# --------------------------------------------------------------------------------------------


@MODELS.register_module()
class SpellModel(BaseModel):
    def __init__(self, layers: int = 2, width: int = 16) -> None:
        super().__init__()
        self.layer0 = nn.Linear(2, width)
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(layers - 1)])
        self.classifier = nn.Linear(width, 2)

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        x = F.relu(self.layer0(data))
        for layer in self.hidden:
            x = F.relu(layer(x))
        x = self.classifier(x)
        if mode == "tensor":
            return x
        if mode == "predict":
            return F.softmax(x, dim=1), labels
        if mode == "loss":
            return {"loss": F.cross_entropy(x, labels)}
        raise ValueError(mode)


@DATASETS.register_module()
class SpellRings(Dataset[tuple[Tensor, Tensor]]):
    """Two noisy rings, as the tutorial's dataset, but small."""

    def __init__(self, is_train: bool, size: int) -> None:
        generator = torch.Generator().manual_seed(0 if is_train else 3407)
        self.labels = torch.randint(0, 2, (size,), generator=generator)
        r = 3 * (self.labels + 1) + torch.randn(self.labels.shape, generator=generator)
        theta = torch.rand(self.labels.shape, generator=generator) * 2 * math.pi
        self.data = torch.vstack([r * torch.cos(theta), r * torch.sin(theta)]).T

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.data)


@METRICS.register_module()
class SpellAccuracy(BaseMetric):
    def process(self, data_batch: Any, data_samples: Any) -> None:
        score, gt = data_samples
        self.results.append({"batch_size": len(gt), "correct": (score.argmax(dim=1) == gt).sum().cpu()})

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        total_correct = sum(int(item["correct"]) for item in results)
        total_size = sum(item["batch_size"] for item in results)
        return {"accuracy": 100 * total_correct / total_size}


@METRICS.register_module()
class SpellPrefixedCount(BaseMetric):
    """A metric with a class-level default prefix, as MMEngine metrics declare it."""

    default_prefix = "spellcount"

    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append(len(data_samples[1]))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"samples": float(sum(results))}


def tutorial_runner(work_dir: Path, *, val_evaluator: Any = None, **overrides: Any) -> Runner:
    """The tutorial's ``Runner(...)`` call, its keys and values as written there (small data)."""
    train_set = SpellRings(is_train=True, size=256)
    valid_set = SpellRings(is_train=False, size=128)
    kwargs: dict[str, Any] = dict(
        model=SpellModel(layers=2),
        work_dir=str(work_dir),
        train_dataloader=DataLoader(
            dataset=train_set, shuffle=True, collate_fn=default_collate, batch_size=32, pin_memory=False, num_workers=0
        ),
        val_dataloader=DataLoader(
            dataset=valid_set, shuffle=False, collate_fn=default_collate, batch_size=64, pin_memory=False, num_workers=0
        ),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_begin=1, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type=Adam, lr=0.001)),
        param_scheduler=dict(type="MultiStepLR", by_epoch=True, milestones=[1], gamma=0.1),
        val_cfg=dict(),
        val_evaluator=val_evaluator if val_evaluator is not None else dict(type=SpellAccuracy),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
        launcher="none",
        env_cfg=dict(cudnn_benchmark=False, backend="nccl", mp_cfg=dict(mp_start_method="fork")),
        log_level="INFO",
        load_from=None,
        resume=False,
        randomness=dict(seed=0),
    )
    kwargs.update(overrides)
    # The tutorial's flat ``env_cfg.backend`` is accepted, with a warning naming the canonical path.
    with pytest.warns(TypedRunnerWarning, match="dist_cfg.backend"):
        return Runner(**kwargs)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Checkpoints load with ``weights_only=True`` (DESIGN.md: nothing is lost, nothing runs)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    return state


def assert_epoch_checkpoints(work_dir: Path, epochs: int, model: nn.Module) -> None:
    for epoch in range(1, epochs + 1):
        path = work_dir / f"epoch_{epoch}.pth"
        assert path.is_file(), f"{path.name} not written"
        state = read_checkpoint(path)
        assert state["meta"]["epoch"] == epoch
        assert set(state["state_dict"]) == set(model.state_dict())
    last = (work_dir / "last_checkpoint").read_text(encoding="utf-8").strip()
    assert Path(last).name == f"epoch_{epochs}.pth"
    final = read_checkpoint(work_dir / f"epoch_{epochs}.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(final["state_dict"][key].cpu(), value.cpu()), key


# --------------------------------------------------------------------------------------------
# Runner(...) with built objects and dicts, as the tutorial writes it
# --------------------------------------------------------------------------------------------
def test_tutorial_runner_trains_and_writes_epoch_checkpoints(tmp_path: Path) -> None:
    work_dir = tmp_path / "tutorial"
    runner = tutorial_runner(work_dir)
    assert runner.cfg.env_cfg.dist_cfg.backend == "nccl"
    model = runner.train()
    assert model is runner.model
    assert runner.epoch == 2
    assert runner.iter == 2 * math.ceil(256 / 32)
    assert_epoch_checkpoints(work_dir, 2, runner.model)
    assert not (work_dir / "epoch_3.pth").exists()
    # Validation after each epoch: metrics are returned by name, as floats in range.
    assert len(runner.metric_history) == 2
    assert set(runner.last_metrics) == {"accuracy"}
    assert 0.0 <= runner.last_metrics["accuracy"] <= 100.0
    metrics = runner.val()
    assert set(metrics) == {"accuracy"}
    assert isinstance(metrics["accuracy"], float)
    # The MultiStepLR milestone after epoch 1 took effect.
    assert isinstance(runner.optim_wrapper, RuntimeOptimWrapper)
    assert runner.optim_wrapper.optimizer.param_groups[0]["lr"] == pytest.approx(0.001 * 0.1)


def test_tutorial_checkpoint_loads_safely_and_as_load_from(tmp_path: Path) -> None:
    first = tutorial_runner(tmp_path / "first", train_cfg=dict(by_epoch=True, max_epochs=2, val_begin=1))
    first.train()
    state = load_checkpoint(tmp_path / "first" / "epoch_2.pth")
    assert set(state["state_dict"]) == set(first.model.state_dict())
    second = tutorial_runner(
        tmp_path / "second",
        load_from=str(tmp_path / "first" / "epoch_2.pth"),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_begin=1),
    )
    second.val()
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value), key


def test_tutorial_runner_validation_is_the_model_on_the_val_set(tmp_path: Path) -> None:
    runner = tutorial_runner(tmp_path / "val")
    runner.train()
    metrics = runner.val()
    # Recompute the accuracy by hand with the trained model: the evaluator saw exactly this.
    valid_set = SpellRings(is_train=False, size=128)
    runner.model.eval()
    with torch.no_grad():
        scores = runner.model(valid_set.data, valid_set.labels, mode="tensor")
    expected = 100 * int((scores.argmax(dim=1) == valid_set.labels).sum()) / len(valid_set)
    assert metrics["accuracy"] == pytest.approx(expected)


def test_tutorial_type_given_as_a_name_equals_type_given_as_a_class(tmp_path: Path) -> None:
    by_class = tutorial_runner(
        tmp_path / "a",
        model=dict(type=SpellModel, layers=2),
        val_evaluator=dict(type=SpellAccuracy),
        optim_wrapper=dict(optimizer=dict(type=Adam, lr=0.001)),
    )
    by_name = tutorial_runner(
        tmp_path / "b",
        model=dict(type="SpellModel", layers=2),
        val_evaluator=dict(type="SpellAccuracy"),
        optim_wrapper=dict(optimizer=dict(type="Adam", lr=0.001)),
    )
    for name in ("model", "val_evaluator", "optim_wrapper", "param_scheduler"):
        assert getattr(by_class.cfg, name) == getattr(by_name.cfg, name), name
    assert isinstance(by_class.model, SpellModel)
    assert isinstance(by_name.model, SpellModel)
    assert type(by_name.optim_wrapper.optimizer) is torch.optim.Adam  # type: ignore[union-attr]


def test_tutorial_metric_prefix_gives_prefixed_keys(tmp_path: Path) -> None:
    runner = tutorial_runner(
        tmp_path / "prefix",
        val_evaluator=[dict(type=SpellAccuracy, prefix="spell"), dict(type="SpellPrefixedCount")],
        train_cfg=dict(by_epoch=True, max_epochs=2, val_begin=1, val_interval=1),
    )
    runner.train()
    assert set(runner.last_metrics) == {"spell/accuracy", "spellcount/samples"}
    assert runner.last_metrics["spellcount/samples"] == 128.0
    summary = json.loads((tmp_path / "prefix" / "summary.json").read_text(encoding="utf-8"))
    assert summary["final_metrics"] == runner.last_metrics


def test_base_metric_prefix_directly() -> None:
    metric = SpellAccuracy(prefix="val")
    metric.process(None, (torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 0])))
    assert metric.evaluate(2) == {"val/accuracy": 50.0}
    assert metric.results == []  # reset after evaluate
    assert SpellPrefixedCount().prefix == "spellcount"
    assert SpellAccuracy().prefix is None


def test_tutorial_mistake_is_reported_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        tutorial_runner(
            tmp_path / "bad",
            train_cfg=dict(by_epoch=True, max_epoch=2, val_begin=1, val_interval=1),
            optim_wrapper=dict(optimizer=dict(type="Adamm", lr=0.001)),
        )
    paths = {p.path for p in info.value.problems}
    assert {"train_cfg.max_epoch", "optim_wrapper.optimizer.type"} <= paths
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------------------------
# Runner.from_cfg(Config.fromfile(path)) with a plain-dict config file
# --------------------------------------------------------------------------------------------
_COUNTER = itertools.count()

PARTS_MODULE = '''
"""User parts imported through custom_imports."""
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from typedrunner import DATASETS, METRICS, MODELS, BaseMetric, BaseModel


@MODELS.register_module()
class SpellFileNet{n}(BaseModel):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, inputs: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        logits = self.net(inputs)
        if mode == "loss":
            return {{"loss": F.cross_entropy(logits, labels)}}
        if mode == "predict":
            return logits, labels
        return logits


@DATASETS.register_module()
class SpellFilePoints{n}(Dataset):
    def __init__(self, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.data = torch.randn(size, 3, generator=generator)
        self.labels = (self.data.sum(dim=1) > 0).long()

    def __getitem__(self, index: int) -> Any:
        return self.data[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.data)


@METRICS.register_module()
class SpellFileAccuracy{n}(BaseMetric):
    def process(self, data_batch: Any, data_samples: Any) -> None:
        logits, labels = data_samples
        self.results.append((len(labels), int((logits.argmax(dim=1) == labels).sum())))

    def compute_metrics(self, results: list) -> dict:
        return {{"acc": 100.0 * sum(c for _, c in results) / sum(n for n, _ in results)}}
'''

CONFIG_FILE = """
from torch.optim import SGD

custom_imports = dict(imports=["{module}"], allow_failed_imports=False)

model = dict(type="SpellFileNet{n}", hidden=8)
work_dir = {work_dir!r}

train_dataloader = dict(
    dataset=dict(type="SpellFilePoints{n}", size=200, seed=0),
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    batch_size=50,
    num_workers=0,
)
train_cfg = dict(by_epoch=True, max_epochs=2, val_begin=1, val_interval=1)
optim_wrapper = dict(optimizer=dict(type=SGD, lr=0.1, momentum=0.9))
param_scheduler = dict(type="MultiStepLR", by_epoch=True, milestones=[1], gamma=0.5)

val_dataloader = dict(
    dataset=dict(type="SpellFilePoints{n}", size=100, seed=1),
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    batch_size=100,
    num_workers=0,
)
val_cfg = dict()
val_evaluator = dict(type="SpellFileAccuracy{n}", prefix="file")

default_hooks = dict(checkpoint=dict(type="CheckpointHook", interval=1))
launcher = "none"
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"), mp_cfg=dict(mp_start_method="fork"))
randomness = dict(seed=0)
log_level = "INFO"
load_from = None
resume = False
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """A module of user parts written to tmp_path and importable; ``(module name, suffix)``."""
    n = next(_COUNTER)
    name = f"spelling_user_parts_{n}"
    source_dir = tmp_path / "user_src"
    source_dir.mkdir()
    (source_dir / f"{name}.py").write_text(textwrap.dedent(PARTS_MODULE.format(n=n)), encoding="utf-8")
    monkeypatch.syspath_prepend(str(source_dir))
    yield name, n
    sys.modules.pop(name, None)


def write_config(path: Path, module: str, n: int, work_dir: Path) -> Path:
    path.write_text(CONFIG_FILE.format(module=module, n=n, work_dir=str(work_dir)), encoding="utf-8")
    return path


def test_config_fromfile_reads_public_values_only(tmp_path: Path, user_module: tuple[str, int]) -> None:
    module, n = user_module
    path = write_config(tmp_path / "my_config.py", module, n, tmp_path / "work")
    cfg = Config.fromfile(path)
    assert "SGD" not in cfg  # an import is how the file names things, not a setting
    assert cfg.model == {"type": f"SpellFileNet{n}", "hidden": 8}
    assert cfg["train_cfg"]["max_epochs"] == 2
    assert cfg.optim_wrapper["optimizer"]["type"] is torch.optim.SGD
    assert module not in sys.modules  # reading the file imports nothing of the user's yet
    with pytest.raises(AttributeError):
        _ = cfg.no_such_key


def test_runner_from_cfg_trains_from_a_config_file(tmp_path: Path, user_module: tuple[str, int]) -> None:
    module, n = user_module
    work_dir = tmp_path / "work"
    runner = Runner.from_cfg(Config.fromfile(write_config(tmp_path / "my_config.py", module, n, work_dir)))
    assert module in sys.modules  # custom_imports imported it
    assert type(runner.model).__name__ == f"SpellFileNet{n}"
    assert isinstance(runner.optim_wrapper.optimizer, torch.optim.SGD)  # type: ignore[union-attr]
    runner.train()
    assert_epoch_checkpoints(work_dir, 2, runner.model)
    assert set(runner.last_metrics) == {"file/acc"}
    assert 0.0 <= runner.last_metrics["file/acc"] <= 100.0
    assert runner.optim_wrapper.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)  # type: ignore[union-attr]
    written = json.loads((work_dir / "config.json").read_text(encoding="utf-8"))
    assert written["model"] == {"type": f"SpellFileNet{n}", "hidden": 8}
    assert written["optim_wrapper"]["optimizer"]["type"] == "SGD"


def test_config_file_with_a_mistake_reports_its_path(tmp_path: Path, user_module: tuple[str, int]) -> None:
    module, n = user_module
    path = write_config(tmp_path / "bad_config.py", module, n, tmp_path / "work")
    path.write_text(
        path.read_text(encoding="utf-8").replace('model = dict(type="SpellFileNet', 'model = dict(type="SpellFileNte'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        Runner.from_cfg(Config.fromfile(path))
    (problem,) = info.value.problems
    assert problem.path == "model.type"
    assert f"did you mean SpellFileNet{n}" in problem.message


def test_config_file_base_inheritance_is_read_without_running_it(tmp_path: Path) -> None:
    (tmp_path / "base.py").write_text(
        "log_level = 'INFO'\nmodel = dict(type='SpellModel', width=2)\n", encoding="utf-8"
    )
    path = tmp_path / "child.py"
    path.write_text("_base_ = ['./base.py']\nmodel = dict(width=3)\n", encoding="utf-8")
    cfg = Config.fromfile(path)
    assert cfg == {"log_level": "INFO", "model": {"type": "SpellModel", "width": 3}}
    assert cfg.model["width"] == 3


def test_config_fromfile_rejects_missing_and_non_python_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Config.fromfile(tmp_path / "missing.py")
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("model: {type: SpellModel}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\.py"):
        Config.fromfile(yaml_file)


def test_custom_imports_of_a_missing_module_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "cfg.py"
    path.write_text(
        "custom_imports = dict(imports=['spelling_no_such_module'], allow_failed_imports=False)\n"
        "model = dict(type='SpellModel')\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        Runner.from_cfg(Config.fromfile(path))
    (problem,) = info.value.problems
    assert problem.path == "custom_imports[0]"
    assert "spelling_no_such_module" in problem.message
