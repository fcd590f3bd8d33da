"""Known bugs the config fuzz found: minimal reproductions, kept as regression tests.

The package bugs the fuzz (``test_fuzz_*``) found were fixed; each keeps its reproduction here
(``test_bug_...``): 17 configs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz_support import TimeLimit, check_config, small_seed
from typedrunner.check.cross_field import cross_field_problems
from typedrunner.config import RunnerConfig, TypedRunnerWarning
from typedrunner.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Known bugs: minimal reproductions
# ---------------------------------------------------------------------------------------------
LINEAR = {"type": "torch.nn.Linear", "in_features": 2, "out_features": 2}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"model": LINEAR, "resume": {}}, "resume"),
        ({"model": LINEAR, "default_hooks": {"checkpoint": {"save_best": {}}}}, "default_hooks.checkpoint.save_best"),
        ({"model": LINEAR, "param_scheduler": {0: {"type": "StepLR", "step_size": 1}}}, "param_scheduler[0]"),
    ],
)
def test_bug_union_tags_leak_into_paths(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as error:
        RunnerConfig.from_dict(data)
    assert {p.path for p in error.value.problems} == {path}


@pytest.mark.parametrize("dist_cfg", [[1, 2], 5, True])
def test_bug_flat_backend_with_a_non_mapping_dist_cfg(dist_cfg: Any, in_tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TypedRunnerWarning)
        check_config({"model": LINEAR, "env_cfg": {"backend": "nccl", "dist_cfg": dist_cfg}}, in_tmp)


@pytest.mark.parametrize("imports", [5, None, 1.5])
def test_bug_custom_imports_mapping_with_a_non_list(imports: Any, in_tmp: Path) -> None:
    check_config({"model": LINEAR, "custom_imports": {"imports": imports}}, in_tmp)


@pytest.mark.parametrize("type_", ["..x", ".a.B", "..:x"])
def test_bug_relative_dotted_type(type_: str, in_tmp: Path) -> None:
    check_config({"model": {"type": type_}}, in_tmp)


@pytest.mark.parametrize("work_dir", ["a" * 300, "x/" * 3000], ids=["300-byte-name", "6000-byte-path"])
def test_bug_work_dir_too_long(work_dir: str, in_tmp: Path) -> None:
    check_config({"model": LINEAR, "work_dir": work_dir}, in_tmp)


@pytest.mark.parametrize("load_from", ["a" * 300, "x/" * 3000], ids=["300-byte-name", "6000-byte-path"])
def test_bug_load_from_too_long(load_from: str, in_tmp: Path) -> None:
    cfg = RunnerConfig.from_dict({"model": LINEAR, "load_from": load_from})
    assert all(p.path == "load_from" for p in cross_field_problems(cfg))


def test_bug_iterable_arguments_are_validated_late(in_tmp: Path, time_limit: TimeLimit) -> None:
    """Fixed: an ``Iterable[X]`` argument is checked as a list when the config is validated."""
    data = small_seed()
    data["train_dataloader"]["dataset"] = {"type": "torch.utils.data.ConcatDataset", "datasets": [[1, 2]]}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert [p.path for p in info.value.problems] == ["train_dataloader.dataset.datasets[0]"]
