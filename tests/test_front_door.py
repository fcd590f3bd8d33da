"""Issue 11, the front door: every schema field is in Hydra's tree with its default (no ``+``),
``--help`` from the schema, ``print_config``, sources of top-level keys, the ``debug`` presets.

Real Hydra composition (``compose``) and real ``python -m typedrunner`` subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from pydantic import BaseModel

from tests.helpers import REPO, explain, run_cli
from typedrunner.app.compose import compose, to_plain, to_runner_config
from typedrunner.app.help import schema_help
from typedrunner.app.tree import base_tree, prune_defaults
from typedrunner.config import Adam, CheckpointHook, IterBasedTrainLoop, RunnerConfig
from typedrunner.config.debug import DebugCfg
from typedrunner.errors import ConfigError
from typedrunner.runner import Runner

FAST = ["train_dataloader.num_workers=0", "val_dataloader.num_workers=0"]


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _select(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


# ----------------------------------------------------------------------------------------------
# Item 1: every schema field is in the tree, with the schema's own default
# ----------------------------------------------------------------------------------------------
def test_the_generated_tree_holds_every_field_with_the_schemas_default(tmp_path: Path) -> None:
    tree = base_tree()
    assert set(RunnerConfig.model_fields) <= set(tree)
    defaults = RunnerConfig(model={"type": "torch.nn.Linear", "in_features": 1, "out_features": 1}).model_dump(
        mode="json"
    )
    leaves = dict(_leaves({k: v for k, v in tree.items() if k in RunnerConfig.model_fields}))
    assert "default_hooks.checkpoint.max_keep_ckpts" in leaves and "randomness.seed" in leaves
    for path, value in leaves.items():
        if value is not None:  # null: an open part, or a default validation fills in
            assert _select(defaults, path) == value, path
    # and Hydra composes it: the seed experiment's tree holds every generated key
    composed = to_plain(compose(["+experiment=mlp", f"work_dir={tmp_path}"]))
    for path, _ in leaves.items():
        _select(composed, path)


def test_fields_override_without_plus(tmp_path: Path) -> None:
    overrides = [
        "+experiment=mlp",
        f"work_dir={tmp_path}",
        "randomness.seed=0",
        "optim_wrapper.optimizer.weight_decay=0.01",  # an open part: the optimizer's own argument
        "default_hooks.checkpoint.max_keep_ckpts=3",
        "train_cfg.dynamic_intervals=[[8,2]]",  # a loop field the experiment does not write
        "val_cfg.fp16=false",
        "env_cfg.dist_cfg.timeout=60",
        "model.layers=3",
    ]
    config, _ = to_runner_config(compose(overrides))
    assert config.randomness.seed == 0
    assert config.optim_wrapper is not None and not isinstance(config.optim_wrapper, dict)
    assert isinstance(config.optim_wrapper.optimizer, Adam) and config.optim_wrapper.optimizer.weight_decay == 0.01
    assert config.default_hooks.checkpoint is not None and config.default_hooks.checkpoint.max_keep_ckpts == 3
    assert config.train_cfg is not None and config.train_cfg.dynamic_intervals == [(8, 2)]
    assert config.env_cfg.dist_cfg.timeout == 60
    assert config.model.kwargs["layers"] == 3


def test_plus_on_a_field_that_now_has_a_default_still_sets_it(tmp_path: Path) -> None:
    """``+default_hooks.checkpoint.save_last=false`` was needed before the defaults were in the tree."""
    overrides = ["+experiment=mlp", f"work_dir={tmp_path}", "+default_hooks.checkpoint.save_last=false"]
    config, _ = to_runner_config(compose([*overrides, "+default_hooks.timer=null"]))
    assert config.default_hooks.checkpoint is not None and config.default_hooks.checkpoint.save_last is False
    assert config.default_hooks.timer is None  # a whole hook that held its defaults


def test_a_section_no_file_gives_is_given_by_its_override(tmp_path: Path) -> None:
    config, _ = to_runner_config(
        compose(["+experiment=mlp", f"work_dir={tmp_path}", "test_cfg.fp16=false", "load_from=weights.pth"])
    )
    assert config.test_cfg is not None and config.test_cfg.fp16 is False
    assert config.load_from is not None and config.load_from.path == "weights.pth"


def test_defaults_in_the_tree_do_not_change_what_validation_sees(tmp_path: Path) -> None:
    composed = to_plain(compose(["+experiment=mlp", f"work_dir={tmp_path}"]))
    given = prune_defaults(composed)
    # what the files give stays; what only the generated defaults hold goes
    assert given["train_cfg"] == {"by_epoch": True, "max_epochs": 10, "val_begin": 2, "val_interval": 1}
    assert given["val_cfg"] == {}  # given empty: a ValLoop with its defaults, not "no validation"
    # the seed's env settings that are not defaults (the backend's default is None: by device)
    assert given["env_cfg"] == {"dist_cfg": {"backend": "nccl"}, "mp_cfg": {"mp_start_method": "fork"}}
    assert "default_hooks" not in given  # the experiment's hook settings are all the defaults
    assert "randomness" not in given and "test_cfg" not in given
    # the validated config is the same either way
    assert RunnerConfig.from_dict({k: v for k, v in given.items() if k in RunnerConfig.model_fields}) == (
        RunnerConfig.from_dict({k: v for k, v in composed.items() if k in RunnerConfig.model_fields})
    )


def test_the_training_loop_switches_kind_by_type(tmp_path: Path) -> None:
    overrides = ["+experiment=mlp", f"work_dir={tmp_path}", "~train_cfg.max_epochs", "~train_cfg.by_epoch"]
    overrides += ["train_cfg.type=IterBasedTrainLoop", "train_cfg.max_iters=40", "~param_scheduler"]
    config, _ = to_runner_config(compose(overrides))
    assert isinstance(config.train_cfg, IterBasedTrainLoop) and config.train_cfg.max_iters == 40


def test_custom_imports_in_mmengines_mapping_form_composes(tmp_path: Path) -> None:
    """``custom_imports: {imports: [...], allow_failed_imports: false}`` (MMEngine's form) in an
    experiment file composes over the tree's default (an empty list) and validates to the list."""
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).parents[1] / "conf", conf)
    seed = (conf / "experiment" / "mlp.yaml").read_text()
    mapping = "custom_imports: {imports: [examples.seed_mlp, json], allow_failed_imports: false}"
    (conf / "experiment" / "mapping_imports.yaml").write_text(
        re.sub(r"^custom_imports: .*$", mapping, seed, count=1, flags=re.M)
    )
    config, _ = to_runner_config(compose(["+experiment=mapping_imports", f"work_dir={tmp_path}"], str(conf)))
    assert config.custom_imports == ["examples.seed_mlp", "json"]
    # and the list form, on the command line, as before
    config, _ = to_runner_config(compose(["+experiment=mlp", f"work_dir={tmp_path}", "custom_imports=[json]"]))
    assert config.custom_imports == ["json"]


def test_lists_stay_replaceable(tmp_path: Path) -> None:
    """A list (a Python experiment's schedules, custom_hooks) is replaced, not merged with a default."""
    overrides = ["+experiment=mlp_py", f"work_dir={tmp_path}", "param_scheduler.0.milestones=[2,3]"]
    overrides.append("custom_hooks=[{type: EMAHook}]")
    config, _ = to_runner_config(compose(overrides))
    assert [getattr(s, "milestones", None) for s in config.param_scheduler] == [[2, 3]]
    assert len(config.custom_hooks) == 1


def test_done_when_seed_and_weight_decay_override_check_exits_0(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    args = ["+experiment=mlp", "randomness.seed=0", "optim_wrapper.optimizer.weight_decay=0.01", "check=true"]
    result = run_cli([*args, f"hydra.run.dir={tmp_path}"], subprocess_env)  # issue 11's command, as written
    assert result.returncode == 0, explain(result)
    assert "configuration validated, contract probed" in result.stdout


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("train_cfg.max_epoch=3", "train_cfg.max_epoch: unknown key; did you mean max_epochs?"),
        ("randomness.sed=0", "randomness.sed: unknown key; did you mean seed?"),
        (
            "default_hooks.checkpoint.max_keep=3",
            "default_hooks.checkpoint.max_keep: unknown key; did you mean max_keep_ckpts?",
        ),
        ("train_cfg.max_epochs=[3", "train_cfg.max_epochs: "),  # bad override syntax
    ],
)
def test_unknown_keys_and_bad_syntax_exit_2_with_the_path(
    tmp_path: Path, subprocess_env: dict[str, str], override: str, line: str
) -> None:
    result = run_cli(["+experiment=mlp", override, f"hydra.run.dir={tmp_path}"], subprocess_env)
    assert result.returncode == 2, explain(result)
    assert line in result.stderr and f"[from command-line override '{override}']" in result.stderr, explain(result)
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.glob("*.pth"))


# ----------------------------------------------------------------------------------------------
# Item 2: --help from the schema, help=SECTION, print_config=true
# ----------------------------------------------------------------------------------------------
def _model_fields(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name in model.model_fields:
        yield f"{prefix}{name}"


def test_help_lists_every_field_with_type_default_and_docstring(subprocess_env: dict[str, str]) -> None:
    result = run_cli(["--help"], subprocess_env)
    assert result.returncode == 0, explain(result)
    out = result.stdout
    doc = CheckpointHook.model_fields["max_keep_ckpts"].description
    assert doc and f"default_hooks.checkpoint.max_keep_ckpts: int = -1\n      {doc}" in out
    assert "debug: fast, overfit" in out and "optim_wrapper: adam, sgd" in out  # the groups and their options
    for path, _ in _leaves({k: v for k, v in base_tree().items() if k in RunnerConfig.model_fields}):
        assert f"  {path}: " in out or out.startswith(f"{path}: ") or f"\n{path}: " in out, path


def test_help_of_one_section(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = run_cli(["help=debug", f"hydra.run.dir={tmp_path}"], subprocess_env)
    assert result.returncode == 0, explain(result)
    assert result.stdout.strip() == schema_help("debug")
    assert all(f"{path}: " in result.stdout for path in _model_fields(DebugCfg, "debug."))
    assert "randomness" not in result.stdout
    wrong = run_cli(["help=optim_wraper", f"hydra.run.dir={tmp_path}"], subprocess_env)
    assert wrong.returncode == 2 and "did you mean optim_wrapper?" in wrong.stderr, explain(wrong)


def test_print_config_prints_the_validated_config_and_trains_nothing(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    work_dir = tmp_path / "run"
    args = ["+experiment=mlp", "print_config=true", "randomness.seed=5", f"work_dir={work_dir}"]
    result = run_cli([*args, f"hydra.run.dir={work_dir}"], subprocess_env)
    assert result.returncode == 0, explain(result)
    printed = OmegaConf.to_container(OmegaConf.create(result.stdout))
    expected, _ = to_runner_config(compose(["+experiment=mlp", "randomness.seed=5", f"work_dir={work_dir}"]))
    assert printed == expected.model_dump(mode="json")
    assert printed["default_hooks"]["checkpoint"]["max_keep_ckpts"] == -1  # every default filled in
    assert not (work_dir / "config.json").exists() and not list(work_dir.glob("*.pth"))


# ----------------------------------------------------------------------------------------------
# Item 8: where a top-level value came from
# ----------------------------------------------------------------------------------------------
def test_top_level_keys_from_the_command_line_are_attributed_to_it(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    args = ["+experiment=mlp", "launcher=mpi", "log_level=LOUD", "check=true", f"hydra.run.dir={tmp_path}"]
    result = run_cli(args, subprocess_env)
    assert result.returncode == 2, explain(result)
    for override in ("launcher=mpi", "log_level=LOUD"):
        key = override.split("=")[0]
        lines = [line for line in result.stderr.splitlines() if line.strip().startswith(f"{key}:")]
        assert lines and lines[0].endswith(f"[from command-line override '{override}']"), explain(result)
    assert "conf/experiment/mlp.yaml" not in result.stderr


# ----------------------------------------------------------------------------------------------
# Item 4: the debug presets
# ----------------------------------------------------------------------------------------------
def test_debug_fast_trains_two_batches_one_epoch_no_checkpoints(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    # the README tour's first command
    args = ["+experiment=mlp", "debug=fast", "optim_wrapper.optimizer.lr=0.01", f"hydra.run.dir={tmp_path}"]
    result = run_cli(args, subprocess_env)
    assert result.returncode == 0, explain(result)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert (summary["epochs"], summary["iters"]) == (1, 2)
    assert "accuracy" in summary["final_metrics"]
    assert not list(tmp_path.glob("*.pth"))
    # the seed's milestones [4, 8] never fire in one epoch: a warning in a debug run, not a refusal
    assert "milestones" in result.stdout + result.stderr


def test_debug_fast_keeps_schedule_errors_for_real_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="milestones"):
        Runner.checked(
            to_runner_config(compose(["+experiment=mlp", f"work_dir={tmp_path}", "train_cfg.max_epochs=3"]))[0]
        )


def test_debug_overfit_repeats_the_same_batches(tmp_path: Path) -> None:
    overrides = ["+experiment=mlp", "debug=overfit", f"work_dir={tmp_path}", *FAST, "train_cfg.max_epochs=3"]
    overrides.append("~param_scheduler")
    config, _ = to_runner_config(compose(overrides))
    assert config.debug.overfit_batches == 2
    runner = Runner(config)
    loader = runner.train_dataloader
    assert loader is not None and len(loader) == 2
    first, second = list(loader), list(loader)
    for a, b in zip(first, second, strict=True):
        assert all((x == y).all() for x, y in zip(a, b, strict=True))
    runner.train()
    assert runner.state.iter == 6  # 3 epochs of the same 2 batches
    records = [json.loads(line) for line in (tmp_path / "scalars.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len([r for r in records if "loss" in r]) == 3  # the loss is logged once an epoch (interval 2, not 10)


def test_debug_fast_applies_to_a_python_experiment(tmp_path: Path) -> None:
    config, _ = to_runner_config(compose(["+experiment=mlp_py", "debug=fast", f"work_dir={tmp_path}"]))
    assert config.debug.fast_dev_run == 2 and config.default_hooks.checkpoint is None
    assert config.train_cfg is not None and config.train_cfg.length == 1


def test_debug_limits_are_typed_fields(tmp_path: Path) -> None:
    assert (
        OmegaConf.select(compose(["+experiment=mlp", f"work_dir={tmp_path}"]), "debug.fast_dev_run", default=0) is None
    )
    with pytest.raises(ConfigError, match=r"debug\.limit_train_batches"):
        to_runner_config(compose(["+experiment=mlp", f"work_dir={tmp_path}", "debug.limit_train_batches=0"]))
    config, _ = to_runner_config(compose(["+experiment=mlp", f"work_dir={tmp_path}", "debug.limit_train_batches=3"]))
    loader = Runner(config).train_dataloader
    assert loader is not None and len(loader) == 3


# ----------------------------------------------------------------------------------------------
# Item 3: the `typedrunner` console script and Hydra's shell completion for it
# ----------------------------------------------------------------------------------------------
def _console_script(bin_dir: Path) -> Path:
    """The ``typedrunner`` script as pip writes it from pyproject's ``[project.scripts]``."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^\[project\.scripts\]\n(?:#.*\n)*typedrunner = "([\w.]+):(\w+)"', text, re.MULTILINE)
    assert found, "pyproject.toml declares no typedrunner console script"
    module, function = found.groups()
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "typedrunner"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    script.chmod(0o755)
    return script


COMPLETIONS = [
    ("typedrunner +experiment=mlp default_hooks.checkpoint.max_", 2, ["default_hooks.checkpoint.max_keep_ckpts="]),
    ("typedrunner +experiment=mlp randomness.se", 2, ["randomness.seed="]),
    ("typedrunner debug=", 1, ["debug=fast", "debug=overfit"]),
    ("typedrunner optim_wrapper=", 1, ["optim_wrapper=adam", "optim_wrapper=sgd"]),
]


def test_bash_completion_of_the_console_script(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """Hydra's own bash function, installed for the script, asked as bash asks it on <TAB>."""
    script = _console_script(tmp_path / "bin")
    env = {**subprocess_env, "PATH": f"{script.parent}{os.pathsep}{subprocess_env.get('PATH', '')}"}
    lines = ['eval "$(typedrunner -sc install=bash)"']
    for i, (line, word, _) in enumerate(COMPLETIONS):
        lines += [f"COMP_LINE={shlex.quote(line)}", "COMP_POINT=${#COMP_LINE}", f"COMP_CWORD={word}"]
        lines += ["hydra_bash_completion", f'echo "{i}: ${{COMPREPLY[*]}}"']
    result = subprocess.run(
        ["bash", "-c", "\n".join(lines)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, explain(result)
    assert (
        "complete -o nospace -o default -F hydra_bash_completion typedrunner"
        in subprocess.run(
            [str(script), "-sc", "install=bash"], env=env, capture_output=True, text=True, timeout=300, check=False
        ).stdout
    )
    for i, (line, _, expected) in enumerate(COMPLETIONS):
        answer = next((a for a in result.stdout.splitlines() if a.startswith(f"{i}: ")), "")
        assert sorted(answer.split()[1:]) == expected, f"{line!r}: {answer!r}\n{explain(result)}"


def test_zsh_completion_query(subprocess_env: dict[str, str]) -> None:
    """zsh runs Hydra's bash completion (bashcompinit); its query answers the same."""
    env = {**subprocess_env, "COMP_LINE": "typedrunner +experiment=mlp train_cfg.max_"}
    result = run_cli(["-sc", "query=zsh"], env)
    assert result.returncode == 0, explain(result)
    assert result.stdout.split() == ["train_cfg.max_epochs="]
