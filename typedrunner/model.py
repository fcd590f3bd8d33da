"""Public home of MMEngine's model base classes (``from typedrunner.model import BaseModel``)."""

from typedrunner.parts.model import BaseDataPreprocessor, BaseModel

__all__ = ["BaseDataPreprocessor", "BaseModel"]
