"""Issue 6 (part): Python configs as Hydra experiments, the JSON Schema for editors, the typed
config diff, and sweeps validated (and probed) before any job starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from examples.train_python_config import seed_config
from tests.helpers import CONF, FAST, REPO
from typedrunner.app.compose import compose, register_experiment, to_runner_config
from typedrunner.app.schema import conf_imports, editor_schemas
from typedrunner.config import Adam, MultiStepLR, OptimWrapper, RunnerConfig, TrainLoop


def _compose(overrides: list[str]) -> RunnerConfig:
    config, _ = to_runner_config(compose([*overrides, "work_dir=w"], config_dir=str(CONF)))
    return config


# -- Python configs in Hydra's ConfigStore ------------------------------------------------------
def test_the_shipped_python_experiment_equals_the_yaml_one() -> None:
    assert _compose(["+experiment=mlp_py"]) == _compose(["+experiment=mlp"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    lr=st.floats(min_value=1e-6, max_value=1.0, allow_nan=False),
    epochs=st.integers(min_value=2, max_value=50),
    layers=st.integers(min_value=1, max_value=8),
    gamma=st.floats(min_value=0.01, max_value=0.99),
    override_lr=st.one_of(st.none(), st.sampled_from(["0.5", "1e-4", "0.003"])),
)
def test_python_config_round_trips_through_hydra(
    lr: float, epochs: int, layers: int, gamma: float, override_lr: str | None
) -> None:
    """Python config -> plain data -> Hydra compose -> validate gives an equal config, and a
    command-line override always wins."""
    base = seed_config("w")
    assert base.optim_wrapper is not None and not isinstance(base.optim_wrapper, dict)
    config = base.model_copy(
        update={
            "model": base.model.__class__(base.model.target, {**base.model.kwargs, "layers": layers}),
            "train_cfg": TrainLoop(max_epochs=epochs, val_begin=1),
            "optim_wrapper": OptimWrapper(optimizer=Adam(lr=lr)),
            "param_scheduler": [MultiStepLR(milestones=[1], gamma=gamma)],
        }
    )
    register_experiment("roundtrip", config, keep_work_dir=True)
    overrides = ["+experiment=roundtrip", "work_dir=w"]  # compose() alone would give work_dir the default
    overrides += [f"optim_wrapper.optimizer.lr={override_lr}"] if override_lr else []
    composed, _ = to_runner_config(compose(overrides, config_dir=str(CONF)))
    if override_lr is None:
        assert composed == config
    else:
        assert composed.optim_wrapper == OptimWrapper(optimizer=Adam(lr=float(override_lr)))
        assert composed.model_copy(update={"optim_wrapper": config.optim_wrapper}) == config


def test_a_python_experiment_trains_from_the_command_line(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "typedrunner", "+experiment=mlp_py", "train_cfg.max_epochs=5", *FAST[1:],
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs"] == 5 and summary["final_metrics"]["accuracy"] > 50


# -- JSON Schema ----------------------------------------------------------------------------------
def _declared_schema(path: Path) -> Path:
    for line in path.read_text(encoding="utf-8").splitlines()[:3]:
        if "yaml-language-server: $schema=" in line:
            return (path.parent / line.split("$schema=", 1)[1].strip()).resolve()
    raise AssertionError(f"{path} names no schema")


YAMLS = sorted(p for p in CONF.rglob("*.yaml") if p.relative_to(CONF).parts[0] not in ("hydra", ".schema"))


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(CONF)))
def test_every_conf_yaml_validates_against_its_schema(path: Path) -> None:
    schema = json.loads(_declared_schema(path).read_text(encoding="utf-8"))
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    jsonschema.validate(data, schema)


def test_the_schema_catches_a_typo_in_a_yaml() -> None:
    schema = json.loads((CONF / ".schema" / "train_cfg.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors({"max_epochs": 3}))
    typo = jsonschema.exceptions.best_match(validator.iter_errors({"max_epoch": 3}))
    zero = jsonschema.exceptions.best_match(validator.iter_errors({"max_epochs": 0}))
    assert typo is not None and "max_epoch" in typo.message
    assert zero is not None and "less than the minimum" in zero.message


def test_the_schema_files_are_up_to_date() -> None:
    """conf/.schema is generated by `python -m typedrunner.schema`; regenerate it after a schema change."""
    for name, schema in editor_schemas(conf_imports(CONF)).items():
        on_disk = json.loads((CONF / ".schema" / name).read_text(encoding="utf-8"))
        assert on_disk == json.loads(json.dumps(schema)), (
            f"conf/.schema/{name} is stale: run python -m typedrunner.schema"
        )


def test_schema_descriptions_come_from_the_docstrings() -> None:
    whole = editor_schemas()["runner.schema.json"]
    assert whole["properties"]["model"]["description"].startswith("The network")
    train = whole["$defs"]["EpochBasedTrainLoop"]["properties"]["max_epochs"]
    assert train["description"] == "Number of epochs to train (epoch-based loop)."


def test_schema_cli_writes_the_files(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "typedrunner.schema", "--out", str(tmp_path)],
        cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runner.schema.json").is_file() and (tmp_path / "model.schema.json").is_file()


# -- the typed config diff -------------------------------------------------------------------------
def _run_dir(tmp_path: Path, name: str, config: RunnerConfig) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")
    return directory


def test_diff_lists_the_differences_path_by_path(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    a = _run_dir(tmp_path, "a", seed_config("work_dirs/a"))
    changed = seed_config("work_dirs/b", max_epochs=12)
    b = _run_dir(tmp_path, "b", changed.model_copy(update={"optim_wrapper": OptimWrapper(optimizer=Adam(lr=0.01))}))
    same = _run_dir(tmp_path, "same", seed_config("elsewhere"))
    run = [sys.executable, "-m", "typedrunner.diff"]
    result = subprocess.run([*run, str(a), str(b)], cwd=REPO, env=subprocess_env, capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["optim_wrapper.optimizer.lr: 0.001 -> 0.01", "train_cfg.max_epochs: 10 -> 12"]
    result = subprocess.run([*run, str(a), str(same)], cwd=REPO, env=subprocess_env, capture_output=True, text=True)
    assert result.stdout.strip() == "no differences"  # work_dir differs, defaults are identical: no noise
    result = subprocess.run(
        [*run, str(a), str(tmp_path / "nope")], cwd=REPO, env=subprocess_env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "no such run" in result.stderr


# -- sweeps validated before launch ----------------------------------------------------------------
def _sweep(tmp_path: Path, env: dict[str, str], *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typedrunner", "-m", "+experiment=mlp", "train_cfg.max_epochs=1", "train_cfg.val_begin=1",
         *FAST, *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_sweep_with_an_invalid_point_launches_nothing(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = _sweep(tmp_path, subprocess_env, "optim_wrapper.optimizer.lr=1e-3,1e-2,-1", "model.layers=2,4")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "sweep refused before launch (6 points)" in result.stderr
    bad = [line for line in result.stderr.splitlines() if "optim_wrapper.optimizer.lr" in line]
    assert len(bad) == 2 and all("optim_wrapper.optimizer.lr=-1" in line for line in bad)  # names the points
    assert "sweep point #4" in result.stderr and "sweep point #5" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweep").exists()  # not a single job started


def test_a_sweep_point_failing_the_contract_probe_is_refused(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "widths.py").write_text(
        "from examples.seed_mlp import MyDataset\n\n"
        "class Wide(MyDataset):\n"
        "    def __init__(self, is_train: bool, size: int) -> None:\n"
        "        super().__init__(is_train, size)\n"
        "        import torch\n"
        "        self.data = torch.cat([self.data, self.data], dim=1)  # 4 features: the MLP expects 2\n",
        encoding="utf-8",
    )
    env = {**subprocess_env, "PYTHONPATH": f"{tmp_path}:{subprocess_env['PYTHONPATH']}"}
    result = _sweep(
        tmp_path, env, "custom_imports=[examples.seed_mlp,widths]",
        "train_dataloader.dataset.type=examples.seed_mlp.MyDataset,widths.Wide",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "sweep point #1" in result.stderr and "sweep point #0" not in result.stderr
    assert "probe: train" in result.stderr and "shapes cannot be multiplied" in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_valid_sweep_runs_every_job(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = _sweep(tmp_path, subprocess_env, "optim_wrapper.optimizer.lr=1e-3,1e-2")
    assert result.returncode == 0, result.stderr[-2000:]
    lrs: list[Any] = []
    for job in ("0", "1"):
        config = json.loads((tmp_path / "sweep" / job / "config.json").read_text())
        lrs.append(config["optim_wrapper"]["optimizer"]["lr"])
        assert (tmp_path / "sweep" / job / "summary.json").is_file()
    assert lrs == [0.001, 0.01]
