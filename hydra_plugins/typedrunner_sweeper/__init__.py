"""typedrunner's Hydra sweeper: validates every sweep point before launching any (Hydra discovers
plugins in the ``hydra_plugins`` namespace package)."""
