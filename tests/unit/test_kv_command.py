"""The KV store's command line per backend (nothing is started)."""

from __future__ import annotations

from pathlib import Path

from lab_specs import LAB_YML, ZK_YML, lab_variant, make_ctx

from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.spec import load_spec
from overlaylab.up.steps.kv import kv_command


def option(argv: list[str], flag: str) -> str:
    """The value after `flag` (which must appear exactly once)."""
    assert argv.count(flag) == 1, (flag, argv)
    return argv[argv.index(flag) + 1]


def test_etcd_command(tmp_path: Path) -> None:
    ctx = make_ctx(load_spec(LAB_YML), tmp_path)
    binary, argv = kv_command(ctx)
    assert binary == "etcd"
    assert argv[0] == "etcd"
    assert "--enable-v2=true" in argv
    assert option(argv, "--listen-client-urls") == "http://192.168.99.10:2379"
    assert option(argv, "--advertise-client-urls") == "http://192.168.99.10:2379"
    assert option(argv, "--name") == "kv"
    data = Path(option(argv, "--data-dir"))
    assert data.is_relative_to(tmp_path)
    assert data.is_relative_to(ctx.layout.node_dir("kv"))
    # The peer URL never leaves the node.
    assert option(argv, "--listen-peer-urls").startswith("http://127.0.0.1:")
    assert (
        option(argv, "--initial-cluster") == f"kv={option(argv, '--initial-advertise-peer-urls')}"
    )
    # A lone member elects itself quickly; etcd refuses an election timeout under
    # five heartbeats.
    heartbeat, election = (
        int(option(argv, "--heartbeat-interval")),
        int(option(argv, "--election-timeout")),
    )
    assert election <= 100 and election >= 5 * heartbeat
    # Building the command creates nothing.
    assert not any(tmp_path.iterdir())


def test_etcd_command_uses_the_configured_port(tmp_path: Path) -> None:
    ctx = make_ctx(lab_variant(kv={"port": 12379}), tmp_path)
    _, argv = kv_command(ctx)
    assert option(argv, "--listen-client-urls") == "http://192.168.99.10:12379"
    assert ctx.spec.cluster_store_url() == "etcd://192.168.99.10:12379"


def test_zookeeper_writes_zoo_cfg_into_the_node_dir(tmp_path: Path) -> None:
    spec = load_spec(ZK_YML)
    ctx = make_ctx(spec, tmp_path)
    binary, argv = kv_command(ctx)
    assert binary == "java"
    config = ctx.layout.node_dir("kv") / "zoo.cfg"
    assert argv == [str(ZOOKEEPER_SERVER), "start-foreground", str(config)]
    settings = dict(line.split("=", 1) for line in config.read_text().splitlines() if "=" in line)
    ip = str(spec.address_of("kv"))
    assert ip == "192.168.98.10"
    assert settings["clientPortAddress"] == ip
    assert settings["clientPort"] == "2181"
    data = Path(settings["dataDir"])
    assert data.is_relative_to(ctx.layout.node_dir("kv"))
    assert spec.cluster_store_url() == "zk://192.168.98.10:2181"


def test_zookeeper_command_is_repeatable(tmp_path: Path) -> None:
    ctx = make_ctx(load_spec(ZK_YML), tmp_path)
    first = kv_command(ctx)
    text = (ctx.layout.node_dir("kv") / "zoo.cfg").read_text()
    assert kv_command(ctx) == first
    assert (ctx.layout.node_dir("kv") / "zoo.cfg").read_text() == text


def test_consul_command(tmp_path: Path) -> None:
    ctx = make_ctx(lab_variant(kv={"backend": "consul"}), tmp_path)
    binary, argv = kv_command(ctx)
    assert binary == "consul"
    assert argv[:2] == ["consul", "agent"]
    assert "-server" in argv and "-bootstrap-expect=1" in argv
    fragments = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-hcl"]
    assert "disable_update_check = true" in fragments  # nothing leaves the lab
    assert "performance { raft_multiplier = 1 }" in fragments  # elects itself fast
    assert option(argv, "-bind") == "192.168.99.10"
    assert option(argv, "-client") == "192.168.99.10"
    assert option(argv, "-http-port") == "8500"
    assert option(argv, "-node") == "kv"
    assert Path(option(argv, "-data-dir")).is_relative_to(ctx.layout.node_dir("kv"))
    assert ctx.spec.cluster_store_url() == "consul://192.168.99.10:8500"
