"""The graph canvas of the window: :class:`GraphView` over a :class:`converters.viewpack.ViewPack`."""
from .view import GraphView

__all__ = ["GraphView"]
