"""This machine's programs that a lab copies into images or starts on its nodes.

Preflight asks whether they are here; the steps that use them find them here.
"""

from __future__ import annotations

from pathlib import Path

# The static busybox the offline probe image is built from.
BUSYBOX = Path("/bin/busybox")
# Host tools busybox lacks, copied in with their shared libraries: iputils ping can
# set don't-fragment (MTU probes), perl runs the UDP tools (probe_tools).
HOST_TOOLS = {"ping": Path("/usr/bin/ping"), "perl": Path("/usr/bin/perl")}
HOST_TOOL_PACKAGES = {"ping": "iputils-ping", "perl": "perl-base"}
# Debian's ZooKeeper (a Java service, started in the foreground on the KV node).
ZOOKEEPER_SERVER = Path("/usr/share/zookeeper/bin/zkServer.sh")
