"""Classic swarm as docker-machine's --swarm flags ran it, on real engines: agents and a
master from the `swarm` image built offline from a static `swarm` binary, discovery in
the lab's etcd, scheduling through the master, and the diagnoses for an agent missing
from discovery and an agent advertising the wrong address.

Needs a static classic swarm 1.2.9 binary as `swarm` on PATH (a public Go program no
registry here has: build it from its repository). Without it the tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, causes, failures, invoke, verify_json

from overlaylab.context import LabContext, open_lab
from overlaylab.faults import heal_faults, inject_fault
from overlaylab.spec.models import PROBE_IMAGE
from overlaylab.up.classic_swarm import AGENT, master_cli, masters
from overlaylab.waiting import wait_until

SPEC = ROOT / "tests/testdata/labs/classic.yml"
ETCD = "http://192.168.86.10:2379/v2/keys/docker/swarm/nodes"

pytestmark = pytest.mark.skipif(
    shutil.which("swarm") is None,
    reason="needs a static classic swarm binary (`swarm`, 1.2.9) on PATH to build its image",
)


@pytest.fixture(scope="module")
def classic_lab() -> Iterator[LabContext]:
    before = HostSnapshot.take()
    try:
        up = invoke("up", "-i", str(SPEC))
        assert "lists 3 healthy nodes" in up.stderr
        yield open_lab(SPEC)
    finally:
        invoke("down", "-i", str(SPEC), check=False)
    assert wait_until_clean(before) == []


def forget(address: str) -> None:
    """Remove an agent's registration from etcd (it would expire only after 180 s)."""
    request = urllib.request.Request(f"{ETCD}/{address}", method="DELETE")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # lab traffic only
    with direct.open(request, timeout=5):
        pass


def swarm_results(spec: str = str(SPEC)) -> dict[str, dict[str, object]]:
    report = verify_json(spec, "--only", "swarm.nodes")
    [check] = report["checks"]
    return {r["target"]: r for r in check["results"]}


def test_verify_is_green_and_the_master_schedules_by_constraint(classic_lab: LabContext) -> None:
    report = verify_json(str(SPEC))
    assert report["ok"], failures(report)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["swarm.nodes"]["status"] == "pass"
    assert {r["target"] for r in checks["swarm.schedule"]["results"]} == {"master", "a", "b"}
    assert checks["swarm.schedule"]["status"] == "pass"


def test_env_swarm_points_the_cli_at_the_master(classic_lab: LabContext) -> None:
    exports = invoke("env", "--swarm", "master", "-i", str(SPEC)).stdout
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in exports.splitlines()
        if line.startswith("export ")
    )
    assert env["DOCKER_HOST"] == "tcp://192.168.86.11:3376"
    info = subprocess.run(
        ["docker", "info", "--format", "{{json .SystemStatus}}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    status = json.loads(info.stdout)
    assert ["Nodes", "3"] in status, info.stderr


def test_an_agent_missing_from_discovery_is_named(classic_lab: LabContext) -> None:
    with classic_lab.node("a").engine() as client:
        client.containers.get(AGENT).remove(force=True)
    forget("192.168.86.12:2376")
    try:
        result = swarm_results()["a"]
        assert result["status"] == "fail"
        assert "is not registered in etcd://192.168.86.10:2379" in str(result["message"])
        assert AGENT in str(result["hint"])
    finally:
        invoke("up", "-i", str(SPEC))  # puts the agent back; it registers at once
    assert swarm_results()["a"]["status"] == "pass"


def test_an_agent_advertising_the_wrong_address_is_named(classic_lab: LabContext) -> None:
    image = classic_lab.spec.orchestration.swarm_image
    with classic_lab.node("b").engine() as client:
        client.containers.get(AGENT).remove(force=True)
        client.containers.run(
            image,
            ["join", "--advertise", "192.168.86.13:2375", "etcd://192.168.86.10:2379"],
            name=AGENT,
            detach=True,
            network_mode="host",
        )
    forget("192.168.86.13:2376")
    try:
        result = swarm_results()["b"]
        assert result["status"] == "fail"
        assert "its agent advertises 192.168.86.13:2375, the engine is 192.168.86.13:2376" in str(
            result["message"]
        )
    finally:
        invoke("up", "-i", str(SPEC))  # the agent's command differs: made again
        with contextlib.suppress(urllib.error.HTTPError):
            forget("192.168.86.13:2375")
    assert swarm_results()["b"]["status"] == "pass"


def test_the_stack_went_through_the_master_pinned_by_constraint(classic_lab: LabContext) -> None:
    master = masters(classic_lab.spec)[0]
    listed = master_cli(classic_lab, master, "ps", "--format", "{{.Names}}").stdout.split()
    # Swarm 1.2.9 names each container <node>/<name>: placed as the spec says.
    assert {"a/demo_web_1", "b/mongo"} <= set(listed), listed
    override = classic_lab.layout.state_dir / "stacks" / "demo.swarm-master.yml"
    assert "constraint:node==a" in override.read_text()


def test_images_made_here_have_one_id_on_every_engine(classic_lab: LabContext) -> None:
    """The master shows one engine's id for a name: with an id per engine, compose
    re-created the stack through the master after an engine restart."""
    for name in (PROBE_IMAGE, classic_lab.spec.orchestration.swarm_image):
        ids = set()
        for node in ("master", "a", "b"):
            with classic_lab.node(node).engine() as client:
                ids.add(client.images.get(name).id)
        assert len(ids) == 1, (name, ids)


def test_gossip_cut_and_healed_leaves_no_stale_entry_for_later_probes(
    classic_lab: LabContext,
) -> None:
    """With addresses handed out anew, the scheduling probes met entries left while b's
    gossip was cut, verifies after the heal: each node's probe keeps its own address."""
    inject_fault(classic_lab, "gossip", ["b"])
    try:
        assert causes(verify_json(str(SPEC))) == ["serf gossip to b is blocked (tcp+udp 7946)"]
        verify_json(str(SPEC))  # probes started and removed while b hears nothing
    finally:
        heal_faults(classic_lab, "gossip")
    for _ in range(4):
        report = verify_json(str(SPEC))
        assert report["ok"], failures(report)
    [schedule] = [c for c in report["checks"] if c["id"] == "swarm.schedule"]
    asked = {r["target"]: r["command"] for r in schedule["results"]}
    assert "--ip 10.0.26.252" in asked["b"] and "--ip 10.0.26.254" in asked["master"]


def test_an_agent_cut_off_is_one_cause_found_within_the_window(classic_lab: LabContext) -> None:
    """The master answers no start while b is cut off: verify still ends within its
    windows, names the cut alone, and is green again once b is back."""
    inject_fault(classic_lab, "cut", ["b"])
    try:
        report = verify_json(str(SPEC))
    finally:
        heal_faults(classic_lab, "cut")
    assert causes(report) == ["b is cut off the lab network"], failures(report)
    assert report["seconds"] < 30
    assert wait_until(lambda: verify_json(str(SPEC))["ok"], 60, 2)
