"""The default lab, end to end through the CLI: up, use, up again, env, verify, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker as docker_sdk
import pytest
from conftest import ROOT, invoke
from hostsnap import HostSnapshot, wait_until_clean

from overlaylab.layout import LabLayout

LAYOUT = LabLayout.for_cluster("lab")


def docker(
    node: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    host = env or {"DOCKER_HOST": f"unix://{LAYOUT.docker_socket(node)}"}
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **host},
        timeout=60,
    )


@pytest.fixture(scope="module")
def default_lab():
    before = HostSnapshot.take()
    up = invoke("up")
    yield {"before": before, "up": up}
    invoke("down", check=False)


def test_up_brings_up_the_default_lab(default_lab) -> None:
    err = default_lab["up"].stderr
    for step in ("nodes", "kv", "engines", "images", "networks", "stacks"):
        assert f"✓ {step}" in err
    assert "lab 'lab' is up" in err
    # The snapshot must see a running lab, or the final leak check would prove nothing.
    seen = default_lab["before"].differences(HostSnapshot.take())
    assert any("netns: added ol-lab.node1" in p for p in seen)
    assert any(p.startswith("process left running") and "dockerd" in p for p in seen)
    for node in ("node1", "node2", "node3"):
        version = docker(node, "version", "--format", "{{.Server.Version}}")
        assert version.stdout.startswith("20.10"), version.stderr
        client = docker_sdk.DockerClient(base_url=f"unix://{LAYOUT.docker_socket(node)}")
        info = client.info()  # the raw API: newer CLIs drop ClusterStore from `info`
        client.close()
        assert info["ClusterStore"] == "etcd://192.168.99.10:2379"
        assert info["Name"] == node  # its own UTS namespace


def test_container_on_node1_reaches_container_on_node2_by_name(default_lab) -> None:
    # The article's demo: web (node1) finds mongo (node2) by name over the overlay.
    ping = docker("node1", "exec", "demo_web_1", "ping", "-c", "1", "-W", "2", "mongo")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "10.0.9." in ping.stdout
    http = docker(
        "node1",
        "exec",
        "demo_web_1",
        "sh",
        "-c",
        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 mongo 27017',
    )
    assert "overlaylab probe" in http.stdout, http.stdout + http.stderr
    mongo_ip = docker(
        "node2", "inspect", "-f", "{{.NetworkSettings.Networks.dn.IPAddress}}", "mongo"
    )
    assert mongo_ip.stdout.strip() in ping.stdout


def test_overlay_is_one_network_on_every_engine(default_lab) -> None:
    ids = {
        docker(n, "network", "inspect", "-f", "{{.Id}} {{.Scope}}", "dn").stdout.strip()
        for n in ("node1", "node2", "node3")
    }
    assert len(ids) == 1 and ids.pop().endswith(" global")


def test_second_up_changes_nothing(default_lab) -> None:
    again = invoke("up")
    assert "is up to date: nothing changed" in again.stderr
    assert "started" not in again.stderr and "created" not in again.stderr


def test_env_points_the_docker_cli_at_a_node_over_mutual_tls(default_lab) -> None:
    lines = invoke("env", "node2").stdout
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in lines.splitlines()
        if line.startswith("export ")
    )
    assert env["DOCKER_HOST"] == "tcp://192.168.99.12:2376" and env["DOCKER_TLS_VERIFY"] == "1"
    names = docker("node2", "ps", "--format", "{{.Names}}", env=env)
    assert names.returncode == 0, names.stderr
    assert "mongo" in names.stdout.split()
    # The same endpoint without a client certificate is refused: TLS is mutual.
    bare = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ssl,socket;"
            "c=ssl.create_default_context(cafile='%s');c.check_hostname=False;"
            "s=c.wrap_socket(socket.create_connection(('192.168.99.12',2376),timeout=5));"
            "s.send(b'GET /_ping HTTP/1.0\\r\\n\\r\\n');print(s.recv(100))"
            % (Path(env["DOCKER_CERT_PATH"]) / "ca.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bare.returncode != 0 or b"200" not in bare.stdout.encode()


def test_eval_env_in_a_shell(default_lab) -> None:
    script = (
        f'cd {ROOT} && eval "$({sys.executable} -m invoke env node1)" '
        '&& docker ps --format "{{.Names}}"'
    )
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert "demo_web_1" in shell.stdout.split(), shell.stderr


def test_status_reports_every_node_and_the_kv_store(default_lab) -> None:
    snapshot = json.loads(invoke("status", "--format", "json").stdout)
    assert snapshot["up"] and snapshot["kv"]["ready"]
    engines = {e["node"]: e for e in snapshot["engines"]}
    assert set(engines) == {"node1", "node2", "node3"}
    assert all(e["engine"] == "up" and e["networks"] == ["dn"] for e in engines.values())
    assert engines["node1"]["cluster_advertise"] == "192.168.99.11:2376"


def test_minimal_verify_passes_on_a_healthy_lab(default_lab) -> None:
    result = invoke("verify", "--only", "connectivity")
    # 9 paths (6 cross-host, 3 same-host) x ICMP, DNS, TCP, UDP
    assert "0/36 checks failed" in result.stdout, result.stdout


def test_down_leaves_the_host_as_it_found_it(default_lab) -> None:
    down = invoke("down")
    assert "lab 'lab' is down" in down.stderr
    assert wait_until_clean(default_lab["before"]) == []
    again = invoke("down")
    assert "nothing was running" in again.stderr
