"""Speed: what each start-up does before the first iteration stays cheap (issue 14, start-up target).

Counts and structure, not wall clock (the machine's load moves that): see benchmarks/README.md,
"Start-up", for the profile these checks come from.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO
from typedrunner.app.help import help_node


def test_help_template_is_not_an_interpolation_omegaconf_would_lex_at_every_merge() -> None:
    # OmegaConf parses a string holding "${" with its ANTLR lexer, character by character, each time
    # Hydra merges the config (16 times per start-up): the 27,000-character --help template cost 0.3 s
    node = help_node()
    assert len(node["template"]) > 10_000  # the schema's help is in it
    assert "${" not in node["template"]
    assert node["header"].replace("$", "$$") in node["template"]
    assert node["footer"].replace("$", "$$") in node["template"]


def test_startup_profile_stops_at_the_first_iteration_and_counts(tmp_path: Path) -> None:
    # benchmarks/startup_profile.py: a real run, profiled up to its first training iteration
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.startup_profile",
            "--top",
            "5",
            "train_dataloader.dataset.size=128",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    keys = ("Python calls", "modules imported", "calls into ANTLR (OmegaConf/Hydra grammars)", "Hydra compositions")
    counts = {k: v for k, _, v in (line.partition(": ") for line in result.stdout.splitlines()) if k in keys}
    assert int(counts["Python calls"].replace(",", "")) > 100_000
    assert int(counts["modules imported"].replace(",", "")) > 1_000
    assert counts["Hydra compositions"] == "1"  # hydra.mode read without composing (app/hydra_mode.py)
    # the run reached training (the hook stopped it there) after validation and the probe
    found = (re.fullmatch(r" {4}(\d+\.\d{3})  (.+)", line) for line in result.stdout.splitlines())
    stages = {m[2]: float(m[1]) for m in found if m}
    assert stages["Runner.checked: build, checks, the probe"] > 0
    assert (tmp_path / "run" / "config.json").is_file()
    # the --help template is no longer lexed: what ANTLR still does is the overrides and short interpolations
    assert int(counts["calls into ANTLR (OmegaConf/Hydra grammars)"].replace(",", "")) < 400_000
