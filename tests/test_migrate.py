"""``python -m typedrunner.migrate``: an MMEngine Python config with a three-level ``_base_`` chain
(tests/mmengine_configs, laid out as OpenMMLab repositories are) is read without running it, converted,
validated and trained; what cannot be carried over is listed one key per line with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from tests.helpers import REPO, explain
from typedrunner import Config, ConfigError
from typedrunner.config import RunnerConfig
from typedrunner.config.pyconfig import read_config
from typedrunner.runner import Runner

CONFIGS = REPO / "tests" / "mmengine_configs"
QUICK = CONFIGS / "mlp" / "mlp_rings_quick.py"
NOT_CARRIED = [
    "not carried over (5):",
    "  dataset_type: not a Runner argument (a variable of the config file; where it was used, its value was copied)",
    "  default_scope: registry scopes: typedrunner has one registry per kind, names resolve without a scope",
    "  vis_backends: not a Runner argument (a variable of the config file; where it was used, its value was copied)",
    "  visualizer.type (UniversalVisualizer): replaced by Visualizer, which sends every scalar to the same backends "
    "(typedrunner draws no images)",
    "  default_hooks.visualization (VisualizationHook): draws predictions on validation and test images; "
    "typedrunner's visualizer logs scalars, it draws no images",
]


def _load(text: str) -> dict[str, Any]:
    """A written experiment YAML as plain data."""
    data = OmegaConf.to_container(OmegaConf.create(text))
    assert isinstance(data, dict)
    return {str(k): v for k, v in data.items()}


def migrate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typedrunner.migrate", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_three_levels_of_base_merge_as_mmengine_merges_them() -> None:
    read = read_config(QUICK)
    values = read.values
    assert [p.relative_to(CONFIGS).as_posix() for p in read.files] == [
        "mlp/mlp_rings_quick.py",
        "mlp/mlp_rings_10e.py",
        "_base_/models/mlp.py",
        "_base_/datasets/rings.py",
        "_base_/schedules/schedule_10e.py",
        "_base_/default_runtime.py",
    ]
    # merged key by key, three levels down
    assert values["model"] == {"type": "MyAwesomeModel", "layers": 3, "activation": "relu"}
    assert values["train_cfg"] == {"by_epoch": True, "max_epochs": 2, "val_begin": 1, "val_interval": 1}
    assert values["train_dataloader"]["dataset"] == {"type": "MyDataset", "is_train": True, "size": 2000}
    # _delete_: the base's Adam is gone, not merged with
    assert values["optim_wrapper"] == {"optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9}}
    # {{_base_.x}}: the bases' values (num_workers 2: the child's own override is not the base's)
    assert values["test_dataloader"]["num_workers"] == 2
    assert values["test_dataloader"]["dataset"] == {"type": "MyDataset", "is_train": False, "size": 1000}
    assert values["param_scheduler"][1]["end"] == 10 - 8
    # a variable of the file was substituted where used
    assert values["val_dataloader"]["dataset"]["type"] == "MyDataset"
    assert Config.fromfile(QUICK) == values


def test_reading_a_config_runs_and_imports_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "base.py").write_text("model = dict(type='Net', width=2)\n", encoding="utf-8")
    path = tmp_path / "cfg.py"
    path.write_text(
        "_base_ = './base.py'\n"
        "from not_installed_pkg.models import ResNet\n"
        "import os\n"
        f"os.system('touch {marker}')\n"
        "backbone = dict(type=ResNet, depth=50)\n"
        f"x = open('{marker}', 'w')\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        read_config(path)
    lines = [p.message for p in info.value.problems]
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:4: a Expr statement is not evaluated")
    assert lines[1].startswith(f'{path}:6: "open(') and "is not evaluated" in lines[1]
    assert not marker.exists()
    assert "not_installed_pkg" not in sys.modules
    path.write_text(
        path.read_text(encoding="utf-8").splitlines()[0] + "\nfrom not_installed_pkg.models import ResNet\n"
        "backbone = dict(type=ResNet, depth=50)\n",
        encoding="utf-8",
    )
    values = read_config(path).values
    assert values == {
        "model": {"type": "Net", "width": 2},
        "backbone": {"type": "not_installed_pkg.models.ResNet", "depth": 50},
    }


def test_new_style_read_base_with_attribute_assignment_and_update(tmp_path: Path) -> None:
    (tmp_path / "base.py").write_text(
        "model = dict(type='Net', width=2)\ntrain_cfg = dict(max_epochs=10, val_interval=1)\n", encoding="utf-8"
    )
    path = tmp_path / "cfg.py"
    path.write_text(
        "from mmengine.config import read_base\n"
        "from mmengine.dataset import DefaultSampler\n"
        "with read_base():\n"
        "    from .base import *\n"
        "train_cfg.max_epochs = 3\n"
        "model.update(width=4)\n"
        "sampler = dict(type=DefaultSampler, shuffle=True)\n",
        encoding="utf-8",
    )
    assert read_config(path).values == {
        "model": {"type": "Net", "width": 4},
        "train_cfg": {"max_epochs": 3, "val_interval": 1},
        "sampler": {"type": "mmengine.dataset.DefaultSampler", "shuffle": True},
    }


def test_base_errors_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("_base_ = './b.py'\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("_base_ = './a.py'\n", encoding="utf-8")
    (tmp_path / "c.py").write_text("_base_ = ['./missing.py']\nx = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="inherits from itself through _base_"):
        read_config(tmp_path / "a.py")
    with pytest.raises(ConfigError, match=r"c\.py:1: config file .*missing\.py' does not exist"):
        read_config(tmp_path / "c.py")


def test_migrate_converts_and_validates(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """(The README's migration guide runs the same conversion from a project root, and trains it.)"""
    out = tmp_path / "conf" / "experiment" / "mlp_rings_quick.yaml"
    result = migrate([str(QUICK.relative_to(REPO)), "--out", str(out)], subprocess_env)
    assert result.returncode == 0, explain(result)
    lines = result.stdout.splitlines()
    assert lines[0] == f"wrote {out} (from tests/mmengine_configs/mlp/mlp_rings_quick.py and 5 base files)"
    assert lines[1:-1] == NOT_CARRIED
    assert lines[-1] == "valid; run it: python -m typedrunner +experiment=mlp_rings_quick"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# @package _global_\n")
    assert "default_scope" not in text and "VisualizationHook" not in text and "UniversalVisualizer" not in text
    converted = _load(text)
    assert converted["visualizer"] == {"type": "Visualizer", "vis_backends": [{"type": "LocalVisBackend"}]}
    assert "visualization" not in converted["default_hooks"]


def test_migrate_of_an_openmmlab_model_writes_the_file_and_exits_2_with_the_report(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    path = tmp_path / "resnet.py"
    path.write_text(
        f"_base_ = ['{CONFIGS / '_base_' / 'default_runtime.py'}']\n"
        "model = dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18),\n"
        "             data_preprocessor=dict(type='ClsDataPreprocessor', mean=[0, 0, 0]))\n"
        "custom_hooks = [dict(type='EMAHook', momentum=0.001), dict(type='MMDetWandbHook')]\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.yaml"
    result = migrate([str(path), "--out", str(out)], subprocess_env)
    assert result.returncode == 2, explain(result)
    assert out.is_file()
    assert "  custom_hooks[1] (MMDetWandbHook): unknown hook type 'MMDetWandbHook'" in result.stdout
    assert "model.type: unknown model type 'ImageClassifier'" in result.stderr
    assert "Traceback" not in result.stderr


VISUALIZER_CONFIG = f"""_base_ = ['{QUICK}']
train_cfg = dict(max_epochs=1)
train_dataloader = dict(dataset=dict(size=128))
vis_backends = [
    dict(type='LocalVisBackend', img_save_dir='images'),
    dict(type='ClearMLVisBackend'),
    dict(type='TensorboardVisBackend'),
    dict(type='WandbVisBackend', init_kwargs=dict(project='rings', entity='lab'), watch_kwargs=dict(log='all')),
    dict(type='NeptuneVisBackend', init_kwargs=dict(project='lab/rings')),
    dict(type='MLflowVisBackend', exp_name='rings', artifact_suffix=('.json',)),
    dict(type='DVCLiveVisBackend'),
    dict(type='AimVisBackend'),
    dict(type='TensorboardVisBackend', save_dir='/var/log/tb'),
]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer', line_width=3)
default_hooks = dict(visualization=dict(type='DetVisualizationHook', draw=True, interval=10))
"""
VISUALIZER_NOTES = [
    "  vis_backends: not a Runner argument (a variable of the config file; where it was used, its value was copied)",
    "  visualizer.type (DetLocalVisualizer): replaced by Visualizer, which sends every scalar to the same backends "
    "(typedrunner draws no images)",
    "  visualizer.name: not an argument of typedrunner's Visualizer (it takes vis_backends)",
    "  visualizer.line_width: not an argument of typedrunner's Visualizer (it takes vis_backends)",
    "  visualizer.vis_backends[0].img_save_dir: where MMEngine saves drawn images; typedrunner's visualizer logs "
    "scalars, it draws no images",
    "  visualizer.vis_backends[1] (ClearMLVisBackend): typedrunner has no such backend (it has LocalVisBackend, "
    "TensorboardVisBackend, MLflowVisBackend, WandbVisBackend)",
    "  visualizer.vis_backends[3].init_kwargs.entity: a wandb.init argument typedrunner does not pass "
    "(it takes project, group, name, tags, mode)",
    "  visualizer.vis_backends[3].watch_kwargs: typedrunner does not call wandb.watch",
    "  visualizer.vis_backends[4] (NeptuneVisBackend): typedrunner has no such backend (it has LocalVisBackend, "
    "TensorboardVisBackend, MLflowVisBackend, WandbVisBackend)",
    "  visualizer.vis_backends[5].artifact_suffix: typedrunner logs no MLflow artifacts",
    "  visualizer.vis_backends[6] (DVCLiveVisBackend): typedrunner has no such backend (it has LocalVisBackend, "
    "TensorboardVisBackend, MLflowVisBackend, WandbVisBackend)",
    "  visualizer.vis_backends[7] (AimVisBackend): typedrunner has no such backend (it has LocalVisBackend, "
    "TensorboardVisBackend, MLflowVisBackend, WandbVisBackend)",
    "  visualizer.vis_backends[8] (TensorboardVisBackend): save_dir: must be a relative path inside the run "
    "directory, without '..' (got '/var/log/tb')",
    "  default_hooks.visualization (DetVisualizationHook): draws predictions on validation and test images; "
    "typedrunner's visualizer logs scalars, it draws no images",
]


def test_migrate_carries_the_visualizer_backends_over(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """A task visualizer becomes ``Visualizer``; each backend typedrunner has is carried with its arguments
    (MMEngine's wandb ``init_kwargs`` as the backend's own), everything else is one line with the reason."""
    path = tmp_path / "rings_vis.py"
    path.write_text(VISUALIZER_CONFIG, encoding="utf-8")
    out = tmp_path / "rings_vis.yaml"
    result = migrate([str(path), "--out", str(out)], subprocess_env)
    assert result.returncode == 0, explain(result)
    lines = result.stdout.splitlines()
    notes = [line for line in lines[2:-1] if "vis" in line.split(":")[0]]  # (dataset_type, default_scope: above)
    assert notes == VISUALIZER_NOTES
    assert lines[-1] == "valid; run it: python -m typedrunner +experiment=rings_vis"
    converted = _load(out.read_text(encoding="utf-8"))
    assert converted["visualizer"] == {
        "type": "Visualizer",
        "vis_backends": [
            {"type": "LocalVisBackend"},
            {"type": "TensorboardVisBackend"},
            {"type": "WandbVisBackend", "project": "rings"},
            {"type": "MLflowVisBackend", "exp_name": "rings"},
        ],
    }
    assert "visualization" not in converted["default_hooks"]


def test_a_migrated_visualizer_trains_and_writes_the_backends_files(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The converted file validates, and a run of it writes MMEngine's ``vis_data/scalars.json`` and
    TensorBoard's event files."""
    path = tmp_path / "rings_vis.py"
    path.write_text(
        f"_base_ = ['{QUICK}']\n"
        "train_cfg = dict(max_epochs=1)\n"
        "train_dataloader = dict(dataset=dict(size=128))\n"
        "val_dataloader = dict(dataset=dict(size=64))\n"
        "visualizer = dict(type='Visualizer', _delete_=True,\n"
        "                  vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])\n",
        encoding="utf-8",
    )
    out = tmp_path / "rings_vis.yaml"
    result = migrate([str(path), "--out", str(out)], subprocess_env)
    assert result.returncode == 0, explain(result)
    assert "  visualizer" not in result.stdout  # nothing of this visualizer is left out
    converted = _load(out.read_text(encoding="utf-8"))
    run_dir = tmp_path / "run"
    runner = Runner(RunnerConfig.from_dict({**converted, "work_dir": str(run_dir)}))
    runner.train()
    scalars = [json.loads(line) for line in (run_dir / "vis_data" / "scalars.json").read_text().splitlines()]
    assert any("val/accuracy" in record for record in scalars)  # the validation's metric reached the backend
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
