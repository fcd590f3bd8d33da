"""Curves from ``scalars.jsonl``: ``curves.png`` at the end of a command-line run, and
``python -m typedrunner.plot RUN_DIR... [-o out.png]`` to overlay several runs.

Three panels: the training losses, the learning rate(s), the validation and test metrics, each against
the run's iteration. matplotlib is optional (the ``sweeps`` extra) and never imported by a training
process: a command-line run starts :class:`CurvesDrawer` when training starts, a separate process that
imports matplotlib (about half a second and 30-40 MiB here) while the run trains, then waits; when
the run ends it draws ``curves.png`` from ``scalars.jsonl`` and exits. Only the drawing itself is
left at the end of the run, and the training process's memory never holds matplotlib.

This module imports nothing from typedrunner: the drawer runs it by path (``runpy.run_path``), so its
process does not build typedrunner's config schemas either.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MISSING", "CurvesDrawer", "curves_after_run", "draw_curves", "main", "read_curves"]

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
    fig = Figure(figsize=(5.0 * len(panels), 4.0))
    fig.subplots_adjust(left=0.25 / len(panels), right=1 - 0.06 / len(panels), bottom=0.12, top=0.92, wspace=0.3)
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


def _said(path: Path | None) -> str:
    return f"curves: {path}" if path is not None else "no curves.png drawn: nothing was logged"


def curves_after_run(work_dir: Path, drawer: CurvesDrawer | None = None) -> str:
    """``curves.png`` in ``work_dir`` at the end of a run, by ``drawer`` when one was started (else in
    this process); the line to print about it."""
    if importlib.util.find_spec("matplotlib") is None:
        return MISSING
    if drawer is not None:
        said = drawer.draw(work_dir)
        if said is not None:
            return said
    return _said(draw_curves([work_dir], work_dir / "curves.png"))


_WORKER = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__typedrunner_curves__')"
_DRAW_TIMEOUT_S = 600.0


class CurvesDrawer:
    """A process that imports matplotlib while the run trains and draws ``curves.png`` when it ends.

    It is in a session of its own (a Ctrl-C at the terminal reaches the run, not the drawer) and
    exits as soon as its stdin closes: when the run fails, stops or is killed, nothing is drawn and the
    drawer ends with it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    @classmethod
    def start(cls) -> CurvesDrawer | None:
        """The drawer, or None without matplotlib or when no process can be started (the run then
        draws in its own process, or says why not)."""
        if importlib.util.find_spec("matplotlib") is None:
            return None
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _WORKER, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # a drawer that fails is replaced by a draw in the run's process
                text=True,
                start_new_session=True,
            )
        except OSError:
            return None
        return cls(process)

    def draw(self, work_dir: Path) -> str | None:
        """Draw ``work_dir``'s curves; the line to print, or None when the drawer is gone (the caller
        then draws in its own process)."""
        request = json.dumps({"run_dir": str(work_dir), "out": str(work_dir / "curves.png")}) + "\n"
        try:
            out, _ = self._process.communicate(request, timeout=_DRAW_TIMEOUT_S)
        except (OSError, ValueError):  # the drawer died before it read the request
            self.close()
            return None
        except subprocess.TimeoutExpired:
            self.close()
            return f"no curves.png drawn: drawing took more than {_DRAW_TIMEOUT_S:.0f} s"
        except KeyboardInterrupt:  # the run has ended and is saved: a Ctrl-C now skips only the plot
            self.close()
            return "no curves.png drawn: interrupted"
        lines = out.splitlines()
        if self._process.returncode != 0 or not lines:
            return None
        answer = json.loads(lines[-1])
        if "error" in answer:
            return f"no curves.png drawn: {answer['error']}"
        return _said(Path(answer["path"]) if answer["path"] is not None else None)

    def close(self) -> None:
        """End the drawer without drawing (a run that fails or stops)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def _serve() -> None:
    """The drawer's side: import matplotlib and draw once (fonts loaded, text laid out), then draw
    the run that the one request names."""
    from matplotlib.figure import Figure

    warm = Figure(figsize=(2.0, 2.0))
    ax = warm.subplots()
    ax.plot([1, 2], [1e-3, 1e-4], "o-", label="lr")
    ax.set_yscale("log")
    ax.set_title("lr")
    ax.legend(loc="best", fontsize="small")
    warm.savefig(io.BytesIO(), format="png", dpi=20)
    line = sys.stdin.readline()
    if not line:  # the run failed, stopped or was killed: nothing to draw
        return
    request = json.loads(line)
    try:
        path = draw_curves([Path(request["run_dir"])], Path(request["out"]))
    except Exception as e:  # a plot that fails never fails the run that has ended
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        return
    print(json.dumps({"path": None if path is None else str(path)}), flush=True)


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


if __name__ == "__typedrunner_curves__":
    _serve()
