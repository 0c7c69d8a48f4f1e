"""The embedded default provider: every node is a network + UTS namespace on this box.

Namespace plumbing, service processes and teardown are private to this package:
everything outside reaches a local node through `LocalNode`, the same handle every
provider gives out.
"""

from overlaylab.providers.local.node import START_MARKER, LocalNode
from overlaylab.providers.local.provider import LocalProvider

__all__ = ["START_MARKER", "LocalNode", "LocalProvider"]
