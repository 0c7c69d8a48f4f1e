"""`invoke new` makes a layout that is ready to `up`: the default one comes up, verifies
green and goes down again without a trace."""

from __future__ import annotations

from pathlib import Path

import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import invoke, verify_json

# A name and subnet no other test lab uses (tests/testdata/labs: sm .95, fn .96,
# fl .97, zk .98; the default lab .99).
NAME = "t3"
SUBNET = "192.168.94.0/24"


def test_new_default_layout_comes_up_and_verifies(tmp_path: Path) -> None:
    made = invoke("new", NAME, "--nodes", "3", "--subnet", SUBNET, "--inventory-dir", str(tmp_path))
    spec = tmp_path / f"{NAME}.yml"
    assert f"wrote {spec}" in made.stderr
    data = yaml.safe_load(spec.read_text())
    assert data["name"] == NAME and data["lab"]["subnet"] == SUBNET
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", str(spec))
        report = verify_json(str(spec))
        failed = [
            (c["id"], r["message"])
            for c in report["checks"]
            for r in c["results"]
            if r["status"] in ("fail", "error")
        ]
        assert report["ok"], failed
        checks = {c["id"]: c for c in report["checks"]}
        # Every engine node was tested across hosts on the new overlay.
        sources = {
            r["source"]
            for r in checks["connectivity.icmp"]["results"]
            if r["status"] == "pass" and r["network"] == "dn" and r["path"] == "cross-host"
        }
        assert sources == {"node1", "node2", "node3"}
    finally:
        down = invoke("down", "-i", str(spec), check=False)
    assert f"lab '{NAME}' is down" in down.stderr, down.stderr
    assert wait_until_clean(before) == []
