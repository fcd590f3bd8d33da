"""The README is a contract (issue 11, item 5): every command in it is run by a test, and every
printed output in it is what the program prints today.

The commands are read from README.md itself: each fenced ``bash``/``sh``/``shell``/``console`` block
line, and each ``$ ...`` line of a ``text`` block (the lines after it, up to the next ``$``, being
its printed output); ``\\`` continuations joined, comments dropped, ``&&`` chains split. Each must be
listed in ``tests/readme_commands.py`` with the test that runs it, or as a set-up line with what
covers it. The commands that no other test runs are run here, as a user would run them, with the
seed's datasets shrunk to one batch and the run directory under ``tmp_path`` (appended overrides).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import REPO, explain
from tests.readme_commands import README_COMMANDS, RunBy, SetUp

README = REPO / "README.md"
_SHELL_BLOCKS = ("bash", "sh", "shell", "console")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Shown:
    """A command the README shows, with the output it prints after it (``text`` blocks only)."""

    command: str
    output: tuple[str, ...] | None = None


def _split(line: str) -> list[str]:
    """A shell line's commands, each spelled as ``shlex.join`` spells it (``&&`` chains split)."""
    commands: list[list[str]] = [[]]
    for token in shlex.split(line, comments=True):
        if token == "&&":
            commands.append([])
        else:
            commands[-1].append(token)
    return [shlex.join(c) for c in commands if c]


def readme_commands(text: str) -> list[Shown]:
    """Every command of ``text``'s fenced shell blocks and ``$`` lines, in order."""
    found: list[Shown] = []
    for language, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        lines = body.replace("\\\n", " ").splitlines()
        if language in _SHELL_BLOCKS:
            for line in lines:
                prompt = line.startswith("$ ")
                found += [Shown(c) for c in _split(line[2:] if prompt else line)]
        elif language == "text":
            for i, line in enumerate(lines):
                if line.startswith("$ "):
                    output = []
                    for after in lines[i + 1 :]:
                        if after.startswith("$ "):
                            break
                        output.append(after)
                    found += [Shown(c, tuple(output)) for c in _split(line[2:])]
    return found


SHOWN = readme_commands(README.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------
# The list: every README command is run by a test, or is a set-up line
# ----------------------------------------------------------------------------------------------
def test_every_readme_command_is_run_by_a_test() -> None:
    missing = [s.command for s in SHOWN if s.command not in README_COMMANDS]
    assert not missing, (
        f"{len(missing)} README command(s) that no test is listed as running. Add a test that runs each, "
        "and list it in tests/readme_commands.py:\n"
        + "\n".join(f'    {c!r}: RunBy("tests/test_<file>.py::test_<name>", "<how it differs>"),' for c in missing)
    )


def test_every_listed_command_is_still_in_the_readme() -> None:
    shown = {s.command for s in SHOWN}
    stale = [c for c in README_COMMANDS if c not in shown]
    assert not stale, "tests/readme_commands.py lists commands the README no longer shows:\n" + "\n".join(stale)


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_each_listed_test_exists() -> None:
    for command, covered in README_COMMANDS.items():
        if isinstance(covered, SetUp):
            assert covered.reason, command
            continue
        file, _, name = covered.test.partition("::")
        assert (REPO / file).is_file() and name in _test_functions(REPO / file), f"{covered.test} ({command})"


def test_ci_runs_the_readme_test_command() -> None:
    """``.ci/run`` runs the README's test command (exporting ``OMP_NUM_THREADS=1`` once, for every
    command, where the README sets it on pytest's)."""
    ci = [c.removeprefix("OMP_NUM_THREADS=1 ") for c in _split((REPO / ".ci" / "run").read_text().splitlines()[-1])]
    chains = [
        [c.removeprefix("OMP_NUM_THREADS=1 ") for c in _split(line)]
        for line in README.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
        if "python -m pytest" in line and "&&" in line
    ]
    assert chains == [ci], f".ci/run runs {ci}; the README's test command is {chains}"
    assert "export OMP_NUM_THREADS=1" in (REPO / ".ci" / "run").read_text()


def test_the_extraction_finds_what_the_readme_shows() -> None:
    """The extractor sees commands in every kind of block, their printed output, and ``&&`` chains."""
    commands = [s.command for s in SHOWN]
    assert "OMP_NUM_THREADS=1 python -m typedrunner +experiment=mlp" in commands
    assert "pyright" in commands and "lint-imports" in commands
    assert len([s for s in SHOWN if s.output]) >= 2
    assert all(isinstance(README_COMMANDS[c], (RunBy, SetUp)) for c in commands if c in README_COMMANDS)


# ----------------------------------------------------------------------------------------------
# Running them
# ----------------------------------------------------------------------------------------------
SMALL = [
    "train_dataloader.dataset.size=64",
    "val_dataloader.dataset.size=64",
    "train_dataloader.num_workers=0",
    "val_dataloader.num_workers=0",
]
"""Appended to a training command: one batch per epoch, no worker processes."""

_BROKENMOD = '''
from torch import Tensor

from examples.seed_mlp import MyDataset


class Float64Rings(MyDataset):
    """The seed's rings as float64 (``torch.tensor(numpy_array)`` gives float64)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index].double(), self.labels[index]
'''


def run_readme(
    command: str,
    env: Mapping[str, str],
    *extra: str,
    replace: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a README command as written (``python`` being this interpreter, leading ``NAME=value``
    words the environment), with argument ``replace``-ments and ``extra`` arguments appended."""
    words = shlex.split(command)
    assignments = {}
    while words and _ENV.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    if words[0] == "python":
        words[0] = sys.executable
    words = [(replace or {}).get(w, w) for w in words]
    return subprocess.run(
        [*words, *extra], cwd=REPO, env={**env, **assignments}, capture_output=True, text=True, timeout=300, check=False
    )


def _command(prefix: str) -> str:
    """The README command that starts with ``prefix`` (exactly one)."""
    matches = [s.command for s in SHOWN if s.command.startswith(prefix)]
    assert len(matches) == 1, (prefix, matches)
    return matches[0]


def test_the_main_job(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """The seed tutorial end to end: 10 epochs, a checkpoint each, the logs and the summary."""
    run_dir = tmp_path / "run"
    result = run_readme(
        "OMP_NUM_THREADS=1 python -m typedrunner +experiment=mlp", subprocess_env, *SMALL, f"hydra.run.dir={run_dir}"
    )
    assert result.returncode == 0, explain(result)
    assert sorted(p.name for p in run_dir.glob("epoch_*.pth")) == sorted(f"epoch_{i}.pth" for i in range(1, 11))
    assert (run_dir / "scalars.jsonl").read_text().strip()
    assert '"epochs": 10' in (run_dir / "summary.json").read_text()


def test_the_tour_override(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    command = _command("python -m typedrunner +experiment=mlp train_cfg.max_epochs=3")
    result = run_readme(command, subprocess_env, *SMALL, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, explain(result)


def test_the_tour_group_options(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    command = _command("python -m typedrunner +experiment=mlp optim_wrapper=sgd")
    result = run_readme(command, subprocess_env, *SMALL, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, explain(result)
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert config.optim_wrapper.optimizer.type == "SGD"
    assert config.param_scheduler.type == "CosineAnnealingLR"
    assert (run_dir / "epoch_10.pth").is_file()


def normalize(text: str, run_dir: Path | None = None) -> list[str]:
    """Lines without what differs between runs: the run directory, dates, durations; trailing spaces."""
    if run_dir is not None:
        text = text.replace(str(run_dir), "<run dir>")
    text = re.sub(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", "<date>", text)
    text = re.sub(r"\b\d+(\.\d+)? ?(ms|s)\b", "<duration>", text)
    return [line.rstrip() for line in text.strip().splitlines()]


PRINTED = [s for s in SHOWN if s.output]


@pytest.mark.parametrize("shown", PRINTED, ids=[f"printed-{i}" for i in range(len(PRINTED))])
def test_the_printed_output_is_what_the_program_prints(
    shown: Shown, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The command, run exactly as shown (``brokenmod`` is the README's example of a user module),
    prints exactly the README's lines."""
    (tmp_path / "brokenmod.py").write_text(_BROKENMOD, encoding="utf-8")
    env = {**subprocess_env, "PYTHONPATH": f"{tmp_path}:{subprocess_env['PYTHONPATH']}"}
    run_dir = tmp_path / "run"
    result = run_readme(shown.command, env, f"hydra.run.dir={run_dir}")
    assert shown.output is not None
    printed = normalize(result.stdout + result.stderr, run_dir)
    assert printed == normalize("\n".join(shown.output)), (
        f"README.md shows, after `$ {shown.command}`:\n" + "\n".join(shown.output) + f"\n\nit prints today (exit "
        f"{result.returncode}):\n" + "\n".join(printed)
    )


# ----------------------------------------------------------------------------------------------
# The sweep, and the report commands on its directory
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The README's sweep, run once for the tests of this section (the conftest's environment)."""
    sweep_dir = tmp_path_factory.mktemp("readme") / "sweep"
    command = _command("python -m typedrunner -m +experiment=mlp optim_wrapper.optimizer.lr=1e-3,1e-2")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)}
    return sweep_dir, run_readme(command, env, *SMALL, f"hydra.sweep.dir={sweep_dir}")


def test_the_sweep_runs_every_point(sweep: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    sweep_dir, result = sweep
    assert result.returncode == 0, explain(result)
    jobs = sorted(p.name for p in sweep_dir.iterdir() if (p / "summary.json").is_file())
    assert jobs == ["0", "1", "2", "3"]
    points = set()
    for job in jobs:
        config = json.loads((sweep_dir / job / "config.json").read_text())
        points.add((config["optim_wrapper"]["optimizer"]["lr"], config["model"]["layers"]))
    assert points == {(1e-3, 2), (1e-3, 4), (1e-2, 2), (1e-2, 4)}


REPORTS = [s.command for s in SHOWN if s.command.startswith("python -m typedrunner.report ")]


@pytest.mark.parametrize("command", REPORTS, ids=[f"report-{i}" for i in range(len(REPORTS))])
def test_the_report_commands(
    command: str, sweep: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The README's example directories stand for the README sweep's directory and two of its runs."""
    sweep_dir, swept = sweep
    assert swept.returncode == 0, explain(swept)
    replace = {
        "multirun/mlp/2026-11-27_12-53-01": str(sweep_dir),
        "outputs/mlp/2026-11-27_10-00-00": str(sweep_dir / "0"),
        "outputs/mlp/2026-11-27_11-00-00": str(sweep_dir / "1"),
        "reports/lr": str(tmp_path / "lr"),
    }
    assert set(shlex.split(command)) & set(replace), f"{command}: no example path to stand in for"
    result = run_readme(command, subprocess_env, replace=replace)
    assert result.returncode == 0, explain(result)
    assert "| job | status |" in result.stdout
    rows = [line for line in result.stdout.splitlines() if re.match(r"\| \d+ \| ok \|", line)]
    assert len(rows) == (2 if "reports/lr" in command else 4), result.stdout


def test_an_optuna_search_space_of_your_own(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    sweep_dir = tmp_path / "sweep"
    command = _command("python -m typedrunner -m +experiment=mlp hydra/sweeper=optuna_mlp hydra.sweeper.n_trials=50")
    replace = {"hydra.sweeper.n_trials=50": "hydra.sweeper.n_trials=2"}
    result = run_readme(command, subprocess_env, *SMALL, f"hydra.sweep.dir={sweep_dir}", replace=replace)
    assert result.returncode == 0, explain(result)
    jobs = sorted(p for p in sweep_dir.iterdir() if (p / "summary.json").is_file())
    assert len(jobs) == 2
    for job in jobs:
        lr = json.loads((job / "config.json").read_text())["optim_wrapper"]["optimizer"]["lr"]
        assert 1e-5 <= lr <= 1e-2, lr  # within the range the command gives
    assert (sweep_dir / "optimization_results.yaml").is_file()
