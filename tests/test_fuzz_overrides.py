"""Property tests: YAML oddities through Hydra's command-line overrides.

Odd override values (and random override sets at the seed's paths) are composed by Hydra and validated:
each composition raises Hydra's own error for what Hydra cannot parse, or validates or raises
``ConfigError`` whose problems have sound paths; never another exception, a hang (a SIGALRM limit per
example) or a file in the working directory. A Python tag in a conf file never runs.

Configs fuzzed per run here: 88, the same ones every run: 30 random Hydra override sets drawn by
hypothesis (derandomized, no example database) and 58 Hydra compositions written out.
"""

from __future__ import annotations

import traceback
import warnings
from pathlib import Path

import hydra
import pytest
from hydra.errors import HydraException
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from tests.fuzz_support import FUZZ, MARKER, WORK_DIR, TimeLimit, assert_problems_have_paths, seed, tree_paths
from tests.helpers import CONF
from typedrunner.app.compose import compose, to_runner_config
from typedrunner.config import TypedRunnerWarning
from typedrunner.errors import ConfigError

COMPOSE_LIMIT_S = 10.0
"""Wall-clock limit of one Hydra composition plus validation."""


# ---------------------------------------------------------------------------------------------
# YAML oddities through Hydra
# ---------------------------------------------------------------------------------------------
HYDRA_DIR = Path(hydra.__file__).resolve().parent


def _raised_by_hydra(error: BaseException) -> bool:
    """Hydra's own refusal: a ``HydraException``, or another exception raised inside Hydra's code
    (its override visitor raises a bare ``ValueError`` for ``=1``), before typedrunner sees anything."""
    if isinstance(error, HydraException):
        return True
    frames = list(traceback.walk_tb(error.__traceback__))
    return bool(frames) and Path(frames[-1][0].f_code.co_filename).resolve().is_relative_to(HYDRA_DIR)


def check_composed(overrides: list[str], work_dir: Path) -> None:
    """Hydra refuses the overrides with its own exception, or the composed config validates or
    raises ``ConfigError`` whose paths exist in the composition."""
    try:
        composed = compose(["+experiment=mlp", f"work_dir={WORK_DIR}", *overrides], config_dir=str(CONF))
    except Exception as error:
        assert _raised_by_hydra(error), f"composition failed outside Hydra: {error!r}"
        return
    raw = OmegaConf.to_container(composed, resolve=False)
    assert isinstance(composed, DictConfig) and isinstance(raw, dict)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            to_runner_config(composed)
        except ConfigError as error:
            assert_problems_have_paths(error, raw)
    env = raw.get("env_cfg")
    for warning in caught:
        assert issubclass(warning.category, TypedRunnerWarning), warning
        assert isinstance(env, dict) and "backend" in env, warning
    assert not list(work_dir.iterdir())


HYDRA_OVERRIDES = [
    "experiment_name='yes'",
    "experiment_name=yes",
    "experiment_name=null",
    "experiment_name=''",
    "experiment_name=日本語",
    "experiment_name=${oc.env:NO_SUCH_VARIABLE_FOR_FUZZ}",
    "experiment_name=${no_such_key}",
    f"experiment_name='!!python/object/apply:os.system [\"touch {MARKER}\"]'",
    f"experiment_name=${{oc.decode:'!!python/object/apply:os.system [touch {MARKER}]'}}",
    f"experiment_name=\"__import__('os').system('touch {MARKER}')\"",
    "train_cfg.max_epochs=1e400",
    "train_cfg.max_epochs=nan",
    f"train_cfg.max_epochs={2**70}",
    f"train_cfg.max_epochs={-(2**70)}",
    "train_cfg.max_epochs=1_0",
    "train_cfg.max_epochs='10'",
    "train_cfg.max_epochs=true",
    "train_cfg=null",
    "train_cfg=[]",
    "~train_cfg",
    "~model",
    "model.layers=0x10",
    "model.layers=int(3)",
    "model.layers=choice(1,2)",
    "model.layers=range(3)",
    "model.activation=null",
    "model.type=os.system",
    "model.type=subprocess.Popen",
    "+model.extra=[1,[2,[3]]]",
    "+model.extra={a:{b:{c:1}}}",
    "+model.ключ=1",
    "+ключ=1",
    "+model.\x00=1",
    "model=no_such_option",
    "optim_wrapper=sgd",
    "param_scheduler=cosine",
    "optim_wrapper.optimizer.lr=.inf",
    "param_scheduler.milestones=[a,b]",
    "env_cfg.backend=gloo",
    "+env_cfg.backend=gloo",
    "env_cfg.dist_cfg=[]",
    "custom_imports=[filecmp]",
    "custom_imports=null",
    "launcher=slurm",
    "check=yes",
    "default_hooks.checkpoint=null",
    "load_from=does/not/exist.pth",
    "resume=maybe",
    "=1",
    "model..layers=2",
    "model.layers=[",
    "model.layers=${",
]


@pytest.mark.parametrize("override", HYDRA_OVERRIDES)
def test_hydra_overrides_with_odd_values(override: str, in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(COMPOSE_LIMIT_S):
        check_composed([override], in_tmp)
    assert not (in_tmp / MARKER).exists()


def test_hydra_parse_errors_are_hydras(in_tmp: Path) -> None:
    """The override parser's errors reach the caller as Hydra's exceptions, before typedrunner runs."""
    for override in ("model.layers=[", "model.layers='unterminated", "model.layers=choice(1,2)", "model..layers=2"):
        with pytest.raises(HydraException):
            compose(["+experiment=mlp", f"work_dir={WORK_DIR}", override], config_dir=str(CONF))
    with pytest.raises(ValueError, match="Config group override must be a string") as error:
        compose(["+experiment=mlp", f"work_dir={WORK_DIR}", "=1"], config_dir=str(CONF))
    assert _raised_by_hydra(error.value)


def test_a_python_tag_in_a_conf_file_never_runs(in_tmp: Path, time_limit: TimeLimit) -> None:
    """A ``!!python/...`` YAML tag in a config file is refused by OmegaConf's safe loader."""
    import shutil

    conf = in_tmp / "conf"
    shutil.copytree(CONF, conf)
    (conf / "experiment" / "evil.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - mlp\n  - _self_\n"
        f"experiment_name: !!python/object/apply:os.system ['touch {MARKER}']\n",
        encoding="utf-8",
    )
    with time_limit(COMPOSE_LIMIT_S), pytest.raises(Exception, match="python/object/apply") as error:
        compose(["+experiment=evil", f"work_dir={WORK_DIR}"], config_dir=str(conf))
    assert type(error.value).__module__ == "yaml.constructor", repr(error.value)  # the safe loader's refusal
    assert not (in_tmp / MARKER).exists()


OVERRIDE_VALUES = [
    "yes",
    "no",
    "on",
    "off",
    "null",
    "~",
    "true",
    "FALSE",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "0x10",
    "0b11",
    "1_000",
    str(2**70),
    str(-(2**70)),
    "-1",
    "0",
    "0.5",
    "''",
    "'yes'",
    "[]",
    "{}",
    "[1,[2,[3]]]",
    "{a:{b:1}}",
    "日本語",
    "'${oc.env:HOME}'",
    "${oc.env:NO_SUCH_VARIABLE_FOR_FUZZ}",
    "${now:%Y}",
    "'\\${x}'",
    "'{}'",
    "int(3)",
    "str(3)",
    "choice(1,2)",
    "SGD",
    "Adam",
    "os.system",
    "no_such_module_fuzz.Thing",
    "relu",
]


@st.composite
def override_sets(draw: st.DrawFn) -> list[str]:
    """One to three command-line overrides of seed keys (or new ones) with odd values."""
    dotted = [
        ".".join(map(str, p))
        for p in tree_paths(seed())
        if p and all(isinstance(x, str) for x in p) and p[0] != "work_dir"
    ]
    out = []
    for _ in range(draw(st.integers(1, 3))):
        prefix = draw(st.sampled_from(["", "", "", "+", "++", "~"]))
        key = draw(st.sampled_from([*dotted, "model.extra", "ключ", "train_cfg.新", "model.layers.deeper"]))
        if prefix == "~" and draw(st.booleans()):
            out.append(f"~{key}")
        else:
            out.append(f"{prefix}{key}={draw(st.sampled_from(OVERRIDE_VALUES))}")
    return out


@settings(FUZZ, max_examples=30)
@given(overrides=override_sets())
def test_random_hydra_overrides(overrides: list[str], in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(COMPOSE_LIMIT_S):
        check_composed(overrides, in_tmp)
