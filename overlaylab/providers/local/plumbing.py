"""Namespaces, veth pairs, a bridge and addresses, through netlink (pyroute2).

The local lab's wiring is a handful of idempotent operations; doing them over
netlink instead of one `ip` process each makes `up` and `down` faster and lets
every operation say which link and namespace it was about when it fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from overlaylab.errors import OverlaylabError

if TYPE_CHECKING:
    from pyroute2 import IPRoute

# pyroute2 is imported where a link or namespace is made or removed: its package
# imports all of itself (IPDB, NDB...), 0.1-0.4 s that `verify`, `status` and `env`,
# which open sockets in namespaces (enter) but change none, need not pay.

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
# A netlink answer takes milliseconds. Now and then pyroute2 (0.9) waits forever for one
# (seen about once in twenty `up`s, inside NetNS): every call gets a deadline, and the
# caller retries the whole, idempotent, operation on a fresh connection.
CALL_TIMEOUT = 10.0
T = TypeVar("T")


class NetlinkHang(OverlaylabError):
    """A netlink call got no answer within CALL_TIMEOUT; the caller may try again."""


class _Worker:
    """One daemon thread that runs calls in order. Daemon: a call that never returns must
    not keep the process alive at exit (a ThreadPoolExecutor's threads would)."""

    def __init__(self, name: str) -> None:
        self.calls: queue.SimpleQueue[tuple[Callable[[], object], Future[object]] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while (item := self.calls.get()) is not None:
            call, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to the caller through the future
                    future.set_exception(exc)

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self.calls.put((call, future))  # type: ignore[arg-type]
        return future

    def shutdown(self) -> None:
        self.calls.put(None)


def _within_deadline(call: Callable[[], T], what: str, worker: _Worker | None = None) -> T:
    """`call()`, or NetlinkHang after CALL_TIMEOUT. With `worker`, the call runs on that
    thread: a pyroute2 connection answers fastest on the thread that opened it."""
    own = worker is None
    pool = worker or _Worker("netlink")
    try:
        return pool.submit(call).result(timeout=CALL_TIMEOUT)
    except FutureTimeout:
        raise NetlinkHang(f"netlink {what}: no answer within {CALL_TIMEOUT:.0f}s") from None
    finally:
        if own:
            pool.shutdown()


def retrying(operation: Callable[[], T], attempts: int = 3) -> T:
    """Run an idempotent netlink operation, again on a fresh connection if one hangs."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except NetlinkHang:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def namespaces() -> list[str]:
    """Every named network namespace on the machine (what `ip netns list` shows)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def create_namespace(name: str) -> None:
    """A named network namespace, as `ip netns add` makes it, without forking.

    pyroute2's own `netns.create` and `NetNS` fork helper processes; forked from a
    process that has threads, a child can hang on a lock it inherited, holding the
    caller's pipes open. Here a thread of its own unshares its network namespace and
    pyroute2 bind-mounts that thread's namespace to /run/netns/<name>.
    """
    if (NETNS_DIR / name).exists():
        return

    def unshare_and_bind() -> None:
        from pyroute2 import netns as pyroute2_netns

        libc = pyroute2_netns._get_libc()
        if libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        thread = f"{os.getpid()}/task/{threading.get_native_id()}"
        pyroute2_netns._create(name, libc=libc, pid=thread)

    try:
        # Its own worker: that thread stays in the new namespace until it ends.
        _within_deadline(unshare_and_bind, f"create {name}")
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise OverlaylabError(f"cannot create network namespace {name}: {exc}") from exc


def enter(namespace: str) -> None:
    """setns(2) of the calling thread into the named network namespace; one that does
    not exist is an OSError (never created here)."""
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns into {namespace}: {os.strerror(code)}")
    finally:
        os.close(fd)


def _socket_in(namespace: str) -> socket.socket:
    """A netlink (rtnetlink) socket that lives in `namespace`: made on a thread of its
    own that entered it (setns affects the calling thread only)."""

    def enter_and_open() -> socket.socket:
        enter(namespace)
        return socket.socket(
            socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )

    return _within_deadline(enter_and_open, f"enter {namespace}")


def remove_namespace(name: str) -> None:
    from pyroute2 import netns as pyroute2_netns

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

    def __init__(self, api: IPRoute, where: str, worker: _Worker) -> None:
        self.api = api
        self.where = where
        self.worker = worker

    def index(self, name: str) -> int | None:
        found = _within_deadline(
            lambda: self.api.link_lookup(ifname=name), f"lookup {name}", self.worker
        )
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        return self.index(name) is not None

    def _call(self, what: str, *args: object, **kwargs: object) -> None:
        from pyroute2 import NetlinkError

        method = self.api.link if what == "link" else self.api.addr
        try:
            _within_deadline(
                lambda: method(*args, **kwargs), f"{what} {args[0]} in {self.where}", self.worker
            )
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
    from pyroute2 import IPRoute

    where = namespace or "the host"
    worker = _Worker(f"netlink {where}")
    try:
        sock = None if namespace is None else _socket_in(namespace)
        api: IPRoute = _within_deadline(lambda: IPRoute(use_socket=sock), f"open {where}", worker)
        try:
            yield Links(api, where, worker)
        finally:
            with contextlib.suppress(NetlinkHang):
                _within_deadline(api.close, f"close {where}", worker)
    finally:
        worker.shutdown()  # a hung call's thread is left to end with the process


def cable_host(
    link: str, namespace: str, port: str, bridge: str, address: str, prefixlen: int, mtu: int
) -> None:
    """This machine's veth `link` to `bridge` in `namespace` (its end there: `port`), with
    `address` on this machine's end. Idempotent; a half-made pair is made again."""
    with links(None) as host, links(namespace) as there:
        if not host.exists(link):
            there.delete(port)
            host.add_veth(link, port, namespace, mtu)
        there.set(port, master=bridge, state="up")
        host.replace_address(link, address, prefixlen)
        host.set(link, state="up")


# Runs as `sh -c _HOSTNAME_THEN_EXEC sh NAME ARGV...` in a fresh UTS namespace.
_HOSTNAME_THEN_EXEC = 'hostname "$1" && shift && exec "$@"'


def in_namespace(namespace: str, hostname: str, argv: Sequence[str]) -> list[str]:
    """`argv` run inside the named network namespace with a UTS namespace of its own,
    named `hostname` (serf gossip refuses members that share a hostname). nsenter and
    unshare exec in place, so a spawned process's pid is the program's own."""
    return [
        "nsenter",
        f"--net={NETNS_DIR / namespace}",
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        _HOSTNAME_THEN_EXEC,
        "sh",
        hostname,
        *argv,
    ]
