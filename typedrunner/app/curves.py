"""Curves from ``scalars.jsonl``: ``curves.png`` at the end of a command-line run, and
``python -m typedrunner.plot RUN_DIR... [-o out.png]`` to overlay several runs.

Three panels: the training losses, the learning rate(s), the validation and test metrics, each against
the run's iteration. matplotlib is optional (the ``sweeps`` extra) and imported only here, when a run
has ended: never on the training path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MISSING", "curves_after_run", "draw_curves", "main", "read_curves"]

MISSING = "no curves.png drawn: matplotlib is not installed (pip install 'typedrunner[sweeps]')"
_BOOKKEEPING = {"mode", "epoch", "iter", "step", "time_utc"}
_PANELS = ("loss", "lr", "metrics")

Curves = dict[str, dict[str, list[tuple[int, float]]]]
"""Per panel, per ``<mode>/<key>``: ``(step, value)`` points."""


def _panel(mode: str, key: str) -> str | None:
    if mode == "train":
        if "loss" in key:
            return "loss"
        if key == "lr" or key.startswith("lr_"):
            return "lr"
        return None  # time, data_time, eta_s, memory, grad_norm: not curves people compare
    return "metrics" if mode in ("val", "test") else "loss" if "loss" in key else "metrics"


def read_curves(run_dir: Path) -> Curves:
    """The curves of one run, from its ``scalars.jsonl`` (a line that is not JSON is skipped)."""
    curves: Curves = {p: {} for p in _PANELS}
    path = run_dir / "scalars.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        mode, step = record.get("mode"), record.get("step")
        if not isinstance(mode, str) or not isinstance(step, int):
            continue
        for key, value in record.items():
            if key in _BOOKKEEPING or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            panel = _panel(mode, key)
            if panel is not None:
                curves[panel].setdefault(f"{mode}/{key}", []).append((step, float(value)))
    return curves


def draw_curves(run_dirs: Sequence[Path], out: Path) -> Path | None:
    """Draw the runs' curves into ``out`` (atomically); None when no run logged anything to draw."""
    from matplotlib.figure import Figure

    runs = [(d, read_curves(d)) for d in run_dirs]
    panels = [p for p in _PANELS if any(c[p] for _, c in runs)]
    if not panels:
        return None
    fig = Figure(figsize=(5.0 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    names = _short_names(run_dirs)
    for ax, panel in zip(axes, panels, strict=True):
        for (_, curves), name in zip(runs, names, strict=True):
            for tag, points in curves[panel].items():
                label = tag if len(runs) == 1 else f"{name}: {tag}"
                style = "o-" if len(points) < 30 else "-"
                ax.plot([s for s, _ in points], [v for _, v in points], style, label=label, markersize=3)
        if panel == "lr":
            ax.set_yscale("log")
        ax.set_title(panel)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, out)
    return out


def _short_names(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's directory, without the part all of them share."""
    parts = [d.resolve().parts for d in run_dirs]
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    return ["/".join(p[common:]) for p in parts]


def curves_after_run(work_dir: Path) -> str:
    """``curves.png`` in ``work_dir`` at the end of a run; the line to print about it."""
    if importlib.util.find_spec("matplotlib") is None:
        return MISSING
    path = draw_curves([work_dir], work_dir / "curves.png")
    return f"curves: {path}" if path is not None else "no curves.png drawn: nothing was logged"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m typedrunner.plot", description="Overlay the loss, lr and metric curves of runs."
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each holds scalars.jsonl)")
    parser.add_argument("-o", "--out", type=Path, default=Path("curves.png"), help="the PNG to write")
    args = parser.parse_args(argv)
    missing = [str(d) for d in args.run_dirs if not (d / "scalars.jsonl").is_file()]
    if missing:
        print(f"no scalars.jsonl in: {', '.join(missing)}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("matplotlib") is None:
        print(MISSING.replace("curves.png", str(args.out)), file=sys.stderr)
        return 1
    path = draw_curves(args.run_dirs, args.out)
    print(f"curves: {path}" if path is not None else "nothing to draw: no losses, lr or metrics logged")
    return 0
