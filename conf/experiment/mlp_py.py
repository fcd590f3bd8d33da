"""The seed experiment as a typed Python config, registered as ``experiment/mlp_py``.

Run:   python -m typedrunner +experiment=mlp_py          (overrides, --cfg job and -m work as for YAML)
The CLI runs every Python file under conf/ before composing; this one stores its config in Hydra's
ConfigStore. It validates to the same RunnerConfig as conf/experiment/mlp.yaml.
"""

from examples.train_python_config import seed_config
from typedrunner.app.compose import register_experiment

register_experiment("mlp_py", seed_config())
