"""An SSH node runs commands from many threads at once (verify's checks run side by side),
but never more at once on its one connection than sshd's MaxSessions lets through."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, cast

from fabric import Connection

from overlaylab.layout import NodePaths
from overlaylab.providers.ssh import node as ssh_node

MAX_SESSIONS = 10  # sshd's default


class CountingConnection:
    """Stands in for fabric's Connection: counts the sessions open at once, and refuses
    past MaxSessions as sshd does."""

    user = "root"
    host = "h1"

    def __init__(self) -> None:
        self.is_connected = True
        self.open_now = 0
        self.most = 0
        self.guard = threading.Lock()
        self.all_in = threading.Event()

    def run(self, command: str, **_: Any) -> SimpleNamespace:
        with self.guard:
            self.open_now += 1
            self.most = max(self.most, self.open_now)
            refused = self.open_now > MAX_SESSIONS
        try:
            if refused:
                raise OSError("ChannelException(1, 'Administratively prohibited')")
            self.all_in.wait(0.2)  # hold the session a moment, as a real command does
            return SimpleNamespace(exited=0, stdout="ok\n", stderr="")
        finally:
            with self.guard:
                self.open_now -= 1


def test_commands_from_many_threads_stay_within_the_session_limit(tmp_path: Path) -> None:
    connection = CountingConnection()
    handle = ssh_node.SSHNode(
        "h1",
        ipaddress.IPv4Address("192.168.50.11"),
        cast(Connection, connection),
        NodePaths.under(PurePosixPath("/var/lib/overlaylab/t/h1")),
        api_port=2376,
        client_cert_dir=tmp_path,
    )
    outcomes: list[int] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(handle.run(["true"]).returncode))
        for _ in range(3 * MAX_SESSIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == [0] * len(threads)
    assert 1 < connection.most <= ssh_node.SESSIONS < MAX_SESSIONS
