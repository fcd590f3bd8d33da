"""What a run writes besides checkpoints and logs: the validated config when it opens, a summary
when it ends."""

from __future__ import annotations

import json
from pathlib import Path

from typedrunner.config.runner import RunnerConfig
from typedrunner.engine.state import RunState
from typedrunner.parts.checkpoint import remove_stale_temporaries, write_text_atomic
from typedrunner.parts.evaluator import infer_rule
from typedrunner.parts.logging import RunLogger

__all__ = ["open_run", "write_summary"]


def open_run(cfg: RunnerConfig, work_dir: Path, logger: RunLogger, *, training: bool = False) -> None:
    """Start the run's files: the logs, ``config.json``; clear temporaries a kill left behind. A
    training run that got this far passed its checks: an ``error_report.txt`` left by an earlier
    attempt in this directory (a refused resume, a crash) no longer describes it and is removed."""
    logger.attach(work_dir)
    if training and (work_dir / "error_report.txt").is_file():
        (work_dir / "error_report.txt").unlink(missing_ok=True)
        logger.info("removed the error report of an earlier attempt", path=str(work_dir / "error_report.txt"))
    for path in remove_stale_temporaries(work_dir):
        logger.info("removed the temporary file of an interrupted write", path=str(path))
    config_text = json.dumps(cfg.model_dump(mode="json"), indent=2)
    write_text_atomic(work_dir / "config.json", config_text + "\n")


def write_summary(state: RunState, work_dir: Path, wall_time: float, logger: RunLogger) -> None:
    """``summary.json``: final and best metrics, epochs, iterations, wall time."""
    best: dict[str, float] = {}
    for metrics in state.metric_history:
        for key, value in metrics.items():
            less = infer_rule(key) == "less"
            if key not in best or (value < best[key] if less else value > best[key]):
                best[key] = value
    summary = {
        "final_metrics": state.last_metrics,
        "best_metrics": best,
        "epochs": state.epoch,
        "iters": state.iter,
        "wall_time_s": round(wall_time, 3),
        "work_dir": str(work_dir),
    }
    write_text_atomic(work_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    logger.summary(state.last_metrics, best, state.iter)  # to the visualizer's backends
    logger.info("done", **{f"final_{k}": v for k, v in state.last_metrics.items()}, wall_time_s=round(wall_time, 1))
