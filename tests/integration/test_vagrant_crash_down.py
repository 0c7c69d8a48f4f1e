"""`down` of a vagrant lab whose engine was killed outright: Vagrant cannot destroy the
machines (nothing drives them), and their processes live in the engine's anonymous
namespaces, out of reach of the lab's namespaces and folder names. `down` must still
find and kill them by the machines' cgroups and leave the host as it was."""

from __future__ import annotations

import os
import signal

from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, invoke
from vagrant_tools import UP_TIMEOUT, host_tools_or_skip

from overlaylab.context import open_lab
from overlaylab.providers.vagrant.provider import VagrantProvider, machine_pids
from overlaylab.waiting import wait_until

SPEC = str(ROOT / "inventory/vagrant.yml")


def test_down_after_the_vagrant_engine_was_killed() -> None:
    host_tools_or_skip()
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", SPEC, "--quiet", timeout=UP_TIMEOUT)
        provider = open_lab(SPEC).provider
        assert isinstance(provider, VagrantProvider)
        pid = provider.engine.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: provider.engine.pid() is None, 10)
        assert machine_pids(provider.layout), "the machines outlive their engine"
    finally:
        down = invoke("down", "-i", SPEC, check=False)
    assert down.returncode == 0, down.stderr
    assert "processes of machines the engine left behind" in down.stderr
    assert wait_until_clean(before) == []
