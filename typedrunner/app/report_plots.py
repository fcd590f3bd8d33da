"""The sweep report's plots: the objective against one swept parameter (matplotlib, optional)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

__all__ = ["as_float", "axis_scale", "plot_objective"]


def as_float(text: str) -> float | None:
    """``text`` as a finite number, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def axis_scale(values: Sequence[str]) -> Literal["log", "linear", "categorical"]:
    """How a swept parameter's values are plotted: as categories (bars) unless every value is a finite
    number; on a log axis when the numbers are positive and span more than a decade."""
    numbers = [as_float(v) for v in values]
    xs = [n for n in numbers if n is not None]
    if not values or len(xs) < len(numbers):
        return "categorical"
    return "log" if min(xs) > 0 and max(xs) / min(xs) > 10.0 else "linear"


def plot_objective(points: Sequence[tuple[str, float, bool]], param: str, objective: str, path: Path) -> None:
    """``(value, objective, is the best job)`` per job, drawn into ``path`` (written atomically)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    numbers = [as_float(x) for x, _, _ in points]
    ys = [y for _, y, _ in points]
    scale = axis_scale([x for x, _, _ in points])
    if scale != "categorical":
        xs = [float(n) for n in numbers if n is not None]
        distinct = sorted(set(xs))
        if len(distinct) < len(xs):  # a grid: several jobs per value (another parameter varies)
            means = [sum(y for x, y in zip(xs, ys, strict=True) if x == d) / xs.count(d) for d in distinct]
            ax.plot(distinct, means, color="tab:blue", alpha=0.5, label="mean per value")
        ax.scatter(xs, ys, color="tab:blue", zorder=3, label="job")
        if scale == "log":
            ax.set_xscale("log")
            subs = (1.0, 2.0, 5.0) if max(xs) / min(xs) < 300.0 else (1.0,)
            ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=subs))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        labels = {float(n): x for (x, _, _), n in zip(points, numbers, strict=True) if n is not None}
        if len(distinct) <= 8 and all(len(label) <= 8 for label in labels.values()):  # grid values as typed
            ax.set_xticks(distinct, labels=[labels[d] for d in distinct])
            ax.xaxis.set_minor_formatter(NullFormatter())
        best = [(x, y) for x, (_, y, is_best) in zip(xs, points, strict=True) if is_best]
    else:
        categories = list(dict.fromkeys(x for x, _, _ in points))
        index = {c: i for i, c in enumerate(categories)}
        means = [sum(y for x, y, _ in points if x == c) / sum(x == c for x, _, _ in points) for c in categories]
        ax.bar(range(len(categories)), means, color="tab:blue", alpha=0.4, label="mean per value")
        ax.scatter([index[x] for x, _, _ in points], ys, color="tab:blue", zorder=3, label="job")
        ax.set_xticks(range(len(categories)), labels=categories)
        low, high = min(ys), max(ys)
        pad = (high - low) * 0.2 or abs(high) * 0.05 or 1.0
        ax.set_ylim(low - pad, high + pad)
        best = [(float(index[x]), y) for x, y, is_best in points if is_best]
    if best:
        ax.scatter(
            [x for x, _ in best], [y for _, y in best], marker="*", s=220, color="tab:orange", zorder=4, label="best"
        )
    ax.set_xlabel(param)
    ax.set_ylabel(f"{objective} (final)")
    ax.set_title(f"{objective} against {param} ({len(points)} job{'s' if len(points) != 1 else ''})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
