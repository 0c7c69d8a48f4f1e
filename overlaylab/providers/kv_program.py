"""The KV server's program on its node: the node's own, or this machine's, brought along.

Hosts reached over SSH often have sshd and Docker and nothing else, which is all
docker-machine ever asked of a host. etcd and consul are single Go programs that need
nothing but the C library, so when the KV node lacks one, the lab copies this machine's
into its own folder on that node and starts it from there; `down` removes the folder
and the host is as it was. ZooKeeper (a Java service) is not brought along: a host
without it keeps the clear refusal of preflight.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from overlaylab.errors import OverlaylabError
from overlaylab.providers.base import Node

BRINGABLE = frozenset({"etcd", "consul"})
INSTALL_HERE = {"etcd": "apt-get install -y etcd-server", "consul": "put a consul binary on PATH"}


def local_program(program: str) -> str | None:
    """This machine's copy of a program the lab can bring along, if it has one."""
    return shutil.which(program) if program in BRINGABLE else None


def brought_path(handle: Node, program: str) -> PurePosixPath:
    return handle.paths.root / "bin" / program


def program_on_node(handle: Node, program: str, on_item: Callable[[str, str], None]) -> str:
    """The command to start `program` with on the node: its name when the node has it,
    else the path of this machine's copy, placed in the lab's folder there (said
    through `on_item`, the progress line of the step)."""
    if program not in BRINGABLE:
        return program
    found = handle.run(["sh", "-c", 'command -v "$1"', "sh", program], check=False)
    if found.returncode == 0:
        return program
    local = local_program(program)
    if local is None:
        raise OverlaylabError(
            f"{program} is not installed on {handle.name}, and this machine has none to "
            f"bring along: install it on {handle.name}, or here ({INSTALL_HERE[program]})"
        )
    target = brought_path(handle, program)
    data = Path(local).read_bytes()
    size = handle.run(["sh", "-c", '[ -x "$1" ] && wc -c < "$1"', "sh", str(target)], check=False)
    if size.stdout.strip() != str(len(data)):
        handle.put_file(target, data, 0o755)
        on_item(handle.name, f"{program} is not installed there: brought this machine's {local}")
    # This machine's build needs this machine's C library and CPU: say so now, not as
    # a KV store that dies at start.
    runs = handle.run([str(target), "--version"], check=False, timeout=20)
    if runs.returncode != 0:
        raise OverlaylabError(
            f"this machine's {program} ({local}), brought to {handle.name}, does not run "
            f"there (exit {runs.returncode}: {(runs.stderr or runs.stdout).strip()[:200]}): "
            f"install {program} on {handle.name} instead"
        )
    return str(target)
