"""The README's "Coming from MMEngine" section is a contract: its commands run, from a project root
(a copy of conf/ and of the MMEngine config fixtures), and print exactly what it shows."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, explain


def section_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Coming from MMEngine\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.*?)```", section, flags=re.DOTALL)


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "python"
    return subprocess.run(
        [sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_migration_guide_commands_run_and_print_what_it_shows(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    migrate, printed, train = section_blocks()[:3]
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    shutil.copytree(REPO / "tests" / "mmengine_configs", tmp_path / "tests" / "mmengine_configs")

    converted = run(migrate.strip(), tmp_path, subprocess_env)
    assert converted.returncode == 0, explain(converted)
    assert converted.stdout == printed

    trained = run(train.strip(), tmp_path, subprocess_env)
    assert trained.returncode == 0, explain(trained)
    (summary_file,) = (tmp_path / "outputs" / "mlp_rings_quick").glob("*/summary.json")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary["epochs"] == 2
    assert summary["final_metrics"]["accuracy"] > 80.0  # 2 epochs on 2,000 points of the seed problem
    # the visualizer carried over (UniversalVisualizer's LocalVisBackend) wrote MMEngine's files
    scalars = (summary_file.parent / "vis_data" / "scalars.json").read_text(encoding="utf-8").splitlines()
    assert any("val/accuracy" in json.loads(line) for line in scalars)
