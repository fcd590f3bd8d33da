"""The command line as a user runs it: ``python -m typedrunner ...`` in a real subprocess.

Every call sets ``hydra.run.dir`` or ``hydra.sweep.dir`` under ``tmp_path`` so nothing is written
into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import FAST, explain, run_cli

INVALID = ["train_cfg.max_epochs=0", "+train_cfg.max_epoch=3", "optim_wrapper.optimizer.type=Adamm"]


def checkpoints_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pth"))


def test_train_writes_the_run_directory(tmp_path: Path, repo_root: Path, subprocess_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        ["+experiment=mlp", "train_cfg.max_epochs=2", *FAST, f"hydra.run.dir={run_dir}"], subprocess_env, repo_root
    )
    assert result.returncode == 0, explain(result)
    for name in ("epoch_1.pth", "epoch_2.pth", "scalars.jsonl", "run.log", "config.json", "summary.json"):
        assert (run_dir / name).is_file(), f"{name} missing; run dir holds {sorted(p.name for p in run_dir.iterdir())}"
    assert not (run_dir / "epoch_3.pth").exists()
    hydra_config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "MyAwesomeModel" in hydra_config
    assert "max_epochs: 2" in hydra_config

    config = json.loads((run_dir / "config.json").read_text())
    assert config["train_cfg"]["max_epochs"] == 2
    assert config["train_dataloader"]["num_workers"] == 0
    assert Path(config["work_dir"]).resolve() == run_dir.resolve()  # work_dir defaults to Hydra's run dir

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2
    assert summary["iters"] == 2 * 157
    assert 50.0 < summary["final_metrics"]["accuracy"] <= 100.0  # one validation (val_begin=2)

    records = [json.loads(line) for line in (run_dir / "scalars.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in records if r["mode"] == "train"]
    assert len(train) == 2 * (157 // 10)  # logger interval 10, the last partial window ignored
    assert all({"epoch", "iter", "loss", "lr"} <= r.keys() for r in train)
    assert [r["accuracy"] for r in records if r["mode"] == "val"] == [summary["final_metrics"]["accuracy"]]
    assert "Epoch(train) [2][150/157]  lr: " in (run_dir / "run.log").read_text()


def test_cfg_job_prints_the_composition_and_trains_nothing(
    tmp_path: Path, repo_root: Path, subprocess_env: dict[str, str]
) -> None:
    result = run_cli(
        ["+experiment=mlp", "train_cfg.max_epochs=1", *FAST, f"hydra.run.dir={tmp_path / 'run'}", "--cfg", "job"],
        subprocess_env,
        repo_root,
    )
    assert result.returncode == 0, explain(result)
    assert "type: MyAwesomeModel" in result.stdout
    assert "max_epochs: 1" in result.stdout
    assert "training" not in result.stdout
    assert checkpoints_under(tmp_path) == []
    assert list(tmp_path.rglob("scalars.jsonl")) == []


def test_check_validates_without_training(tmp_path: Path, repo_root: Path, subprocess_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(["+experiment=mlp", "check=true", *FAST, f"hydra.run.dir={run_dir}"], subprocess_env, repo_root)
    assert result.returncode == 0, explain(result)
    assert "valid" in result.stdout
    assert checkpoints_under(tmp_path) == []
    assert not (run_dir / "scalars.jsonl").exists()
    assert not (run_dir / "summary.json").exists()


@pytest.mark.parametrize("full_error", [False, True], ids=["report", "HYDRA_FULL_ERROR"])
def test_invalid_config_exits_2_listing_every_problem(
    tmp_path: Path, repo_root: Path, subprocess_env: dict[str, str], full_error: bool
) -> None:
    run_dir = tmp_path / "run"
    env = dict(subprocess_env)
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    result = run_cli(["+experiment=mlp", *INVALID, *FAST, f"hydra.run.dir={run_dir}"], env, repo_root)
    assert result.returncode == 2, explain(result)

    problems = [line.strip() for line in result.stderr.splitlines()]
    max_epochs = [line for line in problems if line.startswith("train_cfg.max_epochs:")]
    assert max_epochs and "0" in max_epochs[0], explain(result)
    assert any(line.startswith("train_cfg.max_epoch:") and "did you mean max_epochs" in line for line in problems), (
        explain(result)
    )
    assert any(
        line.startswith("optim_wrapper.optimizer.type:") and "Adamm" in line and "did you mean Adam" in line
        for line in problems
    ), explain(result)
    assert ("Traceback" in result.stderr) is full_error, explain(result)

    assert checkpoints_under(tmp_path) == []
    assert list(tmp_path.rglob("scalars.jsonl")) == []
    report = (run_dir / "error_report.txt").read_text()
    for path in ("train_cfg.max_epochs", "train_cfg.max_epoch:", "optim_wrapper.optimizer.type"):
        assert path in report


def test_multirun_gives_each_job_its_own_directory(
    tmp_path: Path, repo_root: Path, subprocess_env: dict[str, str]
) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "+experiment=mlp",
            "optim_wrapper.optimizer.lr=1e-3,1e-2",
            "train_cfg.max_epochs=1",
            "train_cfg.val_begin=1",
            *FAST,
            f"hydra.sweep.dir={sweep_dir}",
        ],
        subprocess_env,
        repo_root,
    )
    assert result.returncode == 0, explain(result)
    for job, lr in (("0", 1e-3), ("1", 1e-2)):
        job_dir = sweep_dir / job
        config = json.loads((job_dir / "config.json").read_text())
        assert config["optim_wrapper"]["optimizer"]["lr"] == pytest.approx(lr)
        assert Path(config["work_dir"]).resolve() == job_dir.resolve()
        summary = json.loads((job_dir / "summary.json").read_text())
        assert summary["epochs"] == 1
        assert "accuracy" in summary["final_metrics"]
        assert (job_dir / "epoch_1.pth").is_file()
        records = [json.loads(line) for line in (job_dir / "scalars.jsonl").read_text().splitlines() if line.strip()]
        lrs = [r["lr"] for r in records if r["mode"] == "train"]
        assert lrs and lrs == pytest.approx([lr] * len(lrs))


def test_without_conf_directory_a_clear_error(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    env = dict(subprocess_env)
    env.pop("TYPEDRUNNER_CONF", None)
    result = run_cli(["+experiment=mlp", f"hydra.run.dir={tmp_path / 'run'}"], env, tmp_path)
    assert result.returncode == 2, explain(result)
    assert "conf" in result.stderr
    assert "config.yaml" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
