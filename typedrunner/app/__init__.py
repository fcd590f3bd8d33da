"""The ways in: the command line (a Hydra app), Hydra composition, sweep support, JSON Schema
export, config diff and the sweep report. Only this layer knows Hydra."""
