"""Whatever fails inside a step of a fresh `up` is a step failure: it names the step, the
node and the cause with its output, takes the half-made lab away and shows no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hostsnap import HostSnapshot
from lab_cli import ROOT, evidence, invoke

from overlaylab.layout import LabLayout

SMALL = ROOT / "tests/testdata/labs/small.yml"
LAYOUT = LabLayout.for_cluster("sm")


def start_up(spec: Path) -> subprocess.Popen[str]:
    """`invoke up` in the background, its progress lines readable as they come."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "up", "-i", str(spec)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_engine_killed_while_up_runs(tmp_path: Path) -> None:
    before = HostSnapshot.take()
    proc = start_up(SMALL)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "✓ engines" in line:
            # Freeze `up` between steps, kill an engine under it, let it go on.
            proc.send_signal(signal.SIGSTOP)
            os.kill(int(LAYOUT.pid_file("a", "dockerd").read_text()), signal.SIGKILL)
            proc.send_signal(signal.SIGCONT)
            break
    rest = proc.stderr.read()
    code = proc.wait(timeout=120)
    stderr = "".join(seen) + rest
    assert code == 2, stderr
    assert "Traceback" not in stderr and "interrupted" not in stderr
    assert "step 'images' failed on a:" in stderr, stderr
    assert "removing the half-made lab" in stderr
    # The failed fresh `up` took everything away again, at once.
    assert before.differences(HostSnapshot.take()) == []


def test_corrupt_image_tarball(tmp_path: Path) -> None:
    (tmp_path / "broken.tar").write_bytes(b"this is not a docker save archive\n" * 64)
    spec = tmp_path / "lab.yml"
    spec.write_text(
        SMALL.read_text() + "images:\n  - name: broken:1\n    tarball: broken.tar\n    nodes: [b]\n"
    )
    before = HostSnapshot.take()
    result = invoke("up", "-i", str(spec), check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "interrupted" not in result.stderr
    assert "step 'images' failed on b:" in result.stderr, result.stderr
    assert "removing the half-made lab" in result.stderr
    assert before.differences(HostSnapshot.take()) == []


def test_a_failed_up_keeps_the_lab_with_retain(tmp_path: Path) -> None:
    (tmp_path / "broken.tar").write_bytes(b"garbage")
    spec = tmp_path / "lab.yml"
    spec.write_text(SMALL.read_text() + "images:\n  - name: broken:1\n    tarball: broken.tar\n")
    before = HostSnapshot.take()
    try:
        result = invoke("up", "-i", str(spec), "--retain", check=False)
        assert result.returncode == 2 and "step 'images' failed" in result.stderr
        assert "removing the half-made lab" not in result.stderr
        status = invoke("status", "-i", str(spec), "--format", "json")
        assert '"engine": "up"' in status.stdout  # kept for debugging, engines still answer
        # The evidence of the failed `up`, when it is needed most.
        archive = tmp_path / "failed-up.tar.gz"
        invoke("logs", "-i", str(spec), "--no-verify", "-o", str(archive))
        manifest, files = evidence(archive)
        assert files["a/engine/dockerd.log"] and files["b/engine/dockerd.log"]
        assert b"broken:1" in files["lab/spec.yml"]
        assert manifest["cluster"] == "sm"
    finally:
        invoke("down", "-i", str(spec))
    assert before.differences(HostSnapshot.take()) == []


def test_sigterm_is_an_interruption_that_leaves_the_lab_for_the_next_up() -> None:
    before = HostSnapshot.take()
    proc = start_up(SMALL)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if "✓ kv" in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130, rest
        assert "interrupted: run `invoke up` to finish" in rest
        assert "removing the half-made lab" not in rest and "Traceback" not in rest
        assert LAYOUT.state_dir.is_dir()  # left for the next `up` (or `down`)
    finally:
        invoke("down", "-i", str(SMALL))
    assert before.differences(HostSnapshot.take()) == []
