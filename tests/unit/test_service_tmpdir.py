"""A service a node runs keeps its temporary files in the lab's folder on that node, which
`down` removes: containerd writes its stack dump to $TMPDIR when its engine kills it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from overlaylab.providers.local.node import service_env
from overlaylab.providers.ssh import node as ssh_node


def test_a_local_service_gets_a_tmpdir_in_its_node_folder(tmp_path: Path) -> None:
    env = service_env(tmp_path / "n1")
    assert env["TMPDIR"] == str(tmp_path / "n1" / "tmp")
    assert (tmp_path / "n1" / "tmp").is_dir()
    assert env["PATH"]  # the rest of the environment is kept


def test_a_service_started_over_ssh_gets_a_tmpdir_in_the_lab_folder(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    # The very script an SSH node runs, in a local shell.
    started = subprocess.run(
        ["sh", "-c", ssh_node._START, "sh", str(root), "svc", "sh", "-c", 'echo "tmp=$TMPDIR"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert started.returncode == 0
    log = root / "svc.log"
    deadline = time.monotonic() + 10
    while "tmp=" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"tmp={root}/tmp" in log.read_text()
    assert (root / "tmp").is_dir()
