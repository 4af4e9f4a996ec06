"""The Babel-derived router (docs/routing.md), sans-I/O: time is passed in, no I/O here."""

from .decisions import Decision, Forward, Local, NoRoute, Queue, RouteView
from .router import Router

__all__ = ["Decision", "Forward", "Local", "NoRoute", "Queue", "RouteView", "Router"]
