"""Hardening (issue 13, items 1 and 2): code does not run from data.

- ``hydra:`` blocks (item 2): a callback, launcher, sweeper (or logging factory) outside the
  allowlist of what typedrunner ships or documents is refused with exit 2 before Hydra imports or
  calls it, unless the user trusts it by name in ``TYPEDRUNNER_TRUSTED_HYDRA_TARGETS``; Hydra's own
  files stay inside the run directory.
- allowed callables (item 1): a collate function must be registered or defined in a project module
  that ``custom_imports`` names; values only ``**kwargs`` take are checked against its annotation,
  or must be plain data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.helpers import CONF, FAST, explain, plugin_cli_env, run_cli
from typedrunner.app.compose import load_python_configs
from typedrunner.app.hydra_store import install
from typedrunner.app.hydra_trust import TRUST_ENV, untrusted_hydra_targets
from typedrunner.hooks import Hook

MARKER_MODULE = '''
"""Callables that leave a marker file when called: what a hostile config would run."""
from pathlib import Path
from typing import Any


class Touch:
    """Creates ``path`` when built (as a Hydra callback, launcher or logging handler would be)."""

    def __init__(self, path: str = "MARKER", **kwargs: Any) -> None:
        Path(path).touch()


def touch(*args: object, path: str = "MARKER", **kwargs: object) -> list[object]:
    """Creates ``path`` when called (as a collate function would be)."""
    Path(path).touch()
    return list(args)
'''


def _project(tmp_path: Path, experiment: str = "") -> tuple[Path, dict[str, str]]:
    """A copy of conf/ (with ``experiment/hostile.yaml`` when given) and an env that imports the
    marker module from ``tmp_path/plugins`` (not named in any ``custom_imports``)."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    if experiment:
        (conf / "experiment" / "hostile.yaml").write_text(
            f"# @package _global_\ndefaults:\n  - mlp\n  - _self_\n{experiment}", encoding="utf-8"
        )
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "marker_module.py").write_text(MARKER_MODULE, encoding="utf-8")
    env = plugin_cli_env(plugins)
    env["TYPEDRUNNER_CONF"] = str(conf)
    env.pop(TRUST_ENV, None)
    return conf, env


HOSTILE = {
    "callback-in-an-experiment-file": (
        "hydra:\n  callbacks:\n    notify:\n      _target_: marker_module.Touch\n      path: {marker}\n",
        [],
        "hydra.callbacks.notify._target_",
    ),
    "nested-target-in-a-sweeper": (
        "",
        ["+hydra.sweeper.sampler={{_target_: marker_module.Touch, path: '{marker}'}}"],
        "hydra.sweeper.sampler._target_",
    ),
    "logging-handler-class": (
        "hydra:\n  hydra_logging:\n    handlers:\n      x:\n        class: marker_module.Touch\n"
        "        path: {marker}\n",
        [],
        "hydra.hydra_logging.handlers.x.class",
    ),
    "launcher-override": ("", ["hydra.launcher._target_=marker_module.Touch"], "hydra.launcher._target_"),
}


@pytest.mark.parametrize(("experiment", "overrides", "path"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hydra_target_outside_the_allowlist_is_refused_before_it_runs(
    tmp_path: Path, experiment: str, overrides: list[str], path: str
) -> None:
    marker = tmp_path / "MARKER"
    _, env = _project(tmp_path, experiment.format(marker=marker))
    base = "+experiment=hostile" if experiment else "+experiment=mlp"
    args = [base, *FAST, *(o.format(marker=marker) for o in overrides), f"hydra.run.dir={tmp_path / 'run'}"]
    multirun = ["-m"] if "launcher" in path else []  # a launcher is built only for a sweep
    result = run_cli([*multirun, *args, "check=true"], env, cwd=tmp_path)
    assert result.returncode == 2, explain(result)
    assert not marker.exists(), "the hostile target ran"
    assert "Traceback" not in result.stderr
    assert f"{path}: 'marker_module.Touch' is not a" in result.stderr, explain(result)
    assert f"{TRUST_ENV}=marker_module.Touch" in result.stderr
    if experiment:
        assert "[from conf/experiment/hostile.yaml]" in result.stderr, explain(result)
    assert "no problems found" not in result.stdout
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").rglob("*.pth"))


def test_a_hydra_callback_the_user_trusts_by_name_runs(tmp_path: Path) -> None:
    """The counterpart (so that the refusal above can fail): named in the environment, it runs."""
    marker = tmp_path / "MARKER"
    experiment, _, _ = HOSTILE["callback-in-an-experiment-file"]
    _, env = _project(tmp_path, experiment.format(marker=marker))
    env[TRUST_ENV] = "some.other.Callback, marker_module.Touch"
    result = run_cli(
        ["+experiment=hostile", *FAST, f"hydra.run.dir={tmp_path / 'run'}", "check=true"], env, cwd=tmp_path
    )
    assert marker.exists(), explain(result)


HYDRA_OPTIONS = [
    [],
    ["hydra/launcher=parallel"],
    ["hydra/launcher=slurm"],
    ["hydra/launcher=slurm_ddp"],
    ["hydra/launcher=submitit_local"],
    ["hydra/launcher=basic"],
    ["hydra/sweeper=optuna_mlp"],
    ["hydra/sweeper=basic"],
    ["hydra/job_logging=default", "hydra/hydra_logging=default"],
    ["hydra/job_logging=stdout"],
    ["hydra/callbacks=sweep_report"],
]


@pytest.mark.parametrize("options", HYDRA_OPTIONS, ids=lambda o: " ".join(o) or "defaults")
def test_every_shipped_and_documented_hydra_option_is_allowed(options: list[str]) -> None:
    install()  # the generated typedrunner_defaults, as the command line stores it (not left to an earlier test)
    load_python_configs(CONF)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=mlp", *options], return_hydra_config=True)
    assert untrusted_hydra_targets(cfg) == []


# ----------------------------------------------------------------------------------------------
# Item 1: a config runs no code through an allowed callable
# ----------------------------------------------------------------------------------------------
EVALUATING_MODULE = '''
"""A collate function that evaluates the strings of its batch (as sympy's sympify does), and a
harmless one; neither module is named by any custom_imports unless a test says so."""
from json import loads  # noqa: F401 - imported here, defined in the standard library
from typing import Any

from torch.utils.data import default_collate

from typedrunner.registry import FUNCTIONS


def evaluating_collate(batch: list[Any]) -> Any:
    for sample in batch:
        for value in (sample.values() if isinstance(sample, dict) else [sample]):
            if isinstance(value, str):
                eval(value)  # noqa: S307 - the hostile callable under test
    return batch


@FUNCTIONS.register_module()
def counted_collate(batch: list[Any]) -> Any:
    """default_collate that leaves a file behind, to show it ran."""
    open("COLLATED", "w").close()
    return default_collate(batch)
'''


def _evaluating_project(tmp_path: Path) -> dict[str, str]:
    _, env = _project(tmp_path)
    (tmp_path / "plugins" / "evaluating_module.py").write_text(EVALUATING_MODULE, encoding="utf-8")
    return env


def test_the_stack_dataset_and_evaluating_collate_attack_is_refused(tmp_path: Path) -> None:
    """The attack of issue 13: strings under StackDataset's ``**kwargs`` (unchecked before) reach a
    collate function that evaluates them (any importable callable was allowed before). Both are
    refused at their paths, exit 2, and the payload never runs."""
    marker = tmp_path / "MARKER"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    env = _evaluating_project(tmp_path)
    result = run_cli(
        [
            "+experiment=mlp",
            *FAST,
            "train_dataloader.dataset.type=torch.utils.data.StackDataset",
            "~train_dataloader.dataset.is_train",
            "~train_dataloader.dataset.size",
            f'+train_dataloader.dataset.x=["{payload}","{payload}"]',
            "train_dataloader.collate_fn.type=evaluating_module.evaluating_collate",
            f"hydra.run.dir={tmp_path / 'run'}",
            "check=true",
        ],
        env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, explain(result)
    assert not marker.exists(), "the payload ran"
    assert "Traceback" not in result.stderr
    assert "train_dataloader.dataset.x: not a named argument of torch.utils.data.dataset.StackDataset" in result.stderr
    assert "instance of Dataset" in result.stderr
    assert (
        "train_dataloader.collate_fn.type: evaluating_module.evaluating_collate is not a registered function, "
        "nor defined in a module of your project named by custom_imports"
    ) in result.stderr, explain(result)


def _seed(tmp_path: Path, *imports: str, **loader: object) -> dict[str, object]:
    from tests.fuzz_support import small_seed

    data = small_seed()
    data["custom_imports"] = [*data["custom_imports"], *imports]
    data["work_dir"] = str(tmp_path / "run")
    data["train_dataloader"].update(loader)
    return data


def test_a_collate_function_is_registered_or_in_a_custom_imports_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterparts: the evaluating function named by its module in ``custom_imports`` is the
    user's own code and is allowed; a registered one works by name; the same dotted path without
    ``custom_imports``, with ``custom_imports`` naming an installed or standard-library module, or a
    function a project module only imports from elsewhere, is refused."""
    from typedrunner.config import RunnerConfig
    from typedrunner.errors import ConfigError
    from typedrunner.runner import Runner

    _evaluating_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.chdir(tmp_path)
    own = RunnerConfig.from_dict(
        _seed(tmp_path, "evaluating_module", collate_fn={"type": "evaluating_module.evaluating_collate"})
    )
    assert own.train_dataloader is not None and own.train_dataloader.collate_fn.name == "evaluating_collate"

    registered = RunnerConfig.from_dict(_seed(tmp_path, "evaluating_module", collate_fn={"type": "counted_collate"}))
    Runner.checked(registered)  # the probe loads one batch through it
    assert (tmp_path / "COLLATED").exists()

    refused = [
        _seed(tmp_path, collate_fn={"type": "evaluating_module.evaluating_collate"}),
        _seed(tmp_path, "json", collate_fn={"type": "json.loads"}),
        _seed(tmp_path, "torch.serialization", collate_fn={"type": "torch.serialization.load"}),
        _seed(tmp_path, "evaluating_module", collate_fn={"type": "evaluating_module.loads"}),
    ]
    for data in refused:
        with pytest.raises(ConfigError) as error:
            RunnerConfig.from_dict(data)
        assert [p.path for p in error.value.problems] == ["train_dataloader.collate_fn.type"], error.value.render()


def test_unannotated_kwargs_get_plain_data_only(tmp_path: Path) -> None:
    """A class whose ``**kwargs`` carry no annotation gets plain data; a ``{type: ...}`` mapping in
    there would not be built, so it is refused rather than passed on as if it were."""
    from typedrunner.config import RunnerConfig
    from typedrunner.errors import ConfigError

    data = _seed(tmp_path)
    data["model"] = {"type": "typedrunner.testing.ToyModel"}
    plain = RunnerConfig.from_dict(data)
    assert plain.model is not None
    hooks = [{"type": "tests.test_hardening_code_as_data.KwargsHook", "note": "x", "nested": {"a": [1, "b"]}}]
    cfg = RunnerConfig.from_dict({**_seed(tmp_path), "custom_hooks": hooks})
    assert cfg.custom_hooks[0].kwargs == {"note": "x", "nested": {"a": [1, "b"]}}
    hostile = [{"type": "tests.test_hardening_code_as_data.KwargsHook", "nested": [{"type": "os.system"}]}]
    with pytest.raises(ConfigError) as error:
        RunnerConfig.from_dict({**_seed(tmp_path), "custom_hooks": hostile})
    assert [p.path for p in error.value.problems] == ["custom_hooks[0].nested"], error.value.render()
    assert "is not built" in error.value.render()


class KwargsHook(Hook):
    """A user hook that takes anything (``**kwargs`` with no annotation)."""

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        self.kwargs = kwargs


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        (["hydra.output_subdir=../outside"], "hydra.output_subdir"),
        (["hydra.output_subdir=/tmp/outside"], "hydra.output_subdir"),
        (
            ["hydra/job_logging=default", "hydra.job_logging.handlers.file.filename=/tmp/outside.log"],
            "hydra.job_logging.handlers.file.filename",
        ),
        (
            ["hydra/job_logging=default", "hydra.job_logging.handlers.file.filename=${hydra:runtime.output_dir}/../x"],
            "hydra.job_logging.handlers.file.filename",
        ),
        (["hydra/job_logging=default", "hydra.job.name=../../outside"], "hydra.job.name"),
    ],
)
def test_hydra_settings_that_write_outside_the_run_directory_are_refused(overrides: list[str], path: str) -> None:
    load_python_configs(CONF)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=mlp", *overrides], return_hydra_config=True)
    assert [p.path for p in untrusted_hydra_targets(cfg)] == [path]
