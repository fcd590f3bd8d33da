"""Hardening (issue 13, items 6 and 7): preemption during validation, and a sample that hangs.

Real command-line subprocesses, real signals, real dataloader worker processes:
- SIGTERM to the whole process group (what SLURM sends) while validation workers load data stops
  the run with exit 3 and a resumable checkpoint: the workers dying of the same signal are not a
  data failure;
- SIGTERM to the main process during validation abandons the validation pass at once (it does not
  wait for the pass to finish), saves the training state and exits 3;
- a sample that never returns, with ``timeout`` set on its dataloader, ends the run with exit 1
  naming the dataloader and "timed out" (the failing-sample diagnosis has a time limit too).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.helpers import BackgroundCli, explain, plugin_cli_env, read_checkpoint, resolved_pointer, run_cli

PLUGINS = "preemption_plugins"
PLUGINS_SOURCE = '''
"""Validation datasets for the preemption tests: slow to load, or hanging on one sample."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from torch.utils.data import get_worker_info

from examples.seed_mlp import MyDataset


class SlowVal(MyDataset):
    """The seed's validation rings; each sample takes ``delay`` seconds. The first sample a
    dataloader worker reads creates the file ``started`` (the test waits for it)."""

    def __init__(self, is_train: bool, size: int, delay: float = 0.0, started: str = "") -> None:
        super().__init__(is_train, size)
        self.delay = delay
        self.started = started

    def __getitem__(self, index: int) -> Any:
        if self.started and get_worker_info() is not None:
            Path(self.started).touch()
        time.sleep(self.delay)
        return super().__getitem__(index)


class Hangs(MyDataset):
    """The seed's rings; sample ``index`` never returns (a stuck network filesystem, a deadlock)."""

    def __init__(self, is_train: bool, size: int, index: int = 0) -> None:
        super().__init__(is_train, size)
        self.index = index

    def __getitem__(self, index: int) -> Any:
        if index == self.index:
            while True:
                time.sleep(1)
        return super().__getitem__(index)
'''


def _env(tmp_path: Path) -> dict[str, str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / f"{PLUGINS}.py").write_text(PLUGINS_SOURCE, encoding="utf-8")
    return plugin_cli_env(plugins)


def _args(run_dir: Path, *extra: str) -> list[str]:
    """The seed for 2 epochs of 4 iterations, validated after each epoch on a slow val dataset of
    800 samples (batches of 16) read by 2 workers: a full validation pass takes about 20 s."""
    return [
        "+experiment=mlp",
        "~param_scheduler",
        f"custom_imports=[examples.seed_mlp,{PLUGINS}]",
        "train_dataloader.num_workers=0",
        "train_dataloader.dataset.size=256",
        "train_cfg.max_epochs=2",
        "train_cfg.val_begin=1",
        "+randomness.seed=0",
        f"val_dataloader.dataset.type={PLUGINS}.SlowVal",
        "val_dataloader.dataset.size=800",
        "val_dataloader.batch_size=16",
        "val_dataloader.num_workers=2",
        "+val_dataloader.dataset.delay=0.05",
        f"+val_dataloader.dataset.started={run_dir.parent / 'validation_started'}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


FULL_PASS_S = 800 * 0.05 / 2
"""What one validation pass takes with its 2 workers (at least)."""


def _stop_during_validation(tmp_path: Path, whole_group: bool) -> tuple[BackgroundCli, Path, float]:
    """Start the run, wait until the first validation pass is loading data in its workers, send
    SIGTERM (to the process group, or to the main process only); return the exited run, its run
    directory and the seconds between the signal and the exit."""
    run_dir = tmp_path / "run"
    cli = BackgroundCli(_args(run_dir), _env(tmp_path), tmp_path / "logs", own_session=True)
    started = tmp_path / "validation_started"
    cli.wait_until(started.is_file, "the validation workers started loading")
    time.sleep(0.5)  # well inside the 20 s pass
    sent = time.monotonic()
    if whole_group:
        os.killpg(cli.process.pid, signal.SIGTERM)
    else:
        cli.process.send_signal(signal.SIGTERM)
    code = cli.wait()
    took = time.monotonic() - sent
    assert code == 3, cli.explain()
    return cli, run_dir, took


def _assert_stopped_and_resumes(cli: BackgroundCli, run_dir: Path, tmp_path: Path) -> None:
    """One stopped checkpoint of the training state after epoch 1 (4 iterations), named in the
    output; resuming from it validates epoch 1 again and finishes the run."""
    err = cli.stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in err, cli.explain()
    assert "fix the data" not in err and "worker died" not in err, cli.explain()
    stopped = sorted(run_dir.glob("stopped_iter_*.pth"))
    assert [p.name for p in stopped] == ["stopped_iter_4.pth"], cli.explain()
    assert "stopped by SIGTERM" in err and str(stopped[0]) in err, cli.explain()
    assert resolved_pointer(run_dir) == stopped[0]
    meta = read_checkpoint(stopped[0])["meta"]
    assert (meta["epoch"], meta["iter"], meta["inner_iter"]) == (1, 4, 0)

    fast_val = ["val_dataloader.dataset.delay=0", "val_dataloader.num_workers=0", f"work_dir={run_dir}"]
    resumed = run_cli(_args(tmp_path / "resumed", *fast_val, "resume=true"), _env(tmp_path))
    assert resumed.returncode == 0, explain(resumed)
    assert json.loads((run_dir / "summary.json").read_text())["iters"] == 8
    val_lines = [json.loads(line) for line in (run_dir / "scalars.jsonl").read_text().splitlines()]
    val_epochs = [line["epoch"] for line in val_lines if line.get("mode") == "val"]
    assert val_epochs == [1, 2], val_epochs  # the abandoned validation of epoch 1 is run on resume


def test_sigterm_to_the_process_group_during_validation_is_a_stop_not_a_data_failure(tmp_path: Path) -> None:
    cli, run_dir, _ = _stop_during_validation(tmp_path, whole_group=True)
    _assert_stopped_and_resumes(cli, run_dir, tmp_path)


def test_sigterm_to_the_main_process_abandons_the_validation_pass_at_once(tmp_path: Path) -> None:
    cli, run_dir, took = _stop_during_validation(tmp_path, whole_group=False)
    assert took < FULL_PASS_S / 3, f"{took:.1f} s from SIGTERM to exit: the validation pass was not abandoned"
    _assert_stopped_and_resumes(cli, run_dir, tmp_path)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_hanging_sample_with_a_dataloader_timeout_exits_1_naming_it(tmp_path: Path) -> None:
    """Sample 200 never returns (batch 3 of 64, in order); the loader's ``timeout=2`` fires, and the
    diagnosis that reads the batch again in the main process stops after 2 s too."""
    run_dir = tmp_path / "run"
    args = [
        "+experiment=mlp",
        "~param_scheduler",
        f"custom_imports=[examples.seed_mlp,{PLUGINS}]",
        f"train_dataloader.dataset.type={PLUGINS}.Hangs",
        "train_dataloader.dataset.size=256",
        "+train_dataloader.dataset.index=200",
        "train_dataloader.sampler.shuffle=false",
        "train_dataloader.num_workers=2",
        "+train_dataloader.timeout=2",
        "val_dataloader.num_workers=0",
        "train_cfg.max_epochs=1",
        "train_cfg.val_begin=1",
        f"hydra.run.dir={run_dir}",
    ]
    cli = BackgroundCli(args, _env(tmp_path), tmp_path / "logs", own_session=True)
    try:
        code = cli.wait(timeout=90)
        err = cli.stderr_path.read_text(encoding="utf-8")
        assert code == 1, cli.explain()
        assert "Traceback" not in err, cli.explain()
        assert "train_dataloader (Hangs): loading batch 3 timed out (DataLoader timed out after 2.0 seconds)" in err
        assert "Hangs[200] did not return within 2 s" in err, cli.explain()
        assert (run_dir / "error_report.txt").read_text(encoding="utf-8").strip() in err
        deadline = time.monotonic() + 5
        while _group_alive(cli.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(cli.process.pid), "a dataloader worker outlived the run"
    finally:
        if _group_alive(cli.process.pid):
            os.killpg(cli.process.pid, signal.SIGKILL)
