"""Integration tests run real engines: root and the lab's Debian packages are needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_cli import ROOT, invoke

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
