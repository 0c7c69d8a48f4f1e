"""Names and paths a lab derives from its cluster name (no machine state involved)."""

from __future__ import annotations

import re
from pathlib import Path

from fakelab import classic_lab_spec, fault_lab_spec

from overlaylab import layout as layout_mod
from overlaylab.layout import LabLayout
from overlaylab.spec.models import NAME_PATTERN

IFNAMSIZ = 15  # Linux interface names: 15 characters plus the NUL
SUN_PATH = 107  # usable bytes of a unix socket path
LONGEST = "a" * 12  # the longest name NAME_PATTERN allows (cluster and node alike)


def test_longest_allowed_name_is_twelve_characters() -> None:
    assert re.fullmatch(NAME_PATTERN, LONGEST)
    assert not re.fullmatch(NAME_PATTERN, LONGEST + "a")
    # The switch namespace relies on '.' never appearing in a node name.
    assert not re.fullmatch(NAME_PATTERN, "x.switch")


def test_names_for_the_default_cluster(tmp_path: Path) -> None:
    lay = LabLayout.for_cluster("lab", tmp_path)
    assert lay.node_ns("node1") == "ol-lab.node1"
    assert lay.switch_ns == "ol-lab._switch"
    assert lay.host_link == "ol-lab"
    assert lay.switch_port("node1") == "p-node1"
    assert lay.ns_prefix == "ol-lab."
    assert lay.cgroup_parent("node1") == "overlaylab-lab.node1"
    assert lay.cgroup_parent("node1").startswith(lay.cgroup_prefix)


def test_default_state_dir_is_under_the_state_root() -> None:
    lay = LabLayout.for_cluster("lab")
    assert lay.state_dir == layout_mod.DEFAULT_STATE_ROOT / "lab"


def test_files_live_under_the_given_state_dir(tmp_path: Path) -> None:
    lay = LabLayout.for_cluster("lab", tmp_path)
    node = tmp_path / "nodes" / "node1"
    assert lay.state_dir == tmp_path
    assert lay.node_dir("node1") == node
    assert lay.docker_socket("node1") == node / "docker.sock"
    assert lay.daemon_config("node1") == node / "daemon.json"
    assert lay.pid_file("node1", "dockerd") == node / "dockerd.pid"
    assert lay.log_file("node1", "etcd") == node / "etcd.log"
    assert lay.tls_dir == tmp_path / "tls"
    assert lay.client_cert_dir == tmp_path / "tls" / "client"
    assert lay.state_file == tmp_path / "state.json"
    assert lay.images_dir == tmp_path / "images"


def test_switch_ns_never_collides_with_a_node_ns() -> None:
    lay = LabLayout.for_cluster("lab", "/nonexistent")
    for node in ("switch", "lab", "node1", LONGEST, "a-switch"):
        assert lay.node_ns(node) != lay.switch_ns
    assert "_" not in lay.node_ns("switch")  # node names cannot hold an underscore


def test_interface_names_fit_ifnamsiz_for_the_longest_names() -> None:
    lay = LabLayout.for_cluster(LONGEST, "/nonexistent")
    assert len(lay.host_link) <= IFNAMSIZ
    assert len(lay.switch_port(LONGEST)) <= IFNAMSIZ
    assert len(LabLayout.SWITCH_BRIDGE) <= IFNAMSIZ
    assert len(LabLayout.SWITCH_HOST_PORT) <= IFNAMSIZ
    # The switch's host port must not be mistaken for any node's port.
    assert not LabLayout.SWITCH_HOST_PORT.startswith("p-")


def test_docker_socket_fits_sun_path_under_the_default_root() -> None:
    lay = LabLayout(LONGEST, Path("/var/lib/overlaylab") / LONGEST)
    assert len(str(lay.docker_socket(LONGEST)).encode()) <= SUN_PATH


def test_owns_its_own_namespaces_only() -> None:
    lay = LabLayout.for_cluster("lab", "/nonexistent")
    assert lay.owns_ns("ol-lab._switch")
    assert lay.owns_ns("ol-lab.node1")
    assert lay.owns_ns(lay.node_ns(LONGEST))
    for foreign in ("ol-lab2.switch", "ol-lab2-node1", "ol-la-node1", "lab-node1", "ol-lab"):
        assert not lay.owns_ns(foreign), foreign


def test_does_not_own_namespaces_of_a_cluster_whose_name_extends_with_a_dash() -> None:
    lab = LabLayout.for_cluster("lab", "/nonexistent")
    other = LabLayout.for_cluster("lab-x", "/nonexistent")
    assert not lab.owns_ns(other.switch_ns)
    assert not lab.owns_ns(other.node_ns("node1"))


def test_cgroup_prefix_does_not_match_a_cluster_whose_name_extends_with_a_dash() -> None:
    lab = LabLayout.for_cluster("lab", "/nonexistent")
    other = LabLayout.for_cluster("lab-x", "/nonexistent")
    assert not other.cgroup_parent("node1").startswith(lab.cgroup_prefix)


def test_each_engine_keeps_one_scheduling_address_at_the_top_of_a_classic_overlay() -> None:
    spec = classic_lab_spec()
    engines = [n.name for n in spec.engine_nodes]
    assert engines == ["master", "a", "b"]
    assert [layout_mod.schedule_address(spec, "dn", n) for n in engines] == [
        "10.0.26.254",
        "10.0.26.253",
        "10.0.26.252",
    ]
    # Only classic swarm schedules probes; a node that runs no engine, or an overlay
    # the spec does not know, has none.
    assert layout_mod.schedule_address(spec, "dn", "kv") is None
    assert layout_mod.schedule_address(spec, "other", "a") is None
    default = fault_lab_spec()
    assert layout_mod.schedule_address(default, default.networks[0].name, "node1") is None
    # Without a subnet in the spec the engine picks the address (--ip needs a subnet).
    bare = classic_lab_spec()
    bare.networks[0].subnet = None
    assert layout_mod.schedule_address(bare, "dn", "a") is None
