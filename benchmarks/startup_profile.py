"""Where the time goes from process start to the first training iteration: cProfile of a whole
``python -m typedrunner +experiment=mlp`` run (one epoch, ``num_workers=0``, as ``overhead.py`` times
it), stopped by a hook (``startup_hook.py``) when the first training iteration starts.

Run from the repository root::

    OMP_NUM_THREADS=1 python -m benchmarks.startup_profile [--top N] [extra overrides...]

Prints the counts that load does not move (Python calls, modules imported, modules compiled from
source, calls into OmegaConf's ANTLR grammar), then the cumulative time of each stage and the top of
the profile by cumulative time (these times move with the machine's load, and cProfile inflates
Python-heavy code). Source compiles are non-zero when ``.pyc`` files are not written
(``PYTHONDONTWRITEBYTECODE=1``): a cost of that environment, not of the package.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import tempfile
from typing import Any

PROFILER = cProfile.Profile()

STAGES = (  # (file suffix, function, what it is)
    ("typedrunner/__init__.py", "<module>", "import typedrunner (the config schemas: pydantic)"),
    ("typedrunner/app/cli.py", "<module>", "import the command line (Hydra, the generated tree)"),
    ("typedrunner/app/compose.py", "load_python_configs", "run conf/experiment/*.py (imports torch)"),
    ("hydra/_internal/hydra.py", "get_mode", "Hydra.get_mode (composes only if a config may set hydra.mode)"),
    ("typedrunner/app/hydra_mode.py", "mode_is_unset", "hydra.mode told without composing (app/hydra_mode.py)"),
    ("hydra/_internal/hydra.py", "compose_config", "Hydra's compositions (all)"),
    ("omegaconf/grammar_parser.py", "parse", "OmegaConf's interpolation grammar (ANTLR)"),
    ("hydra/core/utils.py", "_save_config", "writing .hydra/*.yaml"),
    ("pydantic/_internal/_docs_extraction.py", "extract_docstrings_from_cls", "pydantic: field docstrings"),
    ("typedrunner/app/compose.py", "to_runner_config", "validation (RunnerConfig)"),
    ("typedrunner/engine/runner.py", "checked", "Runner.checked: build, checks, the probe"),
    ("torch/_dynamo/__init__.py", "<module>", "torch._dynamo (imported by torch.optim, as by hand)"),
    ("typedrunner/engine/runner.py", "train", "Runner.train up to the first iteration"),
)


def report(modules: list[str]) -> None:
    """Prints the summary of the profile taken so far."""
    stats = pstats.Stats(PROFILER)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    antlr = sum(v[1] for k, v in entries.items() if "antlr4" in k[0])
    compiles = sum(
        calls[1]
        for key, value in entries.items()
        if key[2] == "<built-in method builtins.compile>"
        for caller, calls in value[4].items()
        if caller[2] == "_call_with_frames_removed"
    )
    print(f"Python calls: {stats.total_calls:,}")  # type: ignore[attr-defined]
    print(f"modules imported: {len(modules):,}")
    print(f"modules compiled from source (no .pyc): {compiles}")
    print(f"calls into ANTLR (OmegaConf/Hydra grammars): {antlr:,}")
    composed = sum(
        v[1] for k, v in entries.items() if k[0].endswith("hydra/_internal/hydra.py") and k[2] == "compose_config"
    )
    print(f"Hydra compositions: {composed}")
    print("stages (cumulative s, under cProfile):")
    for suffix, function, what in STAGES:
        found = [v[3] for k, v in entries.items() if k[0].endswith(suffix) and k[2] == function]
        print(f"  {found[0] if found else 0.0:7.3f}  {what}")
    if TOP > 0:
        out = io.StringIO()
        pstats.Stats(PROFILER, stream=out).sort_stats("cumulative").print_stats(TOP)
        print(out.getvalue().split("filename:lineno(function)", 1)[-1].rstrip())


TOP = 40


def main() -> None:
    global TOP
    args = sys.argv[1:]
    if args[:1] == ["--top"]:
        TOP, args = int(args[1]), args[2:]
    run_dir = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), None)
    if run_dir is None:  # the run directory (the process ends at the first iteration: nothing removes it)
        run_dir = tempfile.mkdtemp(prefix="startup_profile_")
    sys.argv = [
        "typedrunner",
        "+experiment=mlp",
        "train_cfg.max_epochs=1",
        "train_cfg.val_begin=1",
        "~param_scheduler",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        f"hydra.run.dir={run_dir}",
        "+custom_hooks=[{type: benchmarks.startup_hook.StopAtFirstIteration}]",
        *(a for a in args if not a.startswith("hydra.run.dir=")),
    ]
    PROFILER.enable()
    from typedrunner.app.cli import main as cli

    cli()
    PROFILER.disable()
    print("startup_profile: the run ended without a training iteration", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
