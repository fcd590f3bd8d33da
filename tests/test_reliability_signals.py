"""Reliability: a graceful stop on SIGTERM / SIGINT.

The command line (a real subprocess) and an in-process run are stopped with SIGTERM / SIGINT: the
iteration in progress finishes, a resumable checkpoint is written, a second SIGTERM exits at once, and
the resumed run matches an uninterrupted one exactly.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import Tensor

from tests.helpers import (
    PLUGINS,
    BackgroundCli,
    SendSignal,
    checkpoint_weights,
    explain,
    mlp_args,
    plugin_cli_env,
    read_checkpoint,
    resolved_pointer,
    run_cli,
    same_weights,
    signal_config,
    write_plugins,
)
from typedrunner.errors import TrainingStopped
from typedrunner.runner import Runner


def _has_train_line(path: Path) -> Callable[[], bool]:
    def check() -> bool:
        return path.is_file() and any('"mode": "train"' in line for line in path.read_text().splitlines())

    return check


# ----------------------------------------------------------------------------------------------
# Graceful stop on SIGTERM / SIGINT
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tensor]:
    """The final weights of an uninterrupted command-line run of ``mlp_args`` (2 epochs, 40 iterations)."""
    root = tmp_path_factory.mktemp("reference")
    result = run_cli(mlp_args(root / "run"), plugin_cli_env(write_plugins(root)))
    assert result.returncode == 0, explain(result)
    return checkpoint_weights(root / "run" / "epoch_2.pth")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_stops_on_a_signal_with_a_resumable_checkpoint(
    tmp_path: Path, signum: signal.Signals, mlp_reference: dict[str, Tensor]
) -> None:
    env = plugin_cli_env(write_plugins(tmp_path))
    run_dir = tmp_path / "run"
    cli = BackgroundCli(mlp_args(run_dir), env, tmp_path / "logs")
    cli.wait_until(_has_train_line(run_dir / "scalars.jsonl"), "training logged its first scalars")
    cli.process.send_signal(signum)
    code = cli.wait()
    out, err = cli.output()
    assert code == 3, cli.explain()
    assert "Traceback" not in err, cli.explain()

    stopped = sorted(run_dir.glob("stopped_iter_*.pth"))
    assert len(stopped) == 1, cli.explain()
    checkpoint = stopped[0]
    iteration = int(checkpoint.stem.removeprefix("stopped_iter_"))
    assert 10 <= iteration < 40  # after the first logged iteration, before the end
    assert f"stopped by {signum.name}" in err and str(checkpoint) in err, cli.explain()
    assert f"resume=true work_dir={run_dir}" in out, cli.explain()  # how to resume
    assert resolved_pointer(run_dir) == checkpoint
    meta = read_checkpoint(checkpoint)["meta"]
    assert meta["iter"] == iteration and meta["epoch"] * 20 + meta["inner_iter"] == iteration
    assert not (run_dir / "epoch_2.pth").exists()

    resumed = run_cli(mlp_args(tmp_path / "resumed", f"work_dir={run_dir}", "resume=true"), env)
    assert resumed.returncode == 0, explain(resumed)
    assert json.loads((run_dir / "summary.json").read_text())["iters"] == 40
    assert same_weights(checkpoint_weights(run_dir / "epoch_2.pth"), mlp_reference)


def _second_signal(tmp_path: Path, signum: signal.Signals) -> BackgroundCli:
    """A CLI run sent ``signum`` twice: the second while the first one's iteration still runs."""
    run_dir = tmp_path / "run"
    slow = ["+train_dataloader.dataset.delay=0.01", "default_hooks.logger.interval=1"]  # 0.6 s per iteration
    cli = BackgroundCli(mlp_args(run_dir, *slow), plugin_cli_env(write_plugins(tmp_path)), tmp_path / "logs")
    cli.wait_until(_has_train_line(run_dir / "scalars.jsonl"), "training logged its first scalars")
    cli.process.send_signal(signum)
    cli.wait_until(lambda: f"{signum.name} received" in cli.output()[0], f"the first {signum.name} was acknowledged")
    cli.process.send_signal(signum)
    cli.wait()
    return cli


def test_cli_second_sigterm_exits_at_once(tmp_path: Path) -> None:
    cli = _second_signal(tmp_path, signal.SIGTERM)
    assert cli.process.returncode == -signal.SIGTERM, cli.explain()  # killed by the signal, not a graceful exit 3


def test_cli_second_ctrl_c_stops_at_once_in_one_line(tmp_path: Path) -> None:
    """A second Ctrl-C while the first one's iteration is still running: exit 130 at once, one line
    saying what is lost and what is kept, no traceback."""
    cli = _second_signal(tmp_path, signal.SIGINT)
    out, err = cli.output()
    assert cli.process.returncode == 130, cli.explain()
    assert "stopped at once by a second interrupt" in err and "no checkpoint was saved" in err, cli.explain()
    assert "Traceback" not in out + err, cli.explain()
    assert not list((tmp_path / "run").glob("*.pth")), cli.explain()  # the first Ctrl-C's checkpoint never came


@pytest.mark.parametrize(
    ("signum", "at"),
    [(signal.SIGTERM, 6), (signal.SIGINT, 4)],
    ids=["SIGTERM-mid-epoch", "SIGINT-at-the-end-of-an-epoch"],
)
def test_signal_in_process_stops_after_that_iteration_and_resumes_exactly(
    tmp_path: Path, signum: signal.Signals, at: int
) -> None:
    straight = Runner(signal_config(tmp_path / "straight"))
    straight.train()

    work_dir = tmp_path / "run"
    handler = signal.getsignal(signum)
    runner = Runner(signal_config(work_dir))
    runner.register_hook(SendSignal(signum, at))
    with pytest.raises(TrainingStopped) as info:
        runner.train()
    assert signal.getsignal(signum) == handler  # the handlers are put back
    checkpoint = work_dir / f"stopped_iter_{at}.pth"
    assert info.value.signal_name == signum.name
    assert info.value.checkpoint == checkpoint
    assert runner.iter == at
    assert resolved_pointer(work_dir) == checkpoint
    meta = read_checkpoint(checkpoint)["meta"]
    assert (meta["epoch"], meta["iter"], meta["inner_iter"]) == ((at - 1) // 4, at, (at - 1) % 4 + 1)

    resumed = Runner(signal_config(work_dir, resume=True))
    assert resumed.iter == at
    resumed.train()
    assert same_weights(resumed.model.state_dict(), straight.model.state_dict())
    assert same_weights(
        checkpoint_weights(work_dir / "epoch_3.pth"), checkpoint_weights(tmp_path / "straight" / "epoch_3.pth")
    )


def test_ctrl_c_before_training_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """A Ctrl-C while the run is still being built (here: as the dataset is built) ends with exit 130
    and one line, not a traceback; there is nothing to save yet, and nothing is saved."""
    run_dir = tmp_path / "run"
    result = run_cli(
        mlp_args(run_dir, dataset=f"{PLUGINS}.InterruptedAtBuild"), plugin_cli_env(write_plugins(tmp_path))
    )
    assert result.returncode == 130, explain(result)
    assert "interrupted before training started: nothing was trained or saved" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(run_dir.glob("*.pth")) and not (run_dir / "last_checkpoint").exists()
