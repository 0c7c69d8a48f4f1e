"""The default lab, end to end through the CLI: up, use, up again, env, verify, down."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import docker as docker_sdk
import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, evidence, forwarding_per_engine, invoke, key_material

from overlaylab.context import open_lab
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


# What Go's TLS server sends a client that shows no certificate under
# RequireAndVerifyClientCert: certificate_required in TLS 1.3, bad_certificate in 1.2.
CLIENT_CERTIFICATE_REFUSED = {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE"}


def tls_to(host: str, port: int, cert_dir: Path, *, client_cert: bool) -> ssl.SSLSocket:
    """A TLS connection that verifies the engine against the lab CA (and its address)."""
    context = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    if client_cert:
        context.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
    raw = socket.create_connection((host, port), timeout=5)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def read_to_end(sock: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def default_lab():
    before = HostSnapshot.take()
    up = invoke("up")
    yield {"before": before, "up": up}
    invoke("down", check=False)


def test_up_brings_up_the_default_lab(default_lab) -> None:
    err = default_lab["up"].stderr
    for step in ("nodes", "kv", "engines", "images", "gossip", "networks", "stacks"):
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
    # The lab's state (engines' data roots, the store's data) is kept in memory.
    assert f"state: {LAYOUT.state_dir} in memory (tmpfs)" in err
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    assert f"overlaylab-lab {LAYOUT.state_dir} tmpfs rw,relatime,mode=755 0 0" in mounts
    assert any(
        line.startswith(f"overlaylab-lab {LAYOUT.state_dir}/nodes/node1/data ") for line in mounts
    )


def test_every_engine_believes_forwarding_is_on_right_after_up(default_lab) -> None:
    seen = forwarding_per_engine(open_lab("inventory/lab.yml"))
    assert seen == {node: ("1", True) for node in ("node1", "node2", "node3")}


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


@pytest.mark.parametrize(
    "client",
    [["wget", "-qO-", "http://web:5000/"], ["curl", "-sf", "http://demo_web_1:5000/"]],
)
def test_a_probe_reaches_the_demo_web_service_over_http_by_name(
    default_lab, client: list[str]
) -> None:
    """What a user tries first inside a probe (busybox's own wget crashed: exit 139)."""
    got = docker("node2", "run", "--rm", "--network", "dn", "overlaylab/probe:1", *client)
    assert (got.returncode, got.stdout) == (0, "overlaylab probe\n"), got.stderr


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
    # Mutual TLS: the engine refuses a client without a certificate during the TLS
    # handshake, and answers the same request once the client certificate is shown.
    host, port = env["DOCKER_HOST"].removeprefix("tcp://").rsplit(":", 1)
    cert_dir = Path(env["DOCKER_CERT_PATH"])
    # TLS 1.3 completes the client's side of the handshake first: the server's verdict
    # on the missing certificate arrives as an alert on the first read.
    with (
        pytest.raises(ssl.SSLError) as refused,
        tls_to(host, int(port), cert_dir, client_cert=False) as bare,
    ):
        bare.recv(1)
    assert refused.value.reason in CLIENT_CERTIFICATE_REFUSED, refused.value
    with tls_to(host, int(port), cert_dir, client_cert=True) as mutual:
        mutual.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        response = read_to_end(mutual)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"200", response
    assert body == b"OK", response


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
    # 9 paths (6 cross-host, 3 same-host) x ICMP, DNS, TCP, UDP, and probes.running per node
    assert "0/39 checks failed" in result.stdout, result.stdout


NODE_EVIDENCE = (
    "engine/dockerd.log",
    "engine/info.json",
    "engine/overlays.json",
    "net/iptables-save.txt",
    "net/overlay-sandboxes.txt",
    "kernel/sysctl.txt",
)


def test_logs_archives_the_labs_evidence_without_secrets(default_lab, tmp_path: Path) -> None:
    target = tmp_path / "evidence.tar.gz"
    done = invoke("logs", "-o", str(target))
    assert done.stdout.strip() == str(target)
    manifest, files = evidence(target)
    assert manifest["cluster"] == "lab" and manifest["not_collected"] == []
    report = json.loads(files["verify/report.json"])
    assert report["ok"] and manifest["verify"].startswith("ran: 0/")
    for node in ("node1", "node2", "node3"):
        for item in NODE_EVIDENCE:
            assert files[f"{node}/{item}"], (node, item)
        assert json.loads(files[f"{node}/engine/info.json"])["Name"] == node
        assert b"vxlan" in files[f"{node}/net/overlay-sandboxes.txt"]  # the overlay's device
    assert b"/docker/nodes/" in files["lab/kv-keys-etcd.txt"]
    assert b"API listen on" in files["node1/engine/dockerd.log"]
    assert "verify/report.html" in files and "lab/rendered/machines.json" in files
    every_byte = b"".join(files.values())
    assert b"PRIVATE KEY" not in every_byte
    secrets = key_material(LAYOUT.state_dir)
    assert secrets and not any(line in every_byte for line in secrets)
    assert target.stat().st_size < 2 * 1024 * 1024


def test_logs_of_a_lab_with_a_dead_engine_says_what_it_could_not_collect(
    default_lab, tmp_path: Path
) -> None:
    pid = int(LAYOUT.pid_file("node3", "dockerd").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        target = tmp_path / "dead.tar.gz"
        done = invoke("logs", "--no-verify", "-o", str(target))
        assert "not collected node3/engine/info.json" in done.stderr
        manifest, files = evidence(target)
        missing = {m["path"]: m["reason"] for m in manifest["not_collected"]}
        assert "node3/engine/info.json" in missing and "node1/engine/info.json" not in missing
        assert files["node3/engine/dockerd.log"]  # what it said before it died
        assert files["node3/net/iptables-save.txt"]  # the node is still there
        assert manifest["verify"] == "skipped (--no-verify)"
    finally:
        invoke("up")  # restarts node3's engine for the tests after this one


def test_down_leaves_the_host_as_it_found_it(default_lab) -> None:
    down = invoke("down")
    assert "lab 'lab' is down" in down.stderr
    assert wait_until_clean(default_lab["before"]) == []
    again = invoke("down")
    assert "nothing was running" in again.stderr
