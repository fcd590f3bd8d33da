"""Public home of the ``Runner`` (``from typedrunner.runner import Runner``)."""

from typedrunner.engine.runner import Runner

__all__ = ["Runner"]
