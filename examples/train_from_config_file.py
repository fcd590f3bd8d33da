"""Style 4, MMEngine's config file: `Runner.from_cfg(Config.fromfile(...))`, imports changed only.

Run from the project root:  python -m examples.train_from_config_file
"""

from __future__ import annotations

from pathlib import Path

from typedrunner.config import Config
from typedrunner.runner import Runner

if __name__ == "__main__":
    config = Config.fromfile(Path(__file__).with_name("example_config.py"))
    runner = Runner.from_cfg(config)
    runner.train()
    print(runner.last_metrics)
