"""daemon.json per engine node, rendered from templates/daemon.json.j2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lab_specs import SWARM_YML, lab_data, lab_variant, make_ctx

from overlaylab.context import LabContext
from overlaylab.spec import load_spec
from overlaylab.templates import render
from overlaylab.up.steps import engines
from overlaylab.up.steps.engines import daemon_config


def configs(ctx: LabContext) -> dict[str, dict[str, Any]]:
    return {n.name: daemon_config(ctx, n) for n in ctx.spec.engine_nodes}


def test_every_engine_node_gets_a_config_and_kv_gets_none(ctx: LabContext) -> None:
    assert sorted(configs(ctx)) == ["node1", "node2", "node3"]


def test_cluster_store_and_advertise(ctx: LabContext) -> None:
    for config in configs(ctx).values():
        assert config["cluster-store"] == "etcd://192.168.99.10:2379"
        assert config["cluster-advertise"] == "eth1:2376"
        assert "cluster-store-opts" not in config


def test_hosts_unix_socket_in_state_dir_and_tls_tcp(ctx: LabContext) -> None:
    config = daemon_config(ctx, ctx.spec.node("node2"))
    sock = ctx.layout.state_dir / "nodes" / "node2" / "docker.sock"
    assert config["hosts"] == [f"unix://{sock}", "tcp://192.168.99.12:2376"]


def test_tls_files_in_the_node_tls_dir(ctx: LabContext) -> None:
    config = daemon_config(ctx, ctx.spec.node("node1"))
    tls = ctx.layout.node_dir("node1") / "tls"
    assert config["tls"] is True
    assert config["tlsverify"] is True
    assert config["tlscacert"] == str(tls / "ca.pem")
    assert config["tlscert"] == str(tls / "cert.pem")
    assert config["tlskey"] == str(tls / "key.pem")


def test_all_engine_paths_stay_inside_the_node_dir(ctx: LabContext) -> None:
    node_dir = ctx.layout.node_dir("node3")
    config = daemon_config(ctx, ctx.spec.node("node3"))
    for key in ("data-root", "exec-root", "pidfile", "deprecated-key-path"):
        assert Path(config[key]).is_relative_to(node_dir), key
    # Without deprecated-key-path dockerd 20.10 writes /etc/docker/key.json.
    assert config["deprecated-key-path"] != "/etc/docker/key.json"


def test_pidfile_differs_from_the_providers_own_pid_file(ctx: LabContext) -> None:
    # dockerd rewrites and removes its pidfile; the provider's must stay its own.
    for name, config in configs(ctx).items():
        assert Path(config["pidfile"]) != ctx.layout.pid_file(name, engines.SERVICE)


def test_pidfiles_and_data_roots_are_distinct_per_node(ctx: LabContext) -> None:
    all_configs = configs(ctx).values()
    for key in ("pidfile", "data-root", "exec-root"):
        assert len({c[key] for c in all_configs}) == 3, key


def test_cgroup_parent_and_mtu(ctx: LabContext) -> None:
    config = daemon_config(ctx, ctx.spec.node("node1"))
    assert config["cgroup-parent"] == "overlaylab-lab.node1"
    # The lab's cgroup-parent is no systemd .slice: never the systemd driver (the one
    # dockerd picks by itself on cgroup v2 with systemd, and then refuses to start).
    assert config["exec-opts"] == ["native.cgroupdriver=cgroupfs"]
    assert config["mtu"] == 1500


def test_no_tcp_host_and_no_tls_keys_without_tls(tmp_path: Path) -> None:
    ctx = make_ctx(lab_variant(engine={"tls": False}), tmp_path)
    config = daemon_config(ctx, ctx.spec.node("node1"))
    assert config["hosts"] == [f"unix://{ctx.layout.docker_socket('node1')}"]
    assert not any(h.startswith("tcp://") for h in config["hosts"])
    for key in ("tls", "tlsverify", "tlscacert", "tlscert", "tlskey"):
        assert key not in config
    assert config["cluster-store"] == "etcd://192.168.99.10:2379"


def test_custom_api_port(tmp_path: Path) -> None:
    ctx = make_ctx(lab_variant(engine={"api_port": 12376}), tmp_path)
    assert daemon_config(ctx, ctx.spec.node("node1"))["hosts"][1] == "tcp://192.168.99.11:12376"


def test_extra_daemon_keys_pass_through(tmp_path: Path) -> None:
    extra = {
        "debug": True,
        "log-level": "warn",
        "default-address-pools": [{"base": "172.80.0.0/16", "size": 24}],
        "insecure-registries": [],
    }
    ctx = make_ctx(lab_variant(engine={"daemon": extra}), tmp_path)
    config = daemon_config(ctx, ctx.spec.node("node1"))
    for key, value in extra.items():
        assert config[key] == value


def test_cluster_store_opts_pass_through(tmp_path: Path) -> None:
    opts = {"kv.path": "/ol", "discovery.heartbeat": "5"}
    ctx = make_ctx(lab_variant(engine={"cluster-store-opts": opts}), tmp_path)
    assert daemon_config(ctx, ctx.spec.node("node1"))["cluster-store-opts"] == opts


def test_labels_sorted_key_equals_value(tmp_path: Path) -> None:
    nodes = lab_data()["nodes"]
    nodes[1]["labels"] = {"zone": "b", "disk": "ssd"}
    ctx = make_ctx(lab_variant(nodes=nodes), tmp_path)
    assert daemon_config(ctx, ctx.spec.node("node1"))["labels"] == ["disk=ssd", "zone=b"]
    assert "labels" not in daemon_config(ctx, ctx.spec.node("node2"))


def test_swarm_mode_spec_has_no_cluster_store_keys(tmp_path: Path) -> None:
    spec = load_spec(SWARM_YML)
    ctx = make_ctx(spec, tmp_path, SWARM_YML)
    for node in spec.engine_nodes:
        config = daemon_config(ctx, node)
        assert "cluster-store" not in config
        assert "cluster-advertise" not in config
        assert "cluster-store-opts" not in config
        assert config["cgroup-parent"] == f"overlaylab-swarm.{node.name}"


def test_template_is_valid_json_for_awkward_values(tmp_path: Path) -> None:
    # Quotes, backslashes and spaces in paths must be JSON-escaped, not pasted.
    text = render(
        "daemon.json.j2",
        node_dir=str(tmp_path / 'we"ird\\dir with space'),
        hosts=["unix:///x y.sock"],
        tls=True,
        tls_dir='/t"ls',
        cluster_store="etcd://10.0.0.1:2379",
        cluster_advertise="eth1:2376",
        cluster_store_opts={"kv.path": '/a"b'},
        labels=['k="v"'],
        extra={"weird\nkey": {"n": None}},
        cgroup_parent="overlaylab-x-y",
        mtu=1400,
    )
    config = json.loads(text)
    assert config["data-root"] == str(tmp_path / 'we"ird\\dir with space') + "/data"
    assert config["tlscacert"] == '/t"ls/ca.pem'
    assert config["weird\nkey"] == {"n": None}
    assert config["labels"] == ['k="v"']


@pytest.mark.parametrize("tls", [True, False])
@pytest.mark.parametrize("store", [None, "auto"])
def test_every_combination_renders_valid_json(tmp_path: Path, tls: bool, store: str | None) -> None:
    text = render(
        "daemon.json.j2",
        node_dir="/n",
        hosts=["unix:///n/docker.sock"],
        tls=tls,
        tls_dir="/n/tls",
        cluster_store=store,
        cluster_advertise="eth1:2376" if store else None,
        cluster_store_opts={},
        labels=[],
        extra={},
        cgroup_parent="overlaylab-x-y",
        mtu=1500,
    )
    config = json.loads(text)
    assert ("tls" in config) is tls
    assert ("cluster-store" in config) is bool(store)
    assert "labels" not in config
