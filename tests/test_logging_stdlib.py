"""typedrunner's human records go through the standard ``logging`` module (the ``typedrunner`` logger,
formatted by structlog's ``ProcessorFormatter`` on its own handlers): Hydra's ``job_logging`` and a
user's ``logging.config`` route them, and ``run.log`` and ``scalars.jsonl`` are still written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import FAST, REPO, explain, run_cli

QUICK = [
    *FAST,
    "train_dataloader.dataset.size=320",
    "default_hooks.logger.interval=5",
    "train_cfg.max_epochs=2",
    "train_cfg.val_begin=1",
]


def test_hydra_default_job_logging_captures_the_records_in_the_job_log(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        ["+experiment=mlp", *QUICK, "hydra/job_logging=default", f"hydra.run.dir={run_dir}"], subprocess_env
    )
    assert result.returncode == 0, explain(result)
    job_log = (run_dir / "cli.log").read_text(encoding="utf-8")  # Hydra's ${hydra.job.name}.log
    assert "[typedrunner][INFO] - Epoch(train) [1][5/5]  lr: " in job_log
    assert "[typedrunner][INFO] - Epoch(val) [2]  accuracy: " in job_log
    assert "[typedrunner][INFO] - done final_accuracy=" in job_log
    # Hydra's console handler prints them, once: typedrunner adds no console of its own
    assert result.stdout.count("Epoch(train) [1][5/5]") == 1, result.stdout
    assert "[typedrunner][INFO] - Epoch(train) [1][5/5]" in result.stdout
    # its own files are still written
    assert "Epoch(train) [2][5/5]" in (run_dir / "run.log").read_text(encoding="utf-8")
    assert [json.loads(x)["mode"] for x in (run_dir / "scalars.jsonl").read_text().splitlines()].count("val") == 2


def test_a_users_logging_config_routes_and_filters_the_records(tmp_path: Path) -> None:
    """A script's own ``logging.config.dictConfig``: its handler and format get typedrunner's records,
    its level filters them, and typedrunner prints nothing itself."""
    script = f"""
import logging.config
logging.config.dictConfig({{
    "version": 1,
    "formatters": {{"mine": {{"format": "MINE %(name)s %(levelname)s %(message)s"}}}},
    "handlers": {{"file": {{"class": "logging.FileHandler", "filename": {str(tmp_path / "user.log")!r},
                          "formatter": "mine"}}}},
    "loggers": {{"typedrunner": {{"handlers": ["file"], "level": "INFO"}}}},
}})
from typedrunner.config import DefaultHooks, LoggerHook
from typedrunner.runner import Runner
from typedrunner.testing import toy_config
hooks = DefaultHooks(logger=LoggerHook(interval=2))
Runner(toy_config({str(tmp_path / "run")!r}, max_epochs=2, log_level="DEBUG", default_hooks=hooks)).train()
"""
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, explain(result)
    user_log = (tmp_path / "user.log").read_text(encoding="utf-8")
    assert "MINE typedrunner INFO Epoch(train) [1][4/4]  lr: " in user_log
    assert "MINE typedrunner INFO Epoch(val) [2]  accuracy: " in user_log
    assert "MINE typedrunner INFO training device=cpu" in user_log
    # the level the user set on the logger (INFO) wins over log_level=DEBUG: no DEBUG record anywhere
    run_log = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
    assert "DEBUG" not in user_log and "[debug" not in run_log and "Epoch(val) [2]  accuracy: " in run_log
    assert "Epoch" not in result.stdout  # no console of typedrunner's own: the user routes its records
    assert (tmp_path / "run" / "scalars.jsonl").read_text().count('"mode": "val"') == 2
