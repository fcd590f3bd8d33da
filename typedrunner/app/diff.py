"""``python -m typedrunner.app.diff RUN_A RUN_B``: the validated configs' differences, path by path.

A run is a run directory (its ``config.json``), a ``config.json`` itself, or a checkpoint (the
config stored in its meta). Both sides are validated configs, so every default is written out on
both and only real differences show: ``optim_wrapper.optimizer.lr: 0.001 -> 0.01``. ``work_dir``
always differs and is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from typedrunner.errors import TypedRunnerError

__all__ = ["load_run_config", "main"]


def load_run_config(path: Path) -> dict[str, Any]:
    """The validated config of a run directory, a config.json, or a checkpoint."""
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise TypedRunnerError(f"{path}: no such run (expected a run directory with config.json, or a checkpoint)")
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        from typedrunner.engine.checkpoints import saved_config
        from typedrunner.parts.checkpoint import load_checkpoint

        data = saved_config(load_checkpoint(path))
    if not isinstance(data, dict) or not data:
        raise TypedRunnerError(f"{path}: holds no typedrunner config")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m typedrunner.app.diff", description=(__doc__ or "").partition("\n")[0]
    )
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args(argv)
    from typedrunner.engine.checkpoints import config_diff

    try:
        lines = config_diff(load_run_config(args.run_a), load_run_config(args.run_b), ignore=("work_dir",))
    except TypedRunnerError as e:
        print(f"typedrunner.app.diff: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines) if lines else "no differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
