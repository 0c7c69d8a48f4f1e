"""Existing hosts reached over SSH (fabric): the same pipeline as every provider."""

from overlaylab.providers.ssh.node import SSHNode
from overlaylab.providers.ssh.provider import SSHProvider

__all__ = ["SSHNode", "SSHProvider"]
