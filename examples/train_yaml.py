"""Style 1, Hydra YAML: compose conf/ (as `python -m typedrunner +experiment=mlp` does) and train.

Run from the project root:  python -m examples.train_yaml [override ...]
The usual way is the command line itself: python -m typedrunner +experiment=mlp
"""

from __future__ import annotations

import sys

from typedrunner.app.compose import compose, to_runner_config
from typedrunner.runner import Runner


def main(overrides: list[str]) -> dict[str, float]:
    config, _ = to_runner_config(compose(["+experiment=mlp", "work_dir=work_dirs/yaml_style", *overrides]))
    runner = Runner(config)
    runner.train()
    return runner.last_metrics


if __name__ == "__main__":
    print(main(sys.argv[1:]))
