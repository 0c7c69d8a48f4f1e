"""Small programs the probe image carries for tests busybox cannot do.

They are Perl scripts run by the host's perl (copied into the image with its shared
libraries, like iputils ping), using built-ins only: no Perl module is in the image.
"""

from __future__ import annotations

from importlib import resources

IMAGE_DIR = "opt/overlaylab"  # inside the probe image
# The UDP echo server every probe runs, and the client of one UDP test.
UDP_ECHO = f"/{IMAGE_DIR}/udp-echo"
UDP_SEND = f"/{IMAGE_DIR}/udp-send"
# The HTTP client people reach for first in a probe; busybox's wget crashes on Debian 12.
HTTP_GET = f"/{IMAGE_DIR}/http-get"
TOOLS = ("udp-echo", "udp-send", "http-get")
# Commands of the image that are probe tools instead of busybox applets (bin/NAME).
COMMANDS = {"wget": HTTP_GET, "curl": HTTP_GET}
# Not in the image: the DF test hands it to the image's perl (`perl -e`), so probes
# started from an older image run it too.
DF_ECHO = "df-echo"


def source(tool: str) -> bytes:
    """A tool's script, as it goes into the image (its #! line names the image's perl)."""
    return resources.files(__name__).joinpath(tool).read_bytes()
