"""Integration tests run real engines: root and the lab's Debian packages are needed.

Modules that need the same kind of lab share it (shared_labs.py): a test asks for a
profile's fixture below, and the lab is up from the first such test to the last."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_cli import ROOT, invoke
from shared_labs import LabPool, Profile, SharedLab, grouped, profile_of, spec_file
from sshd_hosts import ssh_spec, sshd_hosts

# Still importable from here; new test modules import them from lab_cli.
__all__ = ["ROOT", "invoke"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [b for b in ("dockerd", "etcd", "docker-compose") if not shutil.which(b)]
    reason = None
    if os.geteuid() != 0:
        reason = "integration tests need root (namespaces, dockerd)"
    elif missing:
        reason = f"integration tests need {', '.join(missing)} (./lab installs them)"
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
    items[:] = grouped(items, PROFILES)


def _ssh_hosts_lab(folder: Path, stack: contextlib.ExitStack) -> Path:
    # Hosts with sshd and Docker and nothing else (no etcd): the lab brings its own.
    hosts = stack.enter_context(sshd_hosts(folder, hidden=["etcd"]))
    return ssh_spec(folder, hosts)


# Fixture name -> the lab it stands for.
PROFILES = {
    # test_faults.py's last test adds a stack (faults-spring.yml) that nothing removes.
    "shared_faults_lab": Profile(
        "faults", spec_file("tests/testdata/labs/faults.yml"), last="test_faults"
    ),
    "shared_small_lab": Profile("small", spec_file("tests/testdata/labs/small.yml")),
    "shared_ssh_lab": Profile("ssh", _ssh_hosts_lab, down_must_succeed=True),
}
POOL = LabPool()


def _shared(request: pytest.FixtureRequest, fixture: str) -> SharedLab:
    return POOL.acquire(PROFILES[fixture], request.node.module.__name__)


@pytest.fixture
def shared_faults_lab(request: pytest.FixtureRequest) -> SharedLab:
    """tests/testdata/labs/faults.yml: three engines, etcd, two overlays, the demo stack."""
    return _shared(request, "shared_faults_lab")


@pytest.fixture
def shared_small_lab(request: pytest.FixtureRequest) -> SharedLab:
    """tests/testdata/labs/small.yml: etcd and two engines on one overlay."""
    return _shared(request, "shared_small_lab")


@pytest.fixture
def shared_ssh_lab(request: pytest.FixtureRequest) -> SharedLab:
    """The ssh provider's lab on bare hosts running sshd, without etcd of their own."""
    return _shared(request, "shared_ssh_lab")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test of a profile in a row, its lab goes down (and the host is
    compared), here: a leak fails the teardown of that test."""
    current = POOL.current
    if current is not None and (
        nextitem is None or profile_of(nextitem, PROFILES) != current.profile
    ):
        POOL.release()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # An interrupted run (Ctrl-C, -x) leaves no shared lab behind.
    with contextlib.suppress(Exception):
        POOL.release()


@pytest.fixture(scope="session", autouse=True)
def no_foreign_lab() -> None:
    """Refuse to run over a lab someone brought up by hand: the tests take labs down."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if os.geteuid() == 0 and any(line.startswith("ol-") for line in out.splitlines()):
        pytest.exit(
            "a lab is running on this machine (ip netns list shows ol-*); "
            "take it down with `./lab down` before running the tests",
            returncode=3,
        )
