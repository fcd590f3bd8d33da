"""FSDP2 (``model_wrapper_cfg: {type: FSDP2}``) on the CPU with gloo: real ``torchrun`` process pairs
on tiny data, and its sharded checkpoints (``torch.distributed.checkpoint``) read back.

One 2-rank FSDP2 run (the module fixture) is compared with one process at twice the batch; a second
2-rank run resumes from its first epoch's sharded checkpoint; one process resumes from it too (2
ranks -> 1). The pieces that need no second process run in-process, on a one-rank gloo group.
"""

from __future__ import annotations

import json
import pickle
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch._C._distributed_c10d import FileStore

from examples.seed_mlp import MyAwesomeModel, MyDataset
from tests.dist_support import SMALL
from tests.helpers import REPO, cli_env, explain, read_checkpoint, run_cli, seed_config
from tests.test_distributed import TORCHRUN, assert_close, torchrun
from typedrunner.config import RunnerConfig
from typedrunner.errors import CheckpointError, ConfigError
from typedrunner.parts.sharded_checkpoint import load_full, read_metadata
from typedrunner.runner import Runner

README_FSDP = (
    "torchrun --standalone --nproc-per-node=2 -m typedrunner +experiment=mlp launcher=pytorch "
    "model_wrapper_cfg.type=FSDP2 'model_wrapper_cfg.shard_classes=[Linear]'"
)
"""The README's FSDP2 command ("Training on several GPUs and nodes"); the fixture runs it on small data."""
FSDP = shlex.split(README_FSDP)[7:]
"""The README command's FSDP2 settings (after ``launcher=pytorch``)."""
ODD_VAL = "val_dataloader.dataset.size=65"
"""65 validation points: rank 0 evaluates 33, rank 1 32 (its last batch is shorter, or missing)."""
TWO_EPOCHS = [*SMALL, ODD_VAL, "train_cfg.max_epochs=2", "optim_wrapper.accumulative_counts=2"]
"""The seed on 256 points, 2 epochs; the optimizer steps every 2 iterations (FSDP2 skips the
gradient reduce-scatter on the accumulating ones)."""


def test_the_readme_gives_the_command_the_fixture_runs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert README_FSDP in readme
    assert shlex.split(README_FSDP)[:7] == [
        "torchrun",
        *TORCHRUN[1:],
        "-m",
        "typedrunner",
        "+experiment=mlp",
        "launcher=pytorch",
    ]
    assert FSDP == ["model_wrapper_cfg.type=FSDP2", "model_wrapper_cfg.shard_classes=[Linear]"]


def sharded_weights(path: Path) -> dict[str, torch.Tensor]:
    """The model weights of a sharded checkpoint directory, gathered whole."""
    state = load_full(path)["state_dict"]
    assert isinstance(state, dict)
    return state


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The README's FSDP2 command under torchrun: 2 ranks x batch 32, 2 epochs; its run directory."""
    run = tmp_path_factory.mktemp("fsdp") / "run"
    env = cli_env()
    result = torchrun(
        [
            *TWO_EPOCHS,
            "launcher=pytorch",
            *FSDP,
            "train_dataloader.batch_size=32",
            "default_hooks.checkpoint.save_best=accuracy",
            "default_hooks.checkpoint.published_keys=[meta,state_dict]",
            f"hydra.run.dir={run}",
        ],
        env,
    )
    assert result.returncode == 0, explain(result)
    return run, result


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same training in one process (no launcher) with twice the batch; its run directory."""
    work = tmp_path_factory.mktemp("one") / "run"
    Runner(seed_config(REPO, work, "train_dataloader.batch_size=64", base=TWO_EPOCHS)).train()
    return work


def test_fsdp2_over_two_ranks_trains_as_one_process_with_twice_the_batch(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]], one_process: Path
) -> None:
    """Same weights after 8 iterations (4 optimizer steps), and the same accuracy at each epoch."""
    run, _ = fsdp_run
    assert_close(sharded_weights(run / "epoch_2.dcp"), read_checkpoint(one_process / "epoch_2.pth")["state_dict"])
    fsdp_summary = json.loads((run / "summary.json").read_text())
    one_summary = json.loads((one_process / "summary.json").read_text())
    assert fsdp_summary["iters"] == one_summary["iters"] == 8
    assert fsdp_summary["final_metrics"]["accuracy"] == pytest.approx(one_summary["final_metrics"]["accuracy"])


def test_every_rank_writes_its_shard_into_one_checkpoint_directory(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run, result = fsdp_run
    assert sorted(p.name for p in run.iterdir() if "epoch" in p.name) == [
        "epoch_1.dcp",
        "epoch_2.dcp",
        "epoch_2_published.pth",
    ]
    best = load_full(run / "best_accuracy.dcp", weights=False)["meta"]  # the best one, a directory too
    summary = json.loads((run / "summary.json").read_text())
    assert best["best_metric"] == "accuracy" and best["best_score"] == summary["best_metrics"]["accuracy"]
    assert sorted(p.name for p in (run / "epoch_2.dcp").iterdir()) == [
        ".metadata",
        "__0_0.distcp",
        "__1_0.distcp",
        "extra.pth",
    ]
    assert (run / "last_checkpoint").read_text() == "epoch_2.dcp"
    assert not list(run.glob(".*tmp")) and not list(run.glob(".*.old"))
    # the tensors are sharded: each rank's file holds about half of them
    sizes = [(run / "epoch_2.dcp" / f"__{r}_0.distcp").stat().st_size for r in (0, 1)]
    assert min(sizes) > 0.3 * sum(sizes), sizes
    extra = read_checkpoint(run / "epoch_2.dcp" / "extra.pth")  # weights_only
    assert extra["meta"]["epoch"] == 2 and extra["meta"]["iter"] == 8
    assert {"rng", "hooks", "param_schedulers", "optimizer"} <= extra.keys()
    assert "state_dict" not in extra and "state" not in extra["optimizer"]  # those are DCP's
    assert result.stdout.count("Epoch(val) [2]") == 1, result.stdout  # rank 0 logs
    published = read_checkpoint(run / "epoch_2_published.pth")  # one file, the weights gathered whole
    assert sorted(published) == ["meta", "state_dict"]
    assert_close(published["state_dict"], sharded_weights(run / "epoch_2.dcp"))


def test_resume_from_a_sharded_checkpoint_continues_exactly_and_prunes_directories(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Stop after epoch 1 (its checkpoint copied into a new run directory), resume on 2 ranks for
    epoch 2: the uninterrupted run's weights and optimizer state. max_keep_ckpts=1 removes the
    epoch_1.dcp directory once epoch_2.dcp is written."""
    run, _ = fsdp_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(run / "epoch_1.dcp", resumed / "epoch_1.dcp")
    (resumed / "last_checkpoint").write_text("epoch_1.dcp")
    result = torchrun(
        [
            *TWO_EPOCHS,
            "launcher=pytorch",
            *FSDP,
            "train_dataloader.batch_size=32",
            "resume=true",
            "default_hooks.checkpoint.max_keep_ckpts=1",
            f"hydra.run.dir={resumed}",
        ],
        subprocess_env,
    )
    assert result.returncode == 0, explain(result)
    assert "resumed" in result.stdout and "checkpoint=" in result.stdout, result.stdout
    assert sorted(p.name for p in resumed.glob("epoch_*")) == ["epoch_2.dcp"]
    mine, theirs = load_full(resumed / "epoch_2.dcp"), load_full(run / "epoch_2.dcp")
    for key, value in theirs["state_dict"].items():
        assert torch.equal(mine["state_dict"][key], value), key
    for name, state in theirs["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(mine["optimizer"]["state"][name][key], value), (name, key)


def test_two_fsdp2_ranks_resume_a_one_process_pth_checkpoint(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]],
    one_process: Path,
    tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    """1 process -> 2 FSDP2 ranks: a .pth's whole tensors (model and optimizer), each rank keeping its
    shard; epoch 2 then gives the 2-rank run's weights."""
    run, _ = fsdp_run
    result = torchrun(
        [
            *TWO_EPOCHS,
            "launcher=pytorch",
            *FSDP,
            "train_dataloader.batch_size=32",
            "resume=true",
            f"load_from={one_process / 'epoch_1.pth'}",
            f"hydra.run.dir={tmp_path}",
        ],
        subprocess_env,
    )
    assert result.returncode == 0, explain(result)
    assert_close(sharded_weights(tmp_path / "epoch_2.dcp"), sharded_weights(run / "epoch_2.dcp"))


def test_one_process_resumes_a_two_rank_sharded_checkpoint(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """2 ranks -> 1 (launcher none, batch 64): DCP reshards on load; epoch 2 gives the 2-rank weights."""
    run, _ = fsdp_run
    cfg = seed_config(
        REPO,
        tmp_path / "one",
        "train_dataloader.batch_size=64",
        "resume=true",
        f"load_from={run / 'epoch_1.dcp'}",
        *FSDP,  # under launcher none: a warning, and an unsharded model
        base=TWO_EPOCHS,
    )
    runner = Runner.checked(cfg)
    assert any(w.path == "model_wrapper_cfg.type" for w in runner.config_warnings)
    assert runner.epoch == 1 and runner.iter == 4
    runner.train()
    assert_close(read_checkpoint(tmp_path / "one" / "epoch_2.pth")["state_dict"], sharded_weights(run / "epoch_2.dcp"))


def test_load_from_a_sharded_checkpoint_loads_its_weights(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    run, _ = fsdp_run
    runner = Runner(seed_config(REPO, tmp_path / "w", f"load_from={run / 'epoch_2.dcp'}", base=TWO_EPOCHS))
    assert_close(dict(runner.model.state_dict()), sharded_weights(run / "epoch_2.dcp"))


# ----------------------------------------------------------------------------------------------
# A sharded checkpoint is data: its pickle metadata is read with a restricted unpickler
# ----------------------------------------------------------------------------------------------
class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran",))


def test_metadata_that_names_code_is_refused_unrun(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = fsdp_run
    crafted = tmp_path / "epoch_2.dcp"
    shutil.copytree(run / "epoch_2.dcp", crafted)
    (crafted / ".metadata").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(CheckpointError, match=r"builtins\.print is not part of a checkpoint's metadata"):
        read_metadata(crafted)
    assert "code ran" not in capsys.readouterr().out


def test_metadata_that_names_a_file_outside_the_checkpoint_is_refused(
    fsdp_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    run, _ = fsdp_run
    crafted = tmp_path / "epoch_2.dcp"
    shutil.copytree(run / "epoch_2.dcp", crafted)
    metadata = read_metadata(crafted)
    for info in metadata.storage_data.values():
        info.relative_path = "../../elsewhere.distcp"
    (crafted / ".metadata").write_bytes(pickle.dumps(metadata))
    with pytest.raises(CheckpointError, match="not a file inside it"):
        read_metadata(crafted)
    with pytest.raises(ConfigError, match="not a file inside it"):
        Runner(seed_config(REPO, tmp_path / "w", "resume=true", f"load_from={crafted}", base=TWO_EPOCHS))


# ----------------------------------------------------------------------------------------------
# Configuration: refused with exit 2 and the path; what needs no second rank, on a one-rank group
# ----------------------------------------------------------------------------------------------
def test_a_bad_fsdp2_setting_exits_2_naming_its_path(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = run_cli(
        [
            *SMALL,
            "model_wrapper_cfg.type=FSDP2",
            "model_wrapper_cfg.mixed_precision.param_dtype=float8",
            "model_wrapper_cfg.find_unused_parameters=true",
            f"hydra.run.dir={tmp_path}",
        ],
        subprocess_env,
    )
    assert result.returncode == 2, explain(result)
    report = result.stdout + result.stderr
    assert "model_wrapper_cfg.mixed_precision.param_dtype: Input should be 'float32', 'float16' or 'bfloat16'" in report
    assert "model_wrapper_cfg.find_unused_parameters: unknown key" in report
    assert "Traceback" not in report


@pytest.fixture
def one_rank(tmp_path: Path) -> Iterator[None]:
    """A one-rank gloo process group (FSDP2 needs one)."""
    dist.init_process_group("gloo", store=FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def fsdp_cfg(**wrapper: object) -> RunnerConfig:
    return RunnerConfig.from_dict(
        {"model": {"type": "examples.seed_mlp.MyAwesomeModel", "layers": 2}, "model_wrapper_cfg": wrapper}
    )


def test_a_shard_class_or_name_that_selects_nothing_is_refused(one_rank: None) -> None:
    from typedrunner.engine.fsdp import shard_model

    for wrapper, path in (
        ({"type": "FSDP2", "shard_classes": ["Linaer"]}, "model_wrapper_cfg.shard_classes[0]"),
        ({"type": "FSDP2", "shard_names": ["blocks.*"]}, "model_wrapper_cfg.shard_names[0]"),
    ):
        cfg = fsdp_cfg(**wrapper)
        with pytest.raises(ConfigError) as caught:
            shard_model(MyAwesomeModel(layers=2), cfg, cfg.model_wrapper_cfg)  # type: ignore[arg-type]
        assert [p.path for p in caught.value.problems] == [path]
    assert "Linear" in str(caught.value) or "blocks" in str(caught.value)


def test_fsdp2_shards_the_chosen_submodules_with_the_mixed_precision_policy(one_rank: None) -> None:
    from torch.distributed.fsdp import FSDPModule

    from typedrunner.engine.fsdp import shard_model

    cfg = fsdp_cfg(
        type="FSDP2", shard_names=["layers.*"], mixed_precision={"param_dtype": "bfloat16", "reduce_dtype": "float32"}
    )
    model = MyAwesomeModel(layers=2)
    shard_model(model, cfg, cfg.model_wrapper_cfg)  # type: ignore[arg-type]
    units = [name for name, m in model.named_modules() if isinstance(m, FSDPModule)]
    assert units == ["", "layers.0"], units
    data = MyDataset(is_train=True, size=8)
    out = model(data.data, data.labels, mode="tensor")
    assert out.dtype == torch.bfloat16  # computed in param_dtype


def test_accumulating_steps_skip_fsdp2s_gradient_reduction(one_rank: None) -> None:
    """accumulative_counts=2: after an accumulating step the shards hold no gradient (FSDP2 kept it
    unreduced); after the step that syncs, they do, and the optimizer stepped."""
    from typedrunner.engine.fsdp import shard_model
    from typedrunner.parts.optim import OptimWrapper

    cfg = fsdp_cfg(type="FSDP2")
    model = MyAwesomeModel(layers=2)
    shard_model(model, cfg, cfg.model_wrapper_cfg)  # type: ignore[arg-type]
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
    wrapper.max_calls = 4
    data = MyDataset(is_train=True, size=8)
    first = next(iter(model.parameters()))
    before = first.full_tensor().clone()  # type: ignore[attr-defined]
    with wrapper.optim_context(model):
        loss = model(data.data, data.labels, mode="loss")["loss"]
    wrapper.update_params(loss)  # accumulates: backward, no step
    assert first.grad is None  # kept unsharded and unreduced by FSDP2 (with sync on, the shard gets it)
    assert torch.equal(first.full_tensor(), before)  # type: ignore[attr-defined]
    with wrapper.optim_context(model):
        loss = model(data.data, data.labels, mode="loss")["loss"]
    wrapper.update_params(loss)  # reduces the two steps' gradients, steps
    assert not torch.equal(first.full_tensor(), before)  # type: ignore[attr-defined]


def test_amp_is_refused_with_fsdp2(one_rank: None) -> None:
    from typedrunner.engine.fsdp import shard_model

    cfg = RunnerConfig.from_dict(
        {
            "model": {"type": "examples.seed_mlp.MyAwesomeModel", "layers": 2},
            "model_wrapper_cfg": {"type": "FSDP2"},
            "optim_wrapper": {"type": "AmpOptimWrapper", "optimizer": {"type": "SGD", "lr": 0.1}},
        }
    )
    with pytest.raises(ConfigError) as caught:
        shard_model(MyAwesomeModel(layers=2), cfg, cfg.model_wrapper_cfg)  # type: ignore[arg-type]
    assert [p.path for p in caught.value.problems] == ["optim_wrapper.type"]
    assert "model_wrapper_cfg.mixed_precision" in str(caught.value)


def test_directories_of_interrupted_sharded_writes_are_removed_at_the_next_start(tmp_path: Path) -> None:
    """What a kill leaves: ``.epoch_3.dcp.tmp/`` (half written) goes; ``.best_acc.dcp.old/`` goes only
    when ``best_acc.dcp`` is in place (else it is the one copy left)."""
    from typedrunner.parts.checkpoint import remove_stale_temporaries

    for name in (".epoch_3.dcp.tmp", ".best_acc.dcp.old", "best_acc.dcp", ".best_loss.dcp.old", "epoch_2.dcp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__0_0.distcp").write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".best_acc.dcp.old", ".epoch_3.dcp.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best_loss.dcp.old", "best_acc.dcp", "epoch_2.dcp"]
