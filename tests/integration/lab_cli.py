"""The overlaylab CLI, run as a user would run it, for the integration tests.

A helper module rather than conftest.py: test modules import it by name, and the
name `conftest` is shared by tests/unit/conftest.py, so which one `from conftest
import ...` finds depends on the order pytest collects the folders in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def invoke(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, as a user would, from the project root."""
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"invoke {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def verify_json(spec: str, *extra: str, timeout: float = 8) -> dict[str, Any]:
    """`invoke verify --format json` on `spec`; its exit code must agree with `ok`.

    `timeout` bounds each probe's retries: long enough that a UDP echo delayed by a
    loaded machine is retried, not reported (3 s flaked on a busy CI machine)."""
    result = invoke(
        "verify", "-i", spec, "--format", "json", "--timeout", str(timeout), *extra, check=False
    )
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1), result.stderr
    return report


def failures(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Failed and errored results of a JSON report, by check id."""
    return {
        c["id"]: [r for r in c["results"] if r["status"] in ("fail", "error")]
        for c in report["checks"]
        if c["status"] in ("fail", "error")
    }


def causes(report: dict[str, Any]) -> list[str]:
    return [d["cause"] for d in report["diagnosis"]]


def forwarding_per_engine(ctx: Any) -> dict[str, tuple[str, bool | None]]:
    """Per engine node, through its handle: (net.ipv4.ip_forward in the node, whether
    its engine believes forwarding is on), as `up` must leave them: ("1", True)."""
    seen = {}
    for node in ctx.spec.engine_nodes:
        handle = ctx.node(node.name)
        value = handle.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()
        with handle.engine(timeout=10) as client:
            seen[node.name] = (value, client.info().get("IPv4Forwarding"))
    return seen


def evidence(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """An `invoke logs` archive: (its manifest, every other file by its path in the lab)."""
    import tarfile

    files: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                files[member.name.split("/", 1)[1]] = handle.read()
    return json.loads(files.pop("manifest.json")), files


def key_material(folder: Path) -> list[bytes]:
    """The body lines of every PEM private key under `folder` (the lab's TLS keys)."""
    found = []
    for path in folder.rglob("*.pem"):
        text = path.read_bytes()
        if b"PRIVATE KEY" in text:
            found += [line for line in text.splitlines() if line and not line.startswith(b"-----")]
    return found
