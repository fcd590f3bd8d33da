"""Public home of the visualizer (``from typedrunner.visualization import Visualizer``, as MMEngine's
``mmengine.visualization``): ``Visualizer.get_current_instance().add_scalars({...})`` logs values of
your own from a model or a metric; from a hook, ``runner.visualizer`` is the same object."""

from typedrunner.parts.visualizer import Visualizer

__all__ = ["Visualizer"]
