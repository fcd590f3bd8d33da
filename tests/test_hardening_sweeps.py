"""Issue 13, item 8: the sweeper probes once per distinct config, not once per model and data.

Real multiruns of ``python -m typedrunner -m`` with typedrunner's sweeper (the default). The probe's
verdict depends on more than the model and the data (here: ``save_best`` against the metric names
the probe sees), so two points that differ there are probed apart, in either order; points that
differ only in a typed optimizer's learning rate still share one probe. ``check=true``: a launched
job checks and exits, it trains nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ONE_EPOCH, explain, run_cli

SAVE_BEST = "+default_hooks.checkpoint.save_best"


def sweep(tmp_path: Path, env: dict[str, str], *overrides: str) -> tuple[Path, str, str, int]:
    sweep_dir = tmp_path / "sweep"
    result = run_cli(["-m", *ONE_EPOCH, "check=true", *overrides, f"hydra.sweep.dir={sweep_dir}"], env)
    assert "Traceback" not in result.stderr, explain(result)
    return sweep_dir, result.stdout, result.stderr, result.returncode


@pytest.mark.parametrize(("values", "bad", "good"), [("accuracy,acc", 1, 0), ("acc,accuracy", 0, 1)])
def test_a_bad_save_best_is_refused_with_its_own_error_in_either_order(
    tmp_path: Path, subprocess_env: dict[str, str], values: str, bad: int, good: int
) -> None:
    sweep_dir, out, err, code = sweep(tmp_path, subprocess_env, f"{SAVE_BEST}={values}")
    assert code == 2, err[-3000:]
    assert "sweep refused before launch (2 points): 1 error" in err, err
    (line,) = [line for line in err.splitlines() if "default_hooks.checkpoint.save_best:" in line]
    assert "'acc' is not a metric the evaluator returns (accuracy); did you mean accuracy?" in line, line
    assert f"[from sweep point #{bad} (" in line and line.endswith(f"{SAVE_BEST}=acc)]"), line
    assert f"sweep point #{good}" not in err, err  # the valid point is not reported with the other's error
    assert "Launching" not in out and not sweep_dir.exists()  # not a single job started
    assert "sweep checked before launch: 2 points, 2 probes" in out, out


@pytest.mark.parametrize(
    ("optimizer", "probes"),
    [
        ([], "1 probe"),  # Adam's lr is checked by its schema, and the probe takes no step
        (["optim_wrapper.optimizer.type=RMSprop"], "2 probes"),  # torch checks a generic one's lr
    ],
)
def test_points_differing_only_in_a_typed_optimizers_lr_share_one_probe(
    tmp_path: Path, subprocess_env: dict[str, str], optimizer: list[str], probes: str
) -> None:
    sweep_dir, out, err, code = sweep(tmp_path, subprocess_env, *optimizer, "optim_wrapper.optimizer.lr=1e-3,1e-2")
    assert code == 0, err[-3000:]
    assert f"sweep checked before launch: 2 points, {probes}" in out, out
    assert out.count("configuration validated, contract probed (nothing trained)") == 2, out  # both jobs ran
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
