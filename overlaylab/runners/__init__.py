"""How a command reaches a host: every backend returns the same `CommandResult`."""

from overlaylab.runners.base import CommandResult
from overlaylab.runners.local import HostRunner

__all__ = ["CommandResult", "HostRunner"]
