"""Speed: ``benchmarks/gpu_bench.py`` runs in its smoke mode (tiny sizes on the CPU), as CI can: both
workloads train under ``Runner.train()`` and by hand, and a ratio is printed for each. Its figures
mean nothing on the CPU; on a GPU the same script measures issue 14's targets."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import REPO


def test_gpu_bench_smoke_mode_runs_both_workloads_both_ways() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_bench.py", "--smoke", "--rounds", "1"],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "smoke mode: the figures mean nothing" in lines[0], result.stdout
    mlp = re.fullmatch(r"mlp: (\d+) us/iter typedrunner, (\d+) us/iter hand-written, ratio ([\d.]+)x .*", lines[1])
    resnet = re.fullmatch(
        r"resnet18: (\d+) images/s typedrunner, (\d+) images/s hand-written, ratio ([\d.]+)x .*", lines[2]
    )
    assert mlp and resnet, result.stdout
    assert all(float(v) > 0 for v in (*mlp.groups(), *resnet.groups())), result.stdout
