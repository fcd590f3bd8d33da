"""The visualizer: TensorBoard, MLflow, W&B and MMEngine's local files, written by a real sweep of the
seed through the command line and read back with each library's own reader.

The backends' libraries are optional extras (``pip install -e ".[dev]"`` installs them); the read-back
test is skipped, and says so, where one is missing. Refusals need no extra.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FAST, REPO, SelfLoggingModel, explain, run_cli
from typedrunner import lazy
from typedrunner.config import RunnerConfig, Visualizer
from typedrunner.errors import ConfigError
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

ALL_BACKENDS = (
    "visualizer.vis_backends=[{type: LocalVisBackend}, {type: TensorboardVisBackend},"
    " {type: MLflowVisBackend}, {type: WandbVisBackend}]"
)
BOOKKEEPING = {"mode", "epoch", "iter", "step", "time_utc"}


def logged(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``scalars.jsonl`` as ``{"<mode>/<key>": [(step, value), ...]}``: what every backend must hold."""
    out: dict[str, list[tuple[int, float]]] = {}
    for line in (run_dir / "scalars.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key, value in record.items():
            if key not in BOOKKEEPING:
                out.setdefault(f"{record['mode']}/{key}", []).append((record["step"], value))
    return out


def key_of(item: Any) -> str:
    """An item's key (wandb stores ``a/b`` keys as ``nested_key``)."""
    return str(item.key or "/".join(item.nested_key))


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of an offline W&B run file (LevelDB's log format: 32 KiB blocks of checksummed
    chunks after a 7-byte ``:W&B`` header), parsed with wandb's own protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2

    protos: Any = wandb_internal_pb2  # generated protobuf code: no attributes for type checkers

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = protos.Record()
            record.ParseFromString(pending)
            yield record


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two jobs of the seed (one epoch each, two learning rates) with all four backends and a user
    hook that logs a value of its own."""
    for module in ("tensorboard", "mlflow", "wandb"):
        pytest.importorskip(module, reason=f"the {module} extra is not installed")
    sweep_dir = tmp_path_factory.mktemp("vis") / "sweep"
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    result = run_cli(
        [
            "-m",
            "+experiment=mlp",
            *FAST,
            "train_dataloader.dataset.size=640",
            "train_cfg.max_epochs=2",
            "train_cfg.val_begin=1",
            "optim_wrapper.optimizer.lr=0.001,0.01",
            "visualizer=tensorboard",
            ALL_BACKENDS,
            "+custom_hooks=[{type: tests.helpers.LogOwnScalar}]",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        env,
    )
    assert result.returncode == 0, explain(result)
    return sweep_dir


def test_tensorboard_event_files_hold_every_logged_scalar(sweep: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    for job, lr in (("0", 0.001), ("1", 0.01)):
        expected = logged(sweep / job)
        assert "custom/epoch_squared" in expected and "val/accuracy" in expected and "train/loss" in expected
        events = EventAccumulator(str(sweep / job / "tensorboard"))
        events.Reload()
        scalar_tags = set(events.Tags()["scalars"])
        assert scalar_tags - {"final/accuracy", "best/accuracy"} == set(expected)
        for tag, points in expected.items():
            got = [(e.step, e.value) for e in events.Scalars(tag)]
            assert [s for s, _ in got] == [s for s, _ in points], tag
            assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6), tag
        final = json.loads((sweep / job / "summary.json").read_text())["final_metrics"]["accuracy"]
        assert events.Scalars("final/accuracy")[-1].value == pytest.approx(final, rel=1e-6)
        # the HPARAMS tab: this job's config, the swept learning rate among it
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        assert hparams["optim_wrapper.optimizer.lr"].number_value == pytest.approx(lr)
        assert hparams["train_cfg.max_epochs"].number_value == 2


def test_mlflow_runs_of_a_sweep_share_one_experiment(sweep: Path) -> None:
    with warnings.catch_warnings():  # sqlalchemy's deprecations inside MLflow's store, not ours
        warnings.simplefilter("ignore")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{sweep / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("mlp")
        assert experiment is not None
        assert experiment.artifact_location == (sweep / "mlartifacts").resolve().as_uri()  # inside the sweep
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 2
        by_lr = {run.data.params["optim_wrapper.optimizer.lr"]: run for run in runs}
        assert set(by_lr) == {"0.001", "0.01"}
        for job, lr in (("0", "0.001"), ("1", "0.01")):
            run = by_lr[lr]
            assert run.info.status == "FINISHED"
            assert run.data.params["train_cfg.max_epochs"] == "2"
            assert f"optim_wrapper.optimizer.lr={lr}" in run.info.run_name
            for tag, points in logged(sweep / job).items():
                history = client.get_metric_history(run.info.run_id, tag)
                assert [m.step for m in history] == [s for s, _ in points], tag
                assert [m.value for m in history] == pytest.approx([v for _, v in points]), tag
            final = json.loads((sweep / job / "summary.json").read_text())["final_metrics"]["accuracy"]
            assert run.data.metrics["final/accuracy"] == pytest.approx(final)


def test_wandb_offline_runs_hold_history_config_and_summary(sweep: Path) -> None:
    groups = set()
    for job in ("0", "1"):
        (path,) = (sweep / job / "wandb").glob("offline-run-*/run-*.wandb")
        history: dict[str, list[tuple[int, float]]] = {}
        summary: dict[str, Any] = {}
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                groups.add(record.run.run_group)
                config = {key_of(item): json.loads(item.value_json) for item in record.run.config.update}
                assert config["train_cfg"]["max_epochs"] == 2
                assert record.run.project == "mlp"
            elif kind == "history":
                row = {key_of(item): json.loads(item.value_json) for item in record.history.item}
                for key, value in row.items():
                    if not key.startswith("_"):
                        history.setdefault(key, []).append((row["_step"], value))
            elif kind == "summary":
                summary.update({key_of(item): json.loads(item.value_json) for item in record.summary.update})
        expected = logged(sweep / job)
        assert set(history) == set(expected)
        for tag, points in expected.items():
            assert [s for s, _ in history[tag]] == [s for s, _ in points], tag
            assert [v for _, v in history[tag]] == pytest.approx([v for _, v in points]), tag
        final = json.loads((sweep / job / "summary.json").read_text())["final_metrics"]["accuracy"]
        assert summary["final/accuracy"] == pytest.approx(final)
    assert groups == {f"mlp/{sweep.name}"}  # one group: the sweep


def test_local_backend_writes_mmengine_vis_data(sweep: Path) -> None:
    lines = [json.loads(x) for x in (sweep / "0" / "vis_data" / "scalars.json").read_text().splitlines()]
    got: dict[str, list[tuple[int, float]]] = {}
    for line in lines:
        for key, value in line.items():
            if key != "step" and not key.startswith(("final/", "best/")):
                got.setdefault(key, []).append((line["step"], value))
    assert got == logged(sweep / "0")
    config = json.loads((sweep / "0" / "vis_data" / "config.json").read_text())
    assert config["optim_wrapper"]["optimizer"]["lr"] == 0.001


# ----------------------------------------------------------------------------------------------
# Refusals: at validation, before anything is built (no extra needed)
# ----------------------------------------------------------------------------------------------
def test_backend_without_its_library_exits_2_naming_the_extra(tmp_path: Path) -> None:
    """The library is hidden from this process (``sys.modules[name] = None`` makes it unimportable),
    as if the extra were not installed: the run is refused at validation, exit 2, nothing trained."""
    code = (
        "import sys; sys.modules['tensorboard'] = None; sys.modules['mlflow'] = None; "
        "from typedrunner.app.cli import main; main()"
    )
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", code, "+experiment=mlp", *FAST, "visualizer=mlflow", f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=dict(
            os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, explain(result)
    out = result.stdout + result.stderr
    assert "visualizer.vis_backends[1]: MLflowVisBackend needs the mlflow package" in out
    assert "pip install 'typedrunner[mlflow]'" in out
    assert "Traceback" not in out
    assert not list(run_dir.glob("*.pth"))


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        (
            [{"type": "TensorbordVisBackend"}],
            "unknown backend 'TensorbordVisBackend'; did you mean TensorboardVisBackend?",
        ),
        ([{"type": "LocalVisBackend", "save_dir": "../elsewhere"}], "must be a relative path inside the run directory"),
        ([{"type": "LocalVisBackend"}, {"type": "LocalVisBackend"}], "LocalVisBackend given twice"),
        ([{"type": "LocalVisBackend", "savedir": "x"}], "unknown key; did you mean save_dir?"),
    ],
)
def test_bad_visualizer_is_refused_with_its_path(backends: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        RunnerConfig.from_dict(
            {
                "model": {"type": "torch.nn.Linear", "in_features": 1, "out_features": 1},
                "visualizer": {"type": "Visualizer", "vis_backends": backends},
            }
        )
    assert [p for p in error.value.problems if p.path.startswith("visualizer.vis_backends") and message in p.message]


def test_visualizer_in_mmengine_spelling_validates() -> None:
    cfg = RunnerConfig.from_dict(
        {
            "model": {"type": "torch.nn.Linear", "in_features": 1, "out_features": 1},
            "visualizer": {"type": "Visualizer", "vis_backends": [{"type": "LocalVisBackend"}]},
        }
    )
    assert cfg.visualizer is not None and cfg.visualizer.vis_backends[0].type == "LocalVisBackend"


def test_a_model_logs_through_the_current_visualizer(tmp_path: Path) -> None:
    """MMEngine's ``Visualizer.get_current_instance()``: a model's own values reach ``scalars.jsonl``
    and the backends (here MMEngine's local files), once per training step."""
    cfg = toy_config(tmp_path, max_epochs=2, model=lazy(SelfLoggingModel, dim=4, hidden=8), visualizer=Visualizer())
    Runner(cfg).train()
    records = [json.loads(x) for x in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    from_model = [r for r in records if r["mode"] == "model"]
    assert [r["batch_size"] for r in from_model] == [16.0] * 8  # 2 epochs x 4 iterations
    local = [json.loads(x) for x in (tmp_path / "vis_data" / "scalars.json").read_text().splitlines()]
    assert [x["model/batch_size"] for x in local if "model/batch_size" in x] == [16.0] * 8
