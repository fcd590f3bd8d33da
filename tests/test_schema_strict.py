"""The editor JSON Schema is as strict as validation (issue 11, item 7).

Every ``conf/`` YAML has broken copies, each with one typo (a misspelt key or ``type``, a value
outside a constructor's ``Literal``): the schema the file names on its first line rejects each of
them, and so does ``RunnerConfig`` validation of the composed seed experiment with the same typo, so
the editor and the run agree. The unbroken files pass both. Components of every kind (torch
optimizers and schedulers without a typed config, hooks, samplers, loops) get the same treatment
with fragments, and a user component registered by an imported module gets its own branch from its
signature when the schema is exported.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from omegaconf import OmegaConf

from tests.helpers import CONF, REPO
from typedrunner.app.compose import CLI_KEYS, compose
from typedrunner.app.schema import conf_imports, editor_schemas
from typedrunner.config import RunnerConfig
from typedrunner.errors import ConfigError

YAMLS = sorted(
    str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml") if p.relative_to(CONF).parts[0] not in ("hydra", ".schema")
)
_GLOBAL = "# @package _global_"


def _load(relative: str) -> Any:
    return OmegaConf.to_container(OmegaConf.load(CONF / relative), resolve=False)


def _schema_of(relative: str) -> dict[str, Any]:
    """The schema the file names on its first lines (``# yaml-language-server: $schema=...``)."""
    path = CONF / relative
    for line in path.read_text(encoding="utf-8").splitlines()[:3]:
        if "yaml-language-server: $schema=" in line:
            schema: dict[str, Any] = json.loads((path.parent / line.split("$schema=", 1)[1].strip()).read_text())
            return schema
    raise AssertionError(f"{relative} names no schema")


def _package(relative: str) -> str:
    """Where the file's keys land in the composed config: its group, or the top (``_global_``)."""
    text = (CONF / relative).read_text(encoding="utf-8")
    return "" if "/" not in relative or _GLOBAL in text else relative.split("/")[0]


def _errors(schema: dict[str, Any], data: Any) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    """The seed experiment as composed (``+experiment=mlp``), plain, without the command line's keys."""
    data = OmegaConf.to_container(compose(["+experiment=mlp", "work_dir=w"], config_dir=str(CONF)), resolve=True)
    assert isinstance(data, dict)
    return {str(k): v for k, v in data.items() if k not in CLI_KEYS}


def _with_file(seed: dict[str, Any], relative: str) -> dict[str, Any]:
    """The seed with ``relative``'s option picked for its group (a global file is already in it)."""
    data = copy.deepcopy(seed)
    package = _package(relative)
    if package:
        data[package] = _load(relative)
    return data


def _validation_problems(data: dict[str, Any]) -> list[str]:
    try:
        RunnerConfig.from_dict(data)
    except ConfigError as e:
        return [f"{p.path}: {p.message}" for p in e.problems]
    return []


# ----------------------------------------------------------------------------------------------
# One broken copy per conf/ file (several for the files with several components)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Typo:
    """In ``file``, the key at dotted ``path`` renamed to ``rename``, or its value set to ``value``."""

    file: str
    path: str
    rename: str | None = None
    value: Any = None

    @property
    def id(self) -> str:
        change = f"{self.path.rpartition('.')[2]}->{self.rename}" if self.rename else f"{self.path}={self.value}"
        return f"{self.file}:{change}"

    def apply(self, data: Any, prefix: str = "") -> Any:
        data = copy.deepcopy(data)
        *parents, last = [k for k in f"{prefix}.{self.path}".split(".") if k]
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if self.rename is not None:
            node[self.rename] = node.pop(last)
        else:
            node[last] = self.value
        return data


TYPOS = [
    Typo("config.yaml", "experiment_name", rename="experiment_nam"),
    Typo("data/rings.yaml", "train_dataloader.batch_size", rename="batch_sise"),
    Typo("debug/fast.yaml", "fast_dev_run", rename="fast_dev_runn"),
    Typo("debug/overfit.yaml", "overfit_batches", rename="overfit_batchs"),
    Typo("data/rings.yaml", "val_dataloader.dataset.size", rename="sise"),
    Typo("data/rings.yaml", "train_dataloader.sampler.type", value="DefaultSamplerr"),
    Typo("data/rings.yaml", "train_dataloader.sampler.shuffle", rename="shufle"),
    Typo("data/rings.yaml", "train_dataloader.collate_fn.type", value="default_colate"),
    Typo("experiment/mlp.yaml", "train_cfg.max_epochs", rename="max_epoch"),
    Typo("experiment/mlp.yaml", "default_hooks.checkpoint.interval", rename="intervall"),
    Typo("experiment/mlp.yaml", "default_hooks.logger.type", value="LogerHook"),
    Typo("experiment/mlp.yaml", "env_cfg.dist_cfg.backend", rename="backnd"),
    Typo("model/mlp.yaml", "layers", rename="layerz"),
    Typo("model/mlp.yaml", "type", value="MyAwesomeModell"),
    Typo("model/mlp.yaml", "activation", value="gelu"),
    Typo("optim_wrapper/adam.yaml", "optimizer.lr", rename="lrr"),
    Typo("optim_wrapper/adam.yaml", "optimizer.type", value="Adamm"),
    Typo("optim_wrapper/sgd.yaml", "optimizer.momentum", rename="momentun"),
    Typo("param_scheduler/cosine.yaml", "T_max", rename="T_maxx"),
    Typo("param_scheduler/cosine.yaml", "type", value="CosineAnnealingLRR"),
    Typo("param_scheduler/multistep.yaml", "milestones", rename="milestonez"),
    Typo("param_scheduler/multistep.yaml", "type", value="MultiStepLRR"),
    Typo("val_evaluator/accuracy.yaml", "type", value="Acuracy"),
    Typo("visualizer/local.yaml", "vis_backends", rename="vis_backend"),
    Typo("visualizer/mlflow.yaml", "vis_backends.1.tracking_uri", rename="tracking_url"),
    Typo("visualizer/tensorboard.yaml", "vis_backends.1.type", value="TensorBoardVisBackend"),
    Typo("visualizer/wandb.yaml", "vis_backends.1.mode", value="offlne"),
]


def test_every_conf_file_has_a_broken_copy() -> None:
    """A new conf/ file gets its typo here (and its schema line): nothing escapes this test."""
    assert sorted({t.file for t in TYPOS}) == YAMLS


@pytest.mark.parametrize("relative", YAMLS)
def test_the_unbroken_file_passes_its_schema_and_validation(relative: str, seed: dict[str, Any]) -> None:
    assert _errors(_schema_of(relative), _load(relative)) == []
    assert _validation_problems(_with_file(seed, relative)) == []


@pytest.mark.parametrize("typo", TYPOS, ids=[t.id for t in TYPOS])
def test_a_typo_is_rejected_by_the_schema_and_by_validation(typo: Typo, seed: dict[str, Any]) -> None:
    assert _errors(_schema_of(typo.file), typo.apply(_load(typo.file))), f"the schema accepts {typo.id}"
    broken = typo.apply(_with_file(seed, typo.file), _package(typo.file))
    assert _validation_problems(broken), f"validation accepts {typo.id}"


# ----------------------------------------------------------------------------------------------
# Every kind of component, typed or from its signature, selected by type
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fragment:
    """``key: value`` in the seed experiment; ``valid``: what both the schema and validation say."""

    key: str
    value: Any
    valid: bool

    @property
    def id(self) -> str:
        return f"{self.key}={json.dumps(self.value, separators=(',', ':'))}"


_CYCLIC = {"type": "CyclicLR", "base_lr": 0.001, "max_lr": 0.01, "by_epoch": False}
FRAGMENTS = [
    # torch optimizers without a typed config: their signature (minus params)
    Fragment("optim_wrapper", {"optimizer": {"type": "RMSprop", "lr": 0.01, "alpha": 0.9}}, True),
    Fragment("optim_wrapper", {"optimizer": {"type": "RMSprop", "lrr": 0.01}}, False),
    Fragment("optim_wrapper", {"optimizer": {"type": "RMSprop", "centered": "yes please"}}, False),
    Fragment("optim_wrapper", {"optimizer": {"type": "Adam", "capturable": True}}, False),  # typed: not torch's
    # torch schedulers without a typed config: their signature (minus optimizer) plus the window keys
    Fragment("param_scheduler", _CYCLIC, True),
    Fragment("param_scheduler", {**_CYCLIC, "max_lrr": 0.1}, False),
    Fragment("param_scheduler", {"type": "CyclicLR", "base_lr": 0.001}, False),  # max_lr is required
    Fragment("param_scheduler", [{"type": "LinearLR", "by_epoch": False, "end": 5}, _CYCLIC], True),
    Fragment("param_scheduler", [{"type": "LinearLR", "by_epoch": False, "endd": 5}], False),
    # hooks: the built-in ones' schemas, the extra ones' signatures, plus priority
    Fragment("custom_hooks", [{"type": "EarlyStoppingHook", "monitor": "accuracy", "priority": "LOW"}], True),
    Fragment("custom_hooks", [{"type": "EarlyStoppingHook", "monitr": "accuracy"}], False),
    Fragment("custom_hooks", [{"type": "EMAHook", "momentum": 0.001}], True),
    Fragment("custom_hooks", [{"type": "EMAHok"}], False),
    Fragment("default_hooks", {"checkpoint": {"type": "CheckpointHook", "max_keep_ckpt": 3}}, False),
    # samplers
    Fragment(
        "train_dataloader",
        {"dataset": {"type": "MyDataset", "is_train": True, "size": 8}, "sampler": {"type": "SequentialSampler"}},
        True,
    ),
    Fragment(
        "train_dataloader",
        {
            "dataset": {"type": "MyDataset", "is_train": True, "size": 8},
            "sampler": {"type": "RandomSampler", "replacment": True},
        },
        False,
    ),
    # loops
    Fragment("train_cfg", {"type": "IterBasedTrainLoop", "max_iters": 10, "val_interval": 5}, True),
    Fragment("train_cfg", {"type": "IterBasedTrainLoop", "max_iter": 10}, False),
    Fragment("val_cfg", {"fp16": False}, True),
    Fragment("val_cfg", {"fp61": False}, False),
    # metrics, registered by the configs' custom_imports, under their name or their dotted path
    Fragment("val_evaluator", {"type": "examples.seed_mlp.Accuracy"}, True),
    Fragment("val_evaluator", {"type": "examples.seed_mlp.Accuracy", "prefixx": "val"}, False),
]


@pytest.fixture(scope="module")
def whole() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CONF / ".schema" / "runner.schema.json").read_text(encoding="utf-8"))
    return schema


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=[f.id for f in FRAGMENTS])
def test_each_component_type_has_its_own_closed_branch(
    fragment: Fragment, whole: dict[str, Any], seed: dict[str, Any]
) -> None:
    errors = _errors(whole, {fragment.key: fragment.value})
    problems = _validation_problems({**seed, fragment.key: fragment.value})
    assert (errors == []) is fragment.valid, errors
    assert (problems == []) is fragment.valid, problems


def test_a_dotted_path_the_export_does_not_know_stays_open(whole: dict[str, Any]) -> None:
    """A ``type`` given as a dotted path to a class the export never imported cannot be checked in
    the editor (validation imports it at run time); a short name must be a known one."""
    assert _errors(whole, {"model": {"type": "my_project.models.Net", "anything": 1}}) == []
    assert _errors(whole, {"model": {"type": "Net", "anything": 1}})
    assert _errors(whole, {"param_scheduler": {"type": "my_project.schedules.Warmup", "steps": 3}}) == []


def test_branches_are_closed_and_selected_by_type(whole: dict[str, Any]) -> None:
    """Every built-in optimizer, scheduler, hook and sampler ``type`` is listed and has its branch."""
    defs = whole["$defs"]
    for name, expected in {
        "OptimizerComponent": {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "LBFGS"},
        "ParamSchedulerComponent": {"MultiStepLR", "CyclicLR", "ReduceLROnPlateau", "LinearMomentum", "OneCycleLR"},
        "HookComponent": {"CheckpointHook", "LoggerHook", "EMAHook", "EarlyStoppingHook", "ProfilerHook"},
        "SamplerComponent": {"DefaultSampler", "RandomSampler", "SequentialSampler"},
    }.items():
        component = defs[name]
        listed = set(component["properties"]["type"]["anyOf"][0]["enum"])
        assert expected <= listed, (name, expected - listed)
        for branch in component["allOf"]:
            then = branch["then"]
            target = defs[then["$ref"].removeprefix("#/$defs/")] if "$ref" in then else then
            assert target.get("additionalProperties") is False, (name, branch["if"])


# ----------------------------------------------------------------------------------------------
# Registered user components: their signature, when the schema is exported
# ----------------------------------------------------------------------------------------------
_USER_MODULE = '''
from typing import Literal

from torch import nn

from typedrunner.registry import MODELS


@MODELS.register_module()
class StrictSchemaNet(nn.Module):
    """A model only this test registers."""

    def __init__(self, width: int = 3, act: Literal["relu", "silu"] = "relu") -> None:
        super().__init__()
'''


def test_a_registered_user_component_gets_its_signature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "strict_schema_user.py").write_text(_USER_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = editor_schemas(["strict_schema_user"])["model.schema.json"]
    assert _errors(model, {"type": "StrictSchemaNet", "width": 4, "act": "silu"}) == []
    assert _errors(model, {"type": "strict_schema_user.StrictSchemaNet", "width": 4}) == []
    assert _errors(model, {"type": "StrictSchemaNet", "widht": 4})
    assert _errors(model, {"type": "StrictSchemaNet", "act": "gelu"})
    assert _errors(model, {"type": "StrictSchemaNet", "width": "wide"})
    # Exported without that module, the name is unknown: only what the configs import is listed.
    assert _errors(editor_schemas()["model.schema.json"], {"type": "StrictSchemaNet"})


def test_the_export_command_imports_what_the_configs_and_import_name(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """``python -m typedrunner.schema --import MODULE``: MODULE's components are in the written files."""
    (tmp_path / "strict_schema_user.py").write_text(_USER_MODULE, encoding="utf-8")
    env = {**subprocess_env, "PYTHONPATH": f"{tmp_path}:{subprocess_env['PYTHONPATH']}"}
    out = tmp_path / "schemas"
    result = subprocess.run(
        [sys.executable, "-m", "typedrunner.schema", "--out", str(out), "--import", "strict_schema_user"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "examples.seed_mlp, strict_schema_user" in result.stdout  # conf/'s custom_imports, then --import
    model = json.loads((out / "model.schema.json").read_text(encoding="utf-8"))
    assert _errors(model, {"type": "StrictSchemaNet", "width": 4}) == []
    assert _errors(model, {"type": "MyAwesomeModel", "layers": 2}) == []
    assert _errors(model, {"type": "StrictSchemaNet", "widht": 4})


def test_conf_imports_reads_custom_imports() -> None:
    assert conf_imports(CONF) == ["examples.seed_mlp"]
