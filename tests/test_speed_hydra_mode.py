"""Speed: Hydra composes the config once per run, not twice (issue 14, start-up).

``hydra.main`` asks ``Hydra.get_mode`` for ``hydra.mode`` before every run, which composes the whole
config to read it. The command line now answers without composing when nothing can set it
(``typedrunner/app/hydra_mode.py``) and leaves it to Hydra otherwise. The CLI tests run the real
command line with a ``sitecustomize`` that counts Hydra's compositions (``Hydra.compose_config``);
the others compare the shortcut's answer with Hydra's own ``get_mode`` on config directories that do
and do not set ``hydra.mode``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from tests.helpers import CONF, ONE_EPOCH, cli_env, explain, run_cli
from typedrunner.app.hydra_mode import mode_is_unset

COUNTER = '''
"""Counts Hydra's compositions of this process (installed by sitecustomize); written at exit."""
import atexit
import json
import os

from hydra._internal.hydra import Hydra

original = Hydra.compose_config
modes = []


def compose_config(self, *args, **kwargs):
    modes.append(str(kwargs.get("run_mode")))
    return original(self, *args, **kwargs)


Hydra.compose_config = compose_config
atexit.register(lambda: open(os.environ["COMPOSITIONS"], "w", encoding="utf-8").write(json.dumps(modes)))
'''

SMALL = [*ONE_EPOCH, "train_dataloader.dataset.size=128", "val_dataloader.dataset.size=64"]
LRS = "optim_wrapper.optimizer.lr=0.01,0.02"


def _counted_cli(tmp_path: Path, args: list[str], conf: Path | None = None) -> tuple[list[str], str]:
    """Run the command line; the run modes of Hydra's compositions, and its output."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(COUNTER, encoding="utf-8")
    env = cli_env(probe)
    env["COMPOSITIONS"] = str(tmp_path / "compositions.json")
    if conf is not None:
        env["TYPEDRUNNER_CONF"] = str(conf)
    result = run_cli(args, env)
    assert result.returncode == 0, explain(result)
    modes: list[str] = json.loads((tmp_path / "compositions.json").read_text(encoding="utf-8"))
    return modes, result.stdout + result.stderr


def _jobs(sweep_dir: Path) -> list[Path]:
    """The sweep's job directories that trained (each holds its validated config and a checkpoint)."""
    return sorted(p for p in sweep_dir.iterdir() if (p / "config.json").is_file() and list(p.glob("*.pth")))


def test_a_run_composes_its_config_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    modes, _ = _counted_cli(tmp_path, [*SMALL, f"hydra.run.dir={run_dir}"])
    assert modes == [str(RunMode.RUN)]  # before: [MULTIRUN (get_mode, thrown away), RUN]
    assert json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["train_cfg"]["max_epochs"] == 1
    assert list(run_dir.glob("*.pth"))  # it trained
    overrides = (run_dir / ".hydra" / "hydra.yaml").read_text(encoding="utf-8")
    assert "- hydra.mode=RUN" in overrides  # what Hydra adds when get_mode finds no mode, as before


def test_a_sweep_with_dash_m_composes_once_and_runs_every_job(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    modes, _ = _counted_cli(tmp_path, ["-m", *SMALL, LRS, f"hydra.sweep.dir={sweep_dir}"])
    assert modes == [str(RunMode.MULTIRUN)]  # the sweep's own; each job's config is the launcher's
    assert len(_jobs(sweep_dir)) == 2


def test_hydra_mode_multirun_on_the_command_line_still_sweeps(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    modes, _ = _counted_cli(tmp_path, [*SMALL, LRS, "hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep_dir}"])
    assert modes == [str(RunMode.MULTIRUN)] * 2  # the override names hydra.mode: Hydra's get_mode read it
    assert len(_jobs(sweep_dir)) == 2


def test_an_experiment_file_that_sets_hydra_mode_still_sweeps(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "experiment" / "mlp_sweep.yaml").write_text(
        "# @package _global_\ndefaults:\n  - mlp\n  - _self_\nhydra:\n  mode: MULTIRUN\n", encoding="utf-8"
    )
    sweep_dir = tmp_path / "sweep"
    args = ["+experiment=mlp_sweep", *SMALL[1:], LRS, f"hydra.sweep.dir={sweep_dir}"]
    modes, _ = _counted_cli(tmp_path, args, conf)
    assert modes == [str(RunMode.MULTIRUN)] * 2
    assert len(_jobs(sweep_dir)) == 2


# ----------------------------------------------------------------------------------------------
# The shortcut against Hydra's own get_mode, in process
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def conf_dir(tmp_path: Path) -> Iterator[Path]:
    conf = tmp_path / "conf"
    (conf / "opt").mkdir(parents=True)
    (conf / "config.yaml").write_text("defaults:\n  - _self_\nx: 1\n", encoding="utf-8")
    yield conf
    GlobalHydra.instance().clear()


def _answers(conf: Path, overrides: list[str]) -> tuple[bool, RunMode | None]:
    """(the shortcut's answer, Hydra's get_mode) for ``conf`` and ``overrides``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        mode: RunMode | None = hydra.get_mode(config_name="config", overrides=list(overrides))
        return mode_is_unset(hydra, list(overrides)), mode


def test_nothing_sets_the_mode_and_the_shortcut_says_so(conf_dir: Path) -> None:
    # a key named mode elsewhere (W&B's, torch.compile's) is not hydra.mode
    (conf_dir / "opt" / "nested.yaml").write_text("backend:\n  mode: offline\n", encoding="utf-8")
    assert _answers(conf_dir, ["+opt=nested"]) == (True, None)
    assert _answers(conf_dir, ["x=2"]) == (True, None)


@pytest.mark.parametrize(
    ("name", "text", "overrides"),
    [
        ("global", "# @package _global_\nhydra:\n  mode: MULTIRUN\n", ["+opt=global"]),
        ("header", "# @package hydra\nmode: MULTIRUN\n", ["+opt=header"]),
        ("moved", "mode: MULTIRUN\n", ["+opt@hydra=moved"]),  # a defaults list puts it in hydra
        ("escaped", '# @package _global_\nhydra:\n  "mo\\x64e": MULTIRUN\n', ["+opt=escaped"]),
        ("flow", "# @package _global_\n{hydra: {mode: MULTIRUN}}\n", ["+opt=flow"]),
    ],
)
def test_a_config_file_that_sets_the_mode_is_left_to_hydra(
    conf_dir: Path, name: str, text: str, overrides: list[str]
) -> None:
    (conf_dir / "opt" / f"{name}.yaml").write_text(text, encoding="utf-8")
    assert _answers(conf_dir, overrides) == (False, RunMode.MULTIRUN)


def test_an_override_or_a_stored_config_that_sets_the_mode_is_left_to_hydra(conf_dir: Path) -> None:
    assert _answers(conf_dir, ["hydra.mode=MULTIRUN"]) == (False, RunMode.MULTIRUN)
    assert _answers(conf_dir, ["+hydra.job.env_set={mode: x}"])[0] is False  # names mode: not told apart
    store = ConfigStore.instance()
    store.store(group="stored_mode", name="sweep", node={"hydra": {"mode": "MULTIRUN"}}, package="_global_")
    try:
        assert _answers(conf_dir, ["+stored_mode=sweep"]) == (False, RunMode.MULTIRUN)
    finally:
        del store.repo["stored_mode"]
    assert _answers(conf_dir, []) == (True, None)
