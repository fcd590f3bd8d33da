"""``python -m typedrunner.migrate``: an MMEngine Python config with a three-level ``_base_`` chain
(tests/mmengine_configs, laid out as OpenMMLab repositories are) is read without running it, converted,
validated and trained; what cannot be carried over is listed one key per line with the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, explain
from typedrunner import Config, ConfigError
from typedrunner.config.pyconfig import read_config

CONFIGS = REPO / "tests" / "mmengine_configs"
QUICK = CONFIGS / "mlp" / "mlp_rings_quick.py"
NOT_CARRIED = [
    "not carried over (5):",
    "  dataset_type: not a Runner argument (a variable of the config file; where it was used, its value was copied)",
    "  default_scope: registry scopes: typedrunner has one registry per kind, names resolve without a scope",
    "  vis_backends: visualizer backends are not supported yet (the run directory's JSON-lines log holds every scalar)",
    "  visualizer: visualizer backends are not supported yet (the run directory's JSON-lines log holds every scalar)",
    "  default_hooks.visualization (VisualizationHook): unknown key; valid keys: runtime_info, timer, sampler_seed, "
    "logger, param_scheduler, checkpoint",
]


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
    assert "visualizer" not in text and "default_scope" not in text and "VisualizationHook" not in text


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
