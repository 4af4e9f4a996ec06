"""The Babel-derived router (routing.md), sans-I/O: time is passed in, nothing here does I/O."""

from .router import Forward, Local, NoRoute, Queue, Router

__all__ = ["Forward", "Local", "NoRoute", "Queue", "Router"]
