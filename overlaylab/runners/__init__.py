"""How a command reaches a host: every backend returns the same `CommandResult`."""

from overlaylab.runners.base import CommandResult, Runner
from overlaylab.runners.local import HostRunner, NamespaceRunner

__all__ = ["CommandResult", "HostRunner", "NamespaceRunner", "Runner"]
