"""Sweep reports: one row per job (``report.csv``, ``report.md``) and the objective plotted against
each swept parameter (``report_<param>.png``).

The Hydra callback ``typedrunner.app.sweep_callbacks.SweepReport`` writes it into the sweep directory
when a multirun ends; ``python -m typedrunner.report DIR [DIR ...]`` rebuilds it for any sweep
directory, any directory of run directories, or a list of run directories.

It reads only what a run leaves behind: ``summary.json`` (final and best metrics, wall time),
``error_report.txt`` (why it failed) and ``.hydra/overrides.yaml`` (its command-line overrides). A job
without a ``summary.json`` is a ``failed`` row, never a lost one. Neither torch nor Hydra is imported;
matplotlib is optional (without it the tables are written and the plots skipped, saying so).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from typedrunner.app.report_plots import as_float, axis_scale, plot_objective
from typedrunner.app.report_runs import JobRow, collect, find_run_dirs, read_run

__all__ = [
    "Direction",
    "JobRow",
    "Report",
    "axis_scale",
    "build_report",
    "find_run_dirs",
    "main",
    "plot_name",
    "read_run",
    "render_markdown",
    "report_directory",
    "write_report",
]

Direction = Literal["maximize", "minimize"]
Status = Literal["ok", "failed"]

CSV_NAME = "report.csv"
MD_NAME = "report.md"
_UNSAFE = re.compile(r"[^-\w.]")


@dataclass(frozen=True)
class Report:
    """Every job's row, what was swept, and which metric is the objective."""

    directory: Path
    """Where the report files go."""
    rows: tuple[JobRow, ...]
    swept: tuple[str, ...]
    """Override keys whose value differs between jobs: one column and one plot each."""
    fixed: tuple[str, ...]
    """Overrides every job shares."""
    metrics: tuple[str, ...]
    """Every metric name any job reported, in first-seen order."""
    objective: str | None
    """The metric the sweep is judged by (``None``: no job reported any metric)."""
    direction: Direction

    @property
    def best(self) -> JobRow | None:
        """The finished job with the best final objective."""
        scored = [r for r in self.rows if self.objective is not None and self.objective in r.final_metrics]
        if not scored:
            return None
        sign = 1.0 if self.direction == "maximize" else -1.0
        return max(scored, key=lambda r: sign * r.final_metrics[str(self.objective)])


def build_report(
    rows: Sequence[JobRow], directory: Path, objective: str | None = None, direction: Direction = "maximize"
) -> Report:
    """Work out what was swept and which metric is the objective (the given one, else the first
    metric the jobs reported)."""
    if direction not in get_args(Direction):
        raise ValueError(f"direction must be one of {get_args(Direction)}, got {direction!r}")
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row.params if k not in keys)
    swept = tuple(k for k in keys if len({row.params.get(k) for row in rows}) > 1)
    fixed = tuple(o for o in (rows[0].overrides if rows else ()) if all(o in r.overrides for r in rows))
    metrics: list[str] = []
    for row in rows:
        metrics.extend(m for m in [*row.final_metrics, *row.best_metrics] if m not in metrics)
    return Report(
        directory=directory,
        rows=tuple(rows),
        swept=swept,
        fixed=fixed,
        metrics=tuple(metrics),
        objective=objective if objective is not None else (metrics[0] if metrics else None),
        direction=direction,
    )


def write_report(report: Report, plots: bool = True) -> list[Path]:
    """Write ``report.csv``, ``report.md`` and (matplotlib permitting) one plot per swept parameter.
    Return the paths written."""
    report.directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    notes: list[str] = []
    images: list[tuple[str, Path]] = []
    if plots and report.swept:
        images, note = _plot_all(report)
        written.extend(path for _, path in images)
        if note:
            notes.append(note)
    csv_path = report.directory / CSV_NAME
    _write_atomic(csv_path, _csv_text(report))
    md_path = report.directory / MD_NAME
    _write_atomic(md_path, render_markdown(report, images, notes))
    return [csv_path, md_path, *written]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _csv_text(report: Report) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    metric_columns = [*(f"final_{m}" for m in report.metrics), *(f"best_{m}" for m in report.metrics)]
    tail = ["wall_time_s", "epochs", "iters", "overrides", "error", "run_dir"]
    writer.writerow(["job", "status", *report.swept, *metric_columns, *tail])
    for row in report.rows:
        params = row.params
        metrics = [
            *(row.final_metrics.get(m) for m in report.metrics),
            *(row.best_metrics.get(m) for m in report.metrics),
        ]
        details = [_raw(row.wall_time_s), _raw(row.epochs), _raw(row.iters), " ".join(row.overrides), row.error]
        writer.writerow(
            [
                row.job,
                row.status,
                *(params.get(k, "") for k in report.swept),
                *map(_raw, metrics),
                *details,
                str(row.run_dir),
            ]
        )
    return buffer.getvalue()


def _raw(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _fmt(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _short(value: str) -> str:
    """A sampled number (``0.0018662266976517971``) shortened to 4 significant digits."""
    number = as_float(value)
    return f"{number:.4g}" if number is not None and len(value) > 8 else value


def _cell(text: str, limit: int = 200) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, images: Sequence[tuple[str, Path]] = (), notes: Sequence[str] = ()) -> str:
    """The Markdown report: a summary line, the table, the plots."""
    rows = report.rows
    failed = sum(r.status == "failed" for r in rows)
    better = "higher" if report.direction == "maximize" else "lower"
    lines = ["# Sweep report", ""]
    summary = f"`{report.directory}`: {len(rows)} job{'s' if len(rows) != 1 else ''}, {len(rows) - failed} ok"
    summary += f", {failed} failed" if failed else ""
    if report.objective is not None:
        summary += f"; objective **{report.objective}** (final value, {better} is better)"
    lines.append(summary)
    best = report.best
    if best is not None and report.objective is not None:
        distinct = [o for o in best.overrides if o not in report.fixed]
        lines += [
            "",
            f"Best: job {best.job}, {report.objective} = {_fmt(best.final_metrics[report.objective])}"
            + (f" (`{' '.join(distinct)}`)" if distinct else ""),
        ]
    if report.objective is not None and report.objective not in report.metrics:
        found = ", ".join(report.metrics) or "none"
        lines += ["", f"The objective {report.objective!r} is not among the jobs' metrics ({found})."]
    if report.fixed:
        lines += ["", f"Every job: `{' '.join(report.fixed)}`"]
    headers = [
        "job",
        "status",
        *report.swept,
        *(f"final {m}" for m in report.metrics),
        *(f"best {m}" for m in report.metrics),
        "wall time (s)",
        "error",
    ]
    lines += ["", "| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        params = row.params
        cells = [
            row.job,
            row.status,
            *(_short(params.get(k, "")) for k in report.swept),
            *(_fmt(row.final_metrics.get(m)) for m in report.metrics),
            *(_fmt(row.best_metrics.get(m)) for m in report.metrics),
            _fmt(row.wall_time_s),
            row.error,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for param, path in images:
        lines += ["", f"![{report.objective} against {param}]({path.name})"]
    for note in notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------
def plot_name(param: str) -> str:
    """``report_<param>.png``, the parameter's characters outside ``[-\\w.]`` replaced by ``_``."""
    return f"report_{_UNSAFE.sub('_', param)}.png"


def _plot_all(report: Report) -> tuple[list[tuple[str, Path]], str]:
    objective = report.objective
    if objective is None:
        return [], "No plots: no job reported a metric."
    try:
        from matplotlib.figure import Figure  # noqa: F401 (optional dependency: checked here)
    except ImportError:
        return [], "No plots: matplotlib is not installed (`pip install typedrunner[sweeps]`)."
    images = []
    for param in report.swept:
        points = [
            (row.params[param], row.final_metrics[objective], row is report.best)
            for row in report.rows
            if param in row.params and objective in row.final_metrics
        ]
        if not points:
            continue
        path = report.directory / plot_name(param)
        plot_objective(points, param, objective, path)
        images.append((param, path))
    return images, ""


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------
def report_directory(
    directory: Path,
    objective: str | None = None,
    direction: Direction = "maximize",
    plots: bool = True,
    sources: Sequence[Path] | None = None,
) -> tuple[Report, list[Path]]:
    """Build the report of ``sources`` (default: ``directory``'s run directories) and, when it has a
    row, write it into ``directory``. Return it and the paths written."""
    rows = collect(list(sources) if sources else [directory])
    report = build_report(rows, directory, objective, direction)
    return report, (write_report(report, plots=plots) if rows else [])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m typedrunner.report DIR [DIR ...]``: rebuild a sweep report. Exit 0, or 2 when no
    run directory is found."""
    parser = argparse.ArgumentParser(
        prog="python -m typedrunner.app.report",
        description="Write report.csv, report.md and report_<param>.png for a sweep directory, a directory "
        "of run directories, or several run directories.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="a sweep directory or run directories")
    parser.add_argument("--objective", default=None, help="the metric to plot and rank by (default: the first)")
    parser.add_argument("--direction", choices=get_args(Direction), default="maximize", help="which way is better")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: DIR, or DIRs' common parent)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    args = parser.parse_args(argv)

    missing = [d for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"typedrunner.app.report: not a directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    if args.out is not None:
        out = args.out
    elif len(args.dirs) == 1:
        out = args.dirs[0]
    else:
        out = Path(os.path.commonpath([d.resolve() for d in args.dirs]))
    report, written = report_directory(out, args.objective, args.direction, not args.no_plots, args.dirs)
    if not report.rows:
        print(
            f"typedrunner.app.report: no run directories in {', '.join(map(str, args.dirs))} (a run directory holds "
            "summary.json, error_report.txt, config.json or .hydra/overrides.yaml)",
            file=sys.stderr,
        )
        return 2
    print(written[1].read_text(encoding="utf-8"), end="")
    print(f"\nwrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
