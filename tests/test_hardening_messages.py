"""Issue 13, exit codes and messages as promised: every composition failure exits 2 with the report
(item 10); the checkpoint directory and file names are checked before training (item 12); counts
refuse booleans, AMP on a CPU says so, a metric that does not fit the model's predictions names
both, and no message shows doubled braces (item 14)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, SMALL, assert_nothing_trained, explain, find, recording_runner, run_cli, seed_config
from typedrunner import lazy
from typedrunner.config import SGD, CheckpointHook, DefaultHooks, Evaluator, OptimWrapper, RunnerConfig
from typedrunner.errors import ConfigError, ContractError
from typedrunner.runner import Runner
from typedrunner.testing import ToyMetric, as_mapping, toy_config

CHECK = [*SMALL, "check=true"]


def assert_invalid_configuration(result: subprocess.CompletedProcess[str], path: str, *fragments: str) -> str:
    """Exit 2, the report on stderr (no traceback), and a line for ``path`` holding ``fragments``."""
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert result.stderr.startswith("invalid configuration: 1 error"), explain(result)
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith(f"{path}:")]
    assert lines, explain(result)
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]


# ----------------------------------------------------------------------------------------------
# Item 10: composition failures exit 2 with the report, never 1 with a traceback
# ----------------------------------------------------------------------------------------------
DEEP = "+model.extra=" + "{a:" * 200 + "1" + "}" * 200

COMPOSITION_CASES = [
    pytest.param(
        ["experiment_name=${nope}"],
        ("experiment_name", "Interpolation key 'nope' not found", "command-line override"),
        id="unresolved-interpolation",
    ),
    pytest.param(
        ["train_cfg=[1,2]"],
        ("train_cfg", "expected a mapping of keys, got a list", "command-line override 'train_cfg=[1,2]'"),
        id="list-for-mapping",
    ),
    pytest.param(["+model=junk"], ("model", "no option 'junk' in the config group 'model'"), id="junk-group-option"),
    pytest.param([DEEP], ("model.extra", "nested too deeply"), id="200-deep-nesting"),
]


@pytest.mark.parametrize(("overrides", "expected"), COMPOSITION_CASES)
def test_composition_failure_exits_2_with_the_report(
    tmp_path: Path, subprocess_env: dict[str, str], overrides: list[str], expected: tuple[str, ...]
) -> None:
    path, *fragments = expected
    env = {**subprocess_env, "TYPEDRUNNER_CONF": str(REPO / "conf")}
    result = run_cli([*CHECK, *overrides], env, cwd=tmp_path)  # Hydra's default run dir: under tmp_path
    assert_invalid_configuration(result, path, *fragments)
    assert not (tmp_path / "outputs").exists()  # composition failed: no run directory


def test_unset_environment_variable_exits_2_with_the_report_in_the_run_dir(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The run directory exists (hydra.run.dir needs no interpolation): the report goes there too.
    The source annotator must not resolve the override that holds the interpolation."""
    run_dir = tmp_path / "run"
    subprocess_env.pop("TYPEDRUNNER_TEST_UNSET", None)
    args = [*CHECK, "experiment_name=${oc.env:TYPEDRUNNER_TEST_UNSET}", f"hydra.run.dir={run_dir}"]
    result = run_cli(args, subprocess_env)
    line = assert_invalid_configuration(result, "experiment_name", "TYPEDRUNNER_TEST_UNSET", "command-line override")
    assert line in (run_dir / "error_report.txt").read_text(encoding="utf-8")


def test_yaml_error_in_a_config_group_exits_2_naming_the_file(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    (conf / "model" / "broken.yaml").write_text("type: MyAwesomeModel\nlayers: [2, 4\nactivation: : relu\n")
    result = run_cli([*CHECK, "model=broken"], {**subprocess_env, "TYPEDRUNNER_CONF": str(conf)}, cwd=tmp_path)
    assert_invalid_configuration(result, "<config>", "YAML syntax error", "broken.yaml, line 3")


# ----------------------------------------------------------------------------------------------
# Item 12: the checkpoint directory and file names, checked before training
# ----------------------------------------------------------------------------------------------
def checkpoint_config(work_dir: Path, **hook: Any) -> RunnerConfig:
    return toy_config(work_dir, default_hooks=DefaultHooks(checkpoint=CheckpointHook(**hook)))


@pytest.mark.parametrize("under_file", [True, False], ids=["under-a-file", "is-a-file"])
def test_checkpoint_out_dir_that_cannot_be_a_directory_is_refused_before_training(
    tmp_path: Path, under_file: bool
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    runner, hook = recording_runner(
        checkpoint_config(tmp_path / "run", out_dir=str(blocker / "ckpts" if under_file else blocker))
    )
    with pytest.raises(ContractError) as info:
        runner.train()
    problem = find(list(info.value.problems), "default_hooks.checkpoint.out_dir", "not a directory")
    assert str(blocker) in problem.message
    assert_nothing_trained(tmp_path, hook)


def test_checkpoint_out_dir_that_can_be_created_trains_there(tmp_path: Path) -> None:
    out_dir = tmp_path / "elsewhere" / "ckpts"
    Runner(checkpoint_config(tmp_path / "run", out_dir=str(out_dir))).train()
    assert sorted(p.name for p in out_dir.glob("*.pth")) == ["epoch_1.pth", "epoch_2.pth"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{}{}", "must format with one integer"),
        ("ckpt_{name}_{}.pth", "must format with one integer"),
        ("ckpt_{}.pth{", "must format with one integer"),
        ("{{}}_{{}}", "same name"),
    ],
)
def test_filename_tmpl_that_does_not_format_is_refused_at_validation(
    tmp_path: Path, template: str, fragment: str
) -> None:
    data = {**as_mapping(toy_config(tmp_path)), "default_hooks": {"checkpoint": {"filename_tmpl": template}}}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    find(list(info.value.problems), "default_hooks.checkpoint.filename_tmpl", fragment)


def test_filename_tmpl_that_does_not_format_exits_2_on_the_command_line(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_dir = tmp_path / "run"
    args = [
        *SMALL,
        "train_cfg.max_epochs=2",
        "+default_hooks.checkpoint.filename_tmpl='{}{}'",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, subprocess_env)
    assert_invalid_configuration(result, "default_hooks.checkpoint.filename_tmpl", "one integer")
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "error_report.txt"]


def test_checkpoint_names_longer_than_the_file_system_allows_are_refused_before_training(tmp_path: Path) -> None:
    runner, hook = recording_runner(checkpoint_config(tmp_path, filename_tmpl="x" * 240 + "_{}.pth"))
    with pytest.raises(ContractError) as info:
        runner.train()
    find(list(info.value.problems), "default_hooks.checkpoint.filename_tmpl", "exceeds the file system's limit")
    assert_nothing_trained(tmp_path, hook)
    Runner.checked(checkpoint_config(tmp_path, filename_tmpl="x" * 200 + "_{}.pth"))  # fits: no problem


# ----------------------------------------------------------------------------------------------
# Item 14: strict counts, AMP on a CPU, both sides of a predict/process mismatch, braces
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("train_cfg.max_epochs=true", "train_cfg.max_epochs"),
        ("train_cfg.val_begin=true", "train_cfg.val_begin"),
        ("train_cfg.val_interval=false", "train_cfg.val_interval"),
        ("train_dataloader.batch_size=true", "train_dataloader.batch_size"),
        ("train_dataloader.num_workers=true", "train_dataloader.num_workers"),
        ("default_hooks.checkpoint.interval=true", "default_hooks.checkpoint.interval"),
        ("param_scheduler.milestones=[true,8]", "param_scheduler.milestones"),
    ],
)
def test_a_boolean_is_not_a_count(repo_root: Path, tmp_path: Path, override: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        seed_config(repo_root, tmp_path, override)
    find(list(info.value.problems), path, "expected an integer, not a boolean")


def test_integers_from_yaml_and_the_command_line_still_validate(repo_root: Path, tmp_path: Path) -> None:
    cfg = seed_config(repo_root, tmp_path, "train_cfg.max_epochs=3", "train_dataloader.batch_size=32")
    assert cfg.train_cfg is not None and cfg.train_cfg.length == 3
    assert cfg.train_dataloader is not None and getattr(cfg.train_dataloader, "batch_size", None) == 32
    iter_based = RunnerConfig.from_dict(
        {**cfg.model_dump(mode="json"), "train_cfg": {"by_epoch": False, "max_iters": 8}}
    )
    assert iter_based.train_cfg is not None and iter_based.train_cfg.length == 8


def test_amp_on_a_cpu_is_a_warning_in_the_report_and_the_log(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, max_epochs=1, optim_wrapper=OptimWrapper(type="AmpOptimWrapper", optimizer=SGD(lr=0.1)))
    runner = Runner(cfg)
    warning = find(runner.check(), "optim_wrapper.type", "bfloat16 autocast", severity="warning")
    runner.train()
    assert warning.message in (tmp_path / "run.log").read_text(encoding="utf-8")
    with pytest.raises(ContractError):
        Runner.checked(cfg, strict=True)
    meant = cfg.model_copy(
        update={"optim_wrapper": OptimWrapper(type="AmpOptimWrapper", dtype="bfloat16", optimizer=SGD(lr=0.1))}
    )
    assert not [p for p in Runner(meant).check() if p.path.startswith("optim_wrapper")]


class DictOutputMetric(ToyMetric):
    """Written for a model whose predictions are a dict; ToyModel returns a tuple."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append((len(data_samples["labels"]), int(data_samples["correct"])))


def test_predict_output_that_does_not_fit_the_metric_names_both_sides(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, val_evaluator=Evaluator(metrics=[lazy(DictOutputMetric)])))
    problem = find(runner.check(), "val_evaluator.metrics[0]", "DictOutputMetric.process raised TypeError")
    assert (
        "ToyModel.forward(mode='predict') returned: tuple(Tensor[32, 2] float32, Tensor[32] int64)" in problem.message
    )


def test_expected_a_mapping_shows_single_braces() -> None:
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict({"model": 3})
    message = find(list(info.value.problems), "model", "expected a mapping").message
    assert "(e.g. {type: Name, ...})" in message and "{{" not in message


# ----------------------------------------------------------------------------------------------
# A constructor's own check of its arguments is a config problem, not a traceback
# ----------------------------------------------------------------------------------------------
def test_an_optimizer_refusing_its_arguments_exits_2_at_its_path(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """A generic optimizer's schema is its signature: torch itself refuses ``lr: -1`` when it is built.
    That is reported at ``optim_wrapper.optimizer`` with torch's reason, exit 2, nothing trained."""
    overrides = ["optim_wrapper.optimizer.type=RMSprop", "optim_wrapper.optimizer.lr=-1", f"hydra.run.dir={tmp_path}"]
    result = run_cli([*CHECK, *overrides], subprocess_env)
    assert_invalid_configuration(
        result, "optim_wrapper.optimizer", "RMSprop refused its arguments", "Invalid learning rate: -1"
    )
    assert not list(tmp_path.glob("*.pth"))
