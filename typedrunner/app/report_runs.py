"""Reading what a run left behind, for the sweep report: ``summary.json``, ``error_report.txt`` and
``.hydra/overrides.yaml``, one :class:`JobRow` per run directory."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf

__all__ = ["JobRow", "Status", "collect", "find_run_dirs", "is_run_dir", "read_run"]

Status = Literal["ok", "failed"]

_RUN_MARKERS = ("summary.json", "error_report.txt", "config.json", ".hydra/overrides.yaml")
_COUNT_TITLE = re.compile(r"(:|\d+ \w+)$")  # "invalid configuration: 3 errors", "...refused:"


@dataclass(frozen=True)
class JobRow:
    """One job of a sweep (or one run directory), as it ended."""

    job: str
    """The run directory relative to the report's directory (a sweep job's number)."""
    run_dir: Path
    status: Status
    """``ok``: it wrote ``summary.json``; ``failed``: it did not (see ``error``)."""
    overrides: tuple[str, ...] = ()
    """Its command-line overrides, as Hydra recorded them."""
    final_metrics: dict[str, float] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)
    wall_time_s: float | None = None
    epochs: int | None = None
    iters: int | None = None
    error: str = ""
    """Why it failed: the first line of ``error_report.txt`` (with the first problem when that line
    is only a title), or what is missing."""

    @property
    def params(self) -> dict[str, str]:
        """``{key: value}`` of its overrides (``+``/``++``/``~`` prefixes dropped; a deletion is ``~``)."""
        return dict(_split_override(o) for o in self.overrides)


# --------------------------------------------------------------------------------------------
# Reading runs
# --------------------------------------------------------------------------------------------
def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run directory (typedrunner or Hydra wrote into it)."""
    return path.is_dir() and any((path / marker).exists() for marker in _RUN_MARKERS)


def find_run_dirs(path: Path) -> list[Path]:
    """``path`` itself when it is a run directory, else its run subdirectories (a sweep's jobs)."""
    if is_run_dir(path):
        return [path]
    if not path.is_dir():
        return []
    return sorted((p for p in path.iterdir() if is_run_dir(p)), key=lambda p: _natural_key(p.name))


def read_run(run_dir: Path, label: str | None = None) -> JobRow:
    """One row from what a run left in ``run_dir``."""
    label = label or run_dir.name
    overrides = _read_overrides(run_dir / ".hydra" / "overrides.yaml")
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            return JobRow(
                job=label,
                run_dir=run_dir,
                status="ok",
                overrides=overrides,
                final_metrics=_metrics(summary.get("final_metrics")),
                best_metrics=_metrics(summary.get("best_metrics")),
                wall_time_s=_number(summary.get("wall_time_s")),
                epochs=_integer(summary.get("epochs")),
                iters=_integer(summary.get("iters")),
            )
        except (OSError, ValueError, AttributeError) as e:
            return JobRow(label, run_dir, "failed", overrides, error=f"unreadable summary.json: {e}")
    return JobRow(label, run_dir, "failed", overrides, error=_failure_reason(run_dir))


def _failure_reason(run_dir: Path) -> str:
    report = run_dir / "error_report.txt"
    if report.is_file():
        lines = [line.strip() for line in report.read_text(encoding="utf-8", errors="replace").splitlines()]
        lines = [line for line in lines if line]
        if lines:
            first = lines[0]
            if len(lines) > 1 and _COUNT_TITLE.search(first):
                first = f"{first} {lines[1]}" if first.endswith(":") else f"{first}: {lines[1]}"
            return first
    return "no summary.json: the job did not finish (killed, or still running)"


def _read_overrides(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return tuple(str(o) for o in loaded) if isinstance(loaded, list) else ()


def _metrics(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    if key.startswith("~"):  # a deletion: ``~key`` or ``~key=value``
        return key.lstrip("~"), f"~{value}"
    return key.lstrip("+"), value


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------
def collect(paths: Sequence[Path]) -> list[JobRow]:
    """Rows for every run directory in ``paths`` (each a run directory or a directory of them),
    labelled by their path below the directories given (a sweep's jobs: ``0``, ``1``, ...)."""
    found = {run_dir.resolve(): run_dir for path in paths for run_dir in find_run_dirs(path)}
    if not found:
        return []
    roots = {p.resolve() if not is_run_dir(p) else p.resolve().parent for p in paths}
    base = Path(os.path.commonpath([str(r) for r in roots]))
    rows = [read_run(run_dir, resolved.relative_to(base).as_posix()) for resolved, run_dir in found.items()]
    return sorted(rows, key=lambda r: _natural_key(r.job))
