"""Sweeps with Hydra's ecosystem and the sweep report, as a user runs them: real multiruns in
subprocesses (joblib's parallel launcher, Optuna's sweeper, a failing job), the SLURM launcher's job
pickled and run as a SLURM node would run it, and ``python -m typedrunner.report``.

Every sweep writes under ``tmp_path`` (``hydra.sweep.dir=...``); each job trains one epoch of the seed.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from tests.helpers import ONE_EPOCH, REPO, REPORT, SLURM_JOB, explain
from typedrunner.app.report import axis_scale, main, plot_name, read_run
from typedrunner.app.sweep_callbacks import SweepReport

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env or child_env(), capture_output=True, text=True, timeout=300
    )


def report_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "report.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summary(job_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((job_dir / "summary.json").read_text())
    return data


# --------------------------------------------------------------------------------------------
# joblib: 4 jobs on 2 workers, and the report the callback writes when the multirun ends
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    sweep_dir = tmp_path_factory.mktemp("joblib") / "sweep"
    grid = ["optim_wrapper.optimizer.lr=1e-4,1e-2", "model.activation=relu,silu"]
    args = ["-m", "typedrunner", "-m", *ONE_EPOCH, *grid, "hydra/launcher=parallel", REPORT]
    return sweep_dir, run([*args, f"hydra.sweep.dir={sweep_dir}"])


def test_joblib_runs_four_jobs_on_two_workers(joblib_sweep: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    sweep_dir, result = joblib_sweep
    assert result.returncode == 0, explain(result)
    assert "Joblib.Parallel(n_jobs=2,backend=loky" in result.stdout, explain(result)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    for job in range(4):
        assert summary(sweep_dir / str(job))["epochs"] == 1
    assert f"sweep report (4 jobs): {sweep_dir / 'report.md'}" in result.stdout


def test_report_has_one_row_per_job_with_its_overrides_and_metrics(
    joblib_sweep: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep_dir, result = joblib_sweep
    assert result.returncode == 0, explain(result)
    rows = report_rows(sweep_dir)
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    grid = [(r["optim_wrapper.optimizer.lr"], r["model.activation"]) for r in rows]
    assert grid == [("0.0001", "relu"), ("0.0001", "silu"), ("0.01", "relu"), ("0.01", "silu")]
    for row in rows:
        job_dir = sweep_dir / row["job"]
        logged = summary(job_dir)
        assert row["status"] == "ok"
        assert row["error"] == ""
        assert float(row["final_accuracy"]) == logged["final_metrics"]["accuracy"]
        assert float(row["best_accuracy"]) == logged["best_metrics"]["accuracy"]
        assert float(row["wall_time_s"]) == logged["wall_time_s"]
        assert (int(row["epochs"]), int(row["iters"])) == (1, 157)
        assert row["overrides"].split() == OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")
        assert Path(row["run_dir"]) == job_dir

    markdown = (sweep_dir / "report.md").read_text()
    best = max(rows, key=lambda r: float(r["final_accuracy"]))
    assert f"Best: job {best['job']}, accuracy = {float(best['final_accuracy']):.4g}" in markdown
    assert (
        "| job | status | optim_wrapper.optimizer.lr | model.activation | final accuracy | best accuracy |" in markdown
    )
    for row in rows:
        cells = f"| {row['job']} | ok | {row['optim_wrapper.optimizer.lr']} | {row['model.activation']} |"
        assert cells in markdown
    for param in ("optim_wrapper.optimizer.lr", "model.activation"):
        image = sweep_dir / plot_name(param)
        assert image.read_bytes().startswith(PNG_MAGIC)
        assert f"]({image.name})" in markdown


def test_report_command_rebuilds_the_same_table(
    joblib_sweep: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    sweep_dir, result = joblib_sweep
    assert result.returncode == 0, explain(result)
    rebuilt = run(["-m", "typedrunner.report", str(sweep_dir), "--out", str(tmp_path / "again")])
    assert rebuilt.returncode == 0, explain(rebuilt)
    assert (tmp_path / "again" / "report.csv").read_text() == (sweep_dir / "report.csv").read_text()
    assert "| 3 | ok | 0.01 | silu |" in rebuilt.stdout
    assert (tmp_path / "again" / plot_name("model.activation")).is_file()

    # a set of run directories: two jobs of the sweep, reported into their common parent's choice
    assert main([str(sweep_dir / "0"), str(sweep_dir / "3"), "--out", str(tmp_path / "pair"), "--no-plots"]) == 0
    pair = report_rows(tmp_path / "pair")
    assert [Path(r["run_dir"]).name for r in pair] == ["0", "3"]
    assert [r["optim_wrapper.optimizer.lr"] for r in pair] == ["0.0001", "0.01"]
    assert not list((tmp_path / "pair").glob("*.png"))


# --------------------------------------------------------------------------------------------
# A failed job is a row, not a lost sweep
# --------------------------------------------------------------------------------------------
def test_failed_job_is_a_row_and_the_sweep_exits_1(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    lrs = "optim_wrapper.optimizer.lr=1e-3,1e30"  # 1e30: the loss is NaN within ten steps
    result = run(["-m", "typedrunner", "-m", *ONE_EPOCH, lrs, REPORT, f"hydra.sweep.dir={sweep_dir}"])
    assert result.returncode == 1, explain(result)
    assert f"sweep report (2 jobs, 1 failed): {sweep_dir / 'report.md'}" in result.stdout, explain(result)
    ok, failed = report_rows(sweep_dir)
    assert (ok["status"], ok["error"]) == ("ok", "")
    assert float(ok["final_accuracy"]) == summary(sweep_dir / "0")["final_metrics"]["accuracy"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("the loss became NaN or infinite"), failed
    assert failed["final_accuracy"] == failed["wall_time_s"] == ""
    assert "| 1 | failed | 1e+30 |" in (sweep_dir / "report.md").read_text()
    assert (sweep_dir / plot_name("optim_wrapper.optimizer.lr")).is_file()  # the finished job is plotted


def test_job_end_records_an_unexpected_exception(tmp_path: Path) -> None:
    config = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path)}}})
    callback = SweepReport()
    callback.on_job_end(config, JobReturn(status=JobStatus.COMPLETED, _return_value=93.0))
    assert not (tmp_path / "error_report.txt").exists()
    callback.on_job_end(config, JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("shape mismatch")))
    row = read_run(tmp_path)
    assert (row.status, row.error) == ("failed", "RuntimeError: shape mismatch")

    (tmp_path / "error_report.txt").write_text("invalid configuration: 2 errors\n  a.b: bad\n  c: worse\n")
    callback.on_job_end(config, JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("later")))
    assert read_run(tmp_path).error == "invalid configuration: 2 errors: a.b: bad"  # the command line's report kept


def test_unfinished_run_and_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "a" / ".hydra").mkdir(parents=True)
    (tmp_path / "runs" / "a" / ".hydra" / "overrides.yaml").write_text("- model.layers=3\n")
    assert main([str(tmp_path / "runs"), "--no-plots"]) == 0
    (row,) = report_rows(tmp_path / "runs")
    assert (row["job"], row["status"], row["overrides"]) == ("a", "failed", "model.layers=3")
    assert row["error"].startswith("no summary.json: the job did not finish")

    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no run directories" in capsys.readouterr().err
    assert list((tmp_path / "empty").iterdir()) == []


def test_axis_scale_of_a_swept_parameter() -> None:
    assert axis_scale(["1e-4", "1e-3", "1e-2"]) == "log"  # spans two decades
    assert axis_scale(["0.001", "0.01"]) == "linear"  # exactly one decade
    assert axis_scale(["2", "4", "8"]) == "linear"
    assert axis_scale(["-1", "100"]) == "linear"
    assert axis_scale(["relu", "silu"]) == "categorical"
    assert axis_scale(["true", "false"]) == "categorical"
    assert plot_name("model.layers[0]") == "report_model.layers_0_.png"


# --------------------------------------------------------------------------------------------
# Optuna: the task returns the objective; Optuna's best is a logged metric
# --------------------------------------------------------------------------------------------
def test_optuna_three_trials_best_value_is_a_logged_metric(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    optuna = ["hydra/sweeper=optuna_mlp", "hydra.sweeper.n_trials=3"]
    result = run(["-m", "typedrunner", "-m", *ONE_EPOCH, *optuna, REPORT, f"hydra.sweep.dir={sweep_dir}"])
    assert result.returncode == 0, explain(result)
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2"]

    results = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    assert isinstance(results, dict)
    logged = {p.name: summary(p)["final_metrics"]["accuracy"] for p in jobs}
    assert results["best_value"] == max(logged.values())  # direction: maximize

    params = {key: str(value) for key, value in results["best_params"].items()}
    assert set(params) == {"optim_wrapper.optimizer.lr", "model.layers", "model.activation"}
    best_job = next(
        p for p in jobs if all(f"{k}={v}" in OmegaConf.load(p / ".hydra/overrides.yaml") for k, v in params.items())
    )
    assert logged[best_job.name] == results["best_value"]

    rows = report_rows(sweep_dir)
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert f"Best: job {best_job.name}, accuracy = {results['best_value']:.4g}" in (sweep_dir / "report.md").read_text()
    for param in params:
        assert (sweep_dir / plot_name(param)).read_bytes().startswith(PNG_MAGIC)


# --------------------------------------------------------------------------------------------
# SLURM (hydra-submitit-launcher): no cluster here, so do what the launcher and a node would do
# --------------------------------------------------------------------------------------------
def test_slurm_preset_composes_and_its_job_pickles_and_runs(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    code = f"from tests.helpers import pickle_slurm_job; pickle_slurm_job({str(sweep_dir)!r})"
    submitted = run(["-c", code])
    assert submitted.returncode == 0, explain(submitted)
    assert "launcher: SlurmLauncher" in submitted.stdout
    for line in ("--time=240", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB", "--signal=USR2@120"):
        assert f"#SBATCH {line}" in submitted.stdout, submitted.stdout
    folder = sweep_dir / ".submitit" / f"{SLURM_JOB}_0"

    # what `srun python -u -m submitit.core._submit <folder>` does on the node: unpickle, run, pickle the result
    node = child_env() | {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": SLURM_JOB, "SLURM_ARRAY_JOB_ID": SLURM_JOB}
    node |= {"SLURM_ARRAY_TASK_ID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    node |= {"SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "localhost"}
    ran = run(["-m", "submitit.core._submit", str(sweep_dir / ".submitit" / "%j")], env=node)
    assert ran.returncode == 0, explain(ran)

    with (folder / f"{SLURM_JOB}_0_0_result.pkl").open("rb") as f:
        outcome, job_return = pickle.load(f)
    assert outcome == "success"
    assert job_return.status is JobStatus.COMPLETED
    logged = summary(sweep_dir / "0")
    assert job_return.return_value == logged["final_metrics"]["accuracy"]
    config = json.loads((sweep_dir / "0" / "config.json").read_text())
    assert config["optim_wrapper"]["optimizer"]["lr"] == 0.01
