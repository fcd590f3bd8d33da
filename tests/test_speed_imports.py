"""Speed: a training run imports nothing it does not use before its first iteration (issue 14).

A real ``python -m typedrunner +experiment=mlp`` run, with a ``sitecustomize`` on its PYTHONPATH that
records which code imported each watched module, and a custom hook that writes ``sys.modules`` when
the first training iteration starts. The sweep report code, matplotlib, submitit (read only
in a submitit job, to find its ranks) and torch.distributed.checkpoint (FSDP2 runs only) must be
absent then.

``torch._dynamo`` is imported by torch itself: ``torch.optim.Optimizer.add_param_group`` is wrapped in
``torch._disable_dynamo``, which imports ``torch._dynamo`` the first time any optimizer is built, in a
hand-written loop too. So the rule checked for it is: if a bare ``torch.optim.SGD(...)`` imports it in
a fresh interpreter, the run may have it only through torch's optimizer code; if torch stops doing
that, the run must not have it at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import FAST, REPO, explain, plugin_cli_env, run_cli

WATCHED = (
    "torch._dynamo",
    "matplotlib",
    "typedrunner.app.report",
    "typedrunner.report",
    "submitit",
    "torch.distributed.checkpoint",
)

FINDER = '''
"""Records the call stack that first imports each watched module (installed by sitecustomize)."""
import importlib.abc
import sys
import traceback

WATCHED = {watched!r}
origins = {{}}


class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in WATCHED and name not in origins:
            origins[name] = [f"{{f.filename}}:{{f.name}}" for f in traceback.extract_stack()[:-1]]
        return None


sys.meta_path.insert(0, Recorder())
'''

HOOK = '''
"""Writes sys.modules and the recorded import origins when the first training iteration starts."""
import json
import os
import sys

import import_origins
from typedrunner.parts.hooks.base import Hook


class FirstIteration(Hook):
    written = False

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if not self.written:
            self.written = True
            with open(os.environ["FIRST_ITERATION_MODULES"], "w", encoding="utf-8") as f:
                json.dump({"modules": sorted(sys.modules), "origins": import_origins.origins}, f)
'''


def _modules_at_first_iteration(tmp_path: Path) -> dict[str, Any]:
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "import_origins.py").write_text(FINDER.format(watched=set(WATCHED)), encoding="utf-8")
    (probe / "sitecustomize.py").write_text("import import_origins\n", encoding="utf-8")
    (probe / "first_iteration.py").write_text(HOOK, encoding="utf-8")
    out = tmp_path / "modules.json"
    env = plugin_cli_env(probe)
    env["FIRST_ITERATION_MODULES"] = str(out)
    args = [
        "+experiment=mlp",
        *FAST,
        "train_cfg.max_epochs=1",
        "train_cfg.val_begin=1",
        "train_dataloader.dataset.size=128",
        "val_dataloader.dataset.size=64",
        f"hydra.run.dir={tmp_path / 'run'}",
        "+custom_hooks=[{type: first_iteration.FirstIteration}]",
    ]
    result = run_cli(args, env)
    assert result.returncode == 0, explain(result)
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _loaded(modules: list[str], name: str) -> list[str]:
    return [m for m in modules if m == name or m.startswith(name + ".")]


def _bare_optimizer_imports_dynamo() -> bool:
    code = "import sys, torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1); "
    code += "print('torch._dynamo' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return result.stdout.strip() == "True"


def test_first_iteration_has_no_report_code_matplotlib_or_dynamo_of_ours(tmp_path: Path) -> None:
    found = _modules_at_first_iteration(tmp_path)
    modules: list[str] = found["modules"]
    assert "typedrunner.engine.loops" in modules  # the dump was taken inside a real training run
    assert _loaded(modules, "matplotlib") == []
    assert _loaded(modules, "submitit") == [], found["origins"].get("submitit")  # read only in a submitit job
    assert _loaded(modules, "typedrunner.app.report") == [] and "typedrunner.report" not in modules
    assert [m for m in modules if m.startswith("typedrunner.app.report")] == []
    # distributed checkpoints (0.8 s to import) are for FSDP2 runs: a run that does not shard never loads them
    assert "typedrunner.parts.dcp_io" not in modules
    assert _loaded(modules, "torch.distributed.checkpoint") == [], found["origins"].get("torch.distributed.checkpoint")
    if _bare_optimizer_imports_dynamo():
        # imported (if at all) inside torch's optimizer constructor, as in a hand-written loop
        if "torch._dynamo" in modules:
            origin = found["origins"]["torch._dynamo"]
            assert any("torch/optim/optimizer.py" in frame for frame in origin), origin
    else:
        assert _loaded(modules, "torch._dynamo") == [], found["origins"].get("torch._dynamo")
