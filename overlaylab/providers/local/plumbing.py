"""Namespaces, veth pairs, a bridge and addresses, through netlink (pyroute2).

The local lab's wiring is a handful of idempotent operations; doing them over
netlink instead of one `ip` process each makes `up` and `down` faster and lets
every operation say which link and namespace it was about when it fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError, NetNS
from pyroute2 import netns as pyroute2_netns

from overlaylab.errors import OverlaylabError

NETNS_DIR = Path("/run/netns")


def namespaces() -> list[str]:
    """Every named network namespace on the machine (what `ip netns list` shows)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def create_namespace(name: str) -> None:
    try:
        pyroute2_netns.create(name)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise OverlaylabError(f"cannot create network namespace {name}: {exc}") from exc


def remove_namespace(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        pyroute2_netns.remove(name)


def namespace_inode(name: str) -> int | None:
    """The inode that identifies the namespace: /proc/PID/ns/net links to the same one."""
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def processes_in(name: str) -> set[int]:
    """Pids whose network namespace is `name` (what `ip netns pids` shows)."""
    inode = namespace_inode(name)
    if inode is None:
        return set()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    found.add(int(entry.name))
    return found


class Links:
    """The links of one namespace (None: the host's own), by name."""

    def __init__(self, api: IPRoute | NetNS, where: str) -> None:
        self.api = api
        self.where = where

    def index(self, name: str) -> int | None:
        found = self.api.link_lookup(ifname=name)
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        return self.index(name) is not None

    def _call(self, what: str, *args: object, **kwargs: object) -> None:
        try:
            self.api.link(*args, **kwargs) if what == "link" else self.api.addr(*args, **kwargs)
        except NetlinkError as exc:
            raise OverlaylabError(
                f"netlink {what} {args[0]} in {self.where} failed ({exc}): {kwargs}"
            ) from exc

    def add_bridge(self, name: str) -> None:
        if not self.exists(name):
            self._call("link", "add", ifname=name, kind="bridge")

    def add_veth(self, name: str, peer: str, peer_namespace: str | None, mtu: int) -> None:
        """A veth pair: `name` here, `peer` in `peer_namespace` (None: here too)."""
        peer_spec: dict[str, object] = {"ifname": peer, "mtu": mtu}
        if peer_namespace is not None:
            peer_spec["net_ns_fd"] = peer_namespace
        self._call("link", "add", ifname=name, kind="veth", mtu=mtu, peer=peer_spec)

    def delete(self, name: str) -> None:
        index = self.index(name)
        if index is not None:
            self._call("link", "del", index=index)

    def set(self, name: str, **settings: object) -> None:
        """Change a link: `mtu=`, `state="up"`, `master=<bridge name>`."""
        index = self.index(name)
        if index is None:
            raise OverlaylabError(f"link {name} is missing in {self.where}")
        if "master" in settings:
            master = self.index(str(settings["master"]))
            if master is None:
                raise OverlaylabError(f"bridge {settings['master']} is missing in {self.where}")
            settings["master"] = master
        self._call("link", "set", index=index, **settings)

    def replace_address(self, name: str, address: str, prefixlen: int) -> None:
        index = self.index(name)
        if index is None:
            raise OverlaylabError(f"link {name} is missing in {self.where}")
        self._call("addr", "replace", index=index, address=address, prefixlen=prefixlen)


@contextlib.contextmanager
def links(namespace: str | None) -> Iterator[Links]:
    """Netlink on `namespace`'s links (None: the host's)."""
    api: IPRoute | NetNS = IPRoute() if namespace is None else NetNS(namespace, flags=0)
    try:
        yield Links(api, namespace or "the host")
    finally:
        api.close()
