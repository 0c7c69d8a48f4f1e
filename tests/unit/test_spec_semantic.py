"""Cross-field checks: each gets an inline spec and its exact message (line, path, fix)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from overlaylab.errors import SpecError
from overlaylab.spec import load_spec
from overlaylab.spec.compose import MAX_COMPOSE_BYTES
from overlaylab.spec.semantic import format_path

# Inline specs start with these three lines, so the body's first line is line 4.
HEAD = "apiVersion: overlaylab/v1\nkind: Cluster\nname: t\n"
# Body lines that switch the KV store and the legacy overlay off.
NO_KV = "kv: null\nengine: {cluster-store: null, cluster-advertise: null}\n"
# A KV node and one engine node.
KV_AND_A = "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: a}\n"
NO_KV_HINT = "configure kv: or set cluster-store: null (swarm mode) or a URL"


def write_spec(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    """Write tmp_path/spec.yml plus any files it names (relative to the spec's folder)."""
    path = tmp_path / "spec.yml"
    path.write_text(HEAD + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    for name, text in (files or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path, body, files))
    return info.value.problems


def loads(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> None:
    load_spec(write_spec(tmp_path, body, files))


def test_format_path() -> None:
    assert format_path(("nodes", 2, "address")) == "nodes[2].address"
    assert format_path(("engine", "cluster-store")) == "engine.cluster-store"
    assert format_path(("nodes", 0, "labels", "com.example")) == "nodes[0].labels['com.example']"
    assert format_path(()) == "(top level)"


# --- nodes and addresses --------------------------------------------------------------


def test_duplicate_node_names(tmp_path: Path) -> None:
    body = NO_KV + "nodes:\n  - name: a\n  - name: a\n"
    assert problems(tmp_path, body) == [
        "line 8, nodes[1].name: duplicate node name 'a' (also nodes[0]); node names must be unique"
    ]


def test_duplicate_addresses(tmp_path: Path) -> None:
    body = (
        NO_KV
        + "nodes:\n  - {name: a, address: 192.168.99.20}\n  - {name: b, address: 192.168.99.20}\n"
    )
    assert problems(tmp_path, body) == [
        "line 8, nodes[1].address: address 192.168.99.20 is already used by nodes[0] (a); "
        "every node needs its own address"
    ]


def test_address_placement(tmp_path: Path) -> None:
    body = """
    kv: null
    engine: {cluster-store: null, cluster-advertise: null}
    lab: {subnet: 10.1.0.0/29}
    provider: {type: local, host_address: 10.1.0.5}
    nodes:
      - {name: a, address: 10.2.0.1}
      - {name: b}
      - {name: c, address: 10.1.0.0}
      - {name: d, address: 10.1.0.7}
      - {name: e, address: 10.1.0.5}
    """
    inside = "use an address inside it or change lab.subnet"
    hosts = "use a host address between 10.1.0.1 and 10.1.0.6"
    assert problems(tmp_path, body) == [
        f"line 9, nodes[0].address: 10.2.0.1 is outside lab.subnet 10.1.0.0/29; {inside}",
        # .10 is the default for the first node without an address, outside a /29.
        f"line 10, nodes[1].address (default): 10.1.0.10 is outside lab.subnet 10.1.0.0/29; "
        f"{inside}",
        f"line 11, nodes[2].address: 10.1.0.0 is the network address of lab.subnet "
        f"10.1.0.0/29; {hosts}",
        f"line 12, nodes[3].address: 10.1.0.7 is the broadcast address of lab.subnet "
        f"10.1.0.0/29; {hosts}",
        "line 13, nodes[4].address: 10.1.0.5 is the host's own address on the lab switch "
        "(provider.host_address); pick another address or move host_address",
    ]


def test_host_address_only_counts_with_host_link(tmp_path: Path) -> None:
    body = NO_KV + (
        "provider: {type: local, host_link: false, host_address: 192.168.99.10}\n"
        "nodes: [{name: a, address: 192.168.99.10}]\n"
    )
    loads(tmp_path, body)


def test_host_address_outside_subnet(tmp_path: Path) -> None:
    body = NO_KV + "provider: {type: local, host_address: 10.9.9.1}\nnodes: [{name: a}]\n"
    assert problems(tmp_path, body) == [
        "line 6, provider.host_address: 10.9.9.1 is outside lab.subnet 192.168.99.0/24; "
        "use an address inside it"
    ]


def test_at_least_one_engine_node(tmp_path: Path) -> None:
    assert problems(tmp_path, "nodes:\n  - {name: kv, roles: [kv]}\n") == [
        "line 4, nodes: no node runs an engine; give at least one node a role other than kv, "
        "e.g. roles: [engine]"
    ]


# --- overlay networks -----------------------------------------------------------------


def test_network_checks(tmp_path: Path) -> None:
    body = """
    kv: null
    engine: {cluster-store: null, cluster-advertise: null}
    orchestration: {mode: swarm-mode}
    nodes:
      - {name: a, roles: [manager]}
    networks:
      - {name: x, subnet: 192.168.0.0/16}
      - {name: y, subnet: 10.0.0.0/16}
      - {name: z, subnet: 10.0.9.0/24}
      - {name: x}
      - {name: g, gateway: 10.5.0.1}
      - {name: h, subnet: 10.6.0.0/24, gateway: 10.5.0.1}
    """
    assert problems(tmp_path, body) == [
        "line 10, networks[0].subnet: 192.168.0.0/16 overlaps lab.subnet 192.168.99.0/24; "
        "containers could not tell overlay peers from lab hosts; pick a disjoint range such "
        "as 10.0.9.0/24",
        "line 12, networks[2].subnet: 10.0.9.0/24 overlaps networks[1] (y, 10.0.0.0/16); "
        "give each overlay a disjoint subnet",
        "line 13, networks[3].name: duplicate network name 'x' (also networks[0]); "
        "network names must be unique",
        "line 14, networks[4].gateway: a gateway needs a subnet; add subnet: or drop gateway:",
        "line 15, networks[5].gateway: 10.5.0.1 is outside the network's subnet 10.6.0.0/24",
    ]


def test_overlay_needs_store_or_swarm_mode(tmp_path: Path) -> None:
    body = NO_KV + "nodes: [{name: a}]\nnetworks:\n  - name: dn\n    driver: overlay\n"
    assert problems(tmp_path, body) == [
        "line 9, networks[0].driver: an overlay network needs engine.cluster-store (legacy "
        "overlay) or orchestration.mode: swarm-mode; set one of them"
    ]


# --- KV store -------------------------------------------------------------------------


def test_kv_node_unknown(tmp_path: Path) -> None:
    body = "nodes:\n  - {name: kvv, roles: [kv]}\n  - {name: a}\n"
    assert problems(tmp_path, body) == [
        # kv is absent, so kv.node is its default `kv`; the line is the top mapping's.
        "line 1, kv.node (default): no node is named 'kv'; did you mean 'kvv'? "
        "(nodes: kvv, a); add a node with roles: [kv] or set kv: null for no KV store",
        "line 5, nodes[0].roles: node 'kvv' has role kv but the store runs on kv.node 'kv'; "
        "only that node may have role kv",
    ]


def test_kv_node_lacks_role(tmp_path: Path) -> None:
    body = "kv: {node: a}\nnodes:\n  - {name: a}\n  - {name: b}\n"
    assert problems(tmp_path, body) == [
        "line 4, kv.node: node 'a' lacks role kv; add kv to its roles"
    ]


def test_kv_role_without_kv(tmp_path: Path) -> None:
    body = NO_KV + "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: a}\n"
    assert problems(tmp_path, body) == [
        "line 7, nodes[0].roles: node 'kv' has role kv but kv is null; "
        "configure kv: (backend, node) or drop the kv role"
    ]


# --- cluster-store and cluster-advertise ----------------------------------------------


def test_cluster_store_auto_without_kv(tmp_path: Path) -> None:
    assert problems(tmp_path, "kv: null\nnodes: [{name: a}]\n") == [
        "line 1, engine.cluster-store (default): auto derives the URL from kv:, but kv is "
        f"null; {NO_KV_HINT}"
    ]


def test_cluster_store_explicit_auto_without_kv(tmp_path: Path) -> None:
    body = "kv: null\nengine:\n  cluster-store: auto\nnodes: [{name: a}]\n"
    assert problems(tmp_path, body) == [
        f"line 6, engine.cluster-store: auto derives the URL from kv:, but kv is null; {NO_KV_HINT}"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "consul:/10.0.0.1:8500",
            "'consul:/10.0.0.1:8500' is not SCHEME://HOST:PORT[/path] with SCHEME one of "
            "consul, etcd, zk; e.g. etcd://192.168.99.10:2379, or auto",
        ),
        (
            "etcd://10.0.0.1",
            "'etcd://10.0.0.1' is not SCHEME://HOST:PORT[/path] with SCHEME one of "
            "consul, etcd, zk; e.g. etcd://192.168.99.10:2379, or auto",
        ),
        (
            "redis://10.0.0.1:6379/x",
            "scheme 'redis' is not a libkv discovery backend; use one of consul, etcd, zk",
        ),
        (
            "zookeeper://10.0.0.1:2181",
            "scheme 'zookeeper' is not a libkv discovery backend; use one of consul, etcd, zk",
        ),
    ],
)
def test_cluster_store_url_form(tmp_path: Path, url: str, message: str) -> None:
    body = f"kv: null\nengine:\n  cluster-store: {url}\nnodes: [{{name: a}}]\n"
    assert problems(tmp_path, body) == [f"line 6, engine.cluster-store: {message}"]


@pytest.mark.parametrize(
    "url", ["etcd://10.0.0.1:2379", "etcd://10.0.0.1:2379,10.0.0.2:2379/lab", "zk://zk:2181"]
)
def test_cluster_store_url_accepted(tmp_path: Path, url: str) -> None:
    loads(tmp_path, f"kv: null\nengine:\n  cluster-store: {url}\nnodes: [{{name: a}}]\n")


def test_cluster_store_removed_in_23(tmp_path: Path) -> None:
    body = 'engine:\n  version: "23.0"\nnodes:\n  - {name: kv, roles: [kv]}\n  - {name: a}\n'
    assert problems(tmp_path, body) == [
        "line 4, engine.cluster-store (default): Docker removed cluster-store in 23.0; "
        'dockerd 23.0 refuses to start with it; use engine.version: "20.10", or '
        "orchestration.mode: swarm-mode with cluster-store: null"
    ]


def test_cluster_store_with_swarm_mode(tmp_path: Path) -> None:
    body = """
    orchestration:
      mode: swarm-mode
    nodes:
      - {name: kv, roles: [kv]}
      - {name: a, roles: [engine, manager]}
    """
    assert problems(tmp_path, body) == [
        "line 1, engine.cluster-store (default): dockerd 20.10 says '--cluster-store and "
        "--cluster-advertise daemon configurations are incompatible with swarm mode'; set "
        "cluster-store: null and cluster-advertise: null for swarm-mode"
    ]


def test_advertise_without_store(tmp_path: Path) -> None:
    body = "kv: null\nengine:\n  cluster-store: null\nnodes: [{name: a}]\n"
    assert problems(tmp_path, body) == [
        "line 5, engine.cluster-advertise (default): cluster-advertise without cluster-store "
        "is refused by dockerd; set cluster-advertise: null or configure cluster-store"
    ]


def test_advertise_interface_of_provider(tmp_path: Path) -> None:
    body = "engine:\n  cluster-advertise: eth0:2376\n" + KV_AND_A
    assert problems(tmp_path, body) == [
        "line 5, engine.cluster-advertise: interface 'eth0' does not exist on local nodes "
        "(they have: eth1); did you mean 'eth1'? e.g. eth1:2376"
    ]


def test_advertise_interface_of_ssh_hosts(tmp_path: Path) -> None:
    body = """
    provider:
      type: ssh
      hosts: {kv: {host: 10.0.0.1}, a: {host: 10.0.0.2}}
      interfaces: [ens3]
    engine:
      cluster-advertise: eth1:2376
    nodes:
      - {name: kv, roles: [kv]}
      - {name: a}
    """
    assert problems(tmp_path, body) == [
        "line 9, engine.cluster-advertise: interface 'eth1' does not exist on ssh nodes "
        "(provider.interfaces: ens3); use e.g. ens3:2376"
    ]


def test_advertise_ip_with_several_engines(tmp_path: Path) -> None:
    body = """
    engine:
      cluster-advertise: 192.168.99.11:2376
    nodes:
      - {name: kv, roles: [kv]}
      - {name: a}
      - {name: b}
    """
    assert problems(tmp_path, body) == [
        "line 5, engine.cluster-advertise: an IP address (192.168.99.11) is only right for "
        "one node, but 2 nodes run an engine; use an interface name instead, e.g. eth1:2376"
    ]


def test_advertise_ip_of_the_single_engine(tmp_path: Path) -> None:
    nodes = "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: a}\n"
    loads(tmp_path, "engine:\n  cluster-advertise: 192.168.99.11:2376\n" + nodes)
    assert problems(tmp_path, "engine:\n  cluster-advertise: 192.168.99.50:2376\n" + nodes) == [
        "line 5, engine.cluster-advertise: 192.168.99.50 is not the address of engine node "
        "'a' (192.168.99.11); dockerd needs a local address; use an interface name instead, "
        "e.g. eth1:2376"
    ]


# --- orchestration --------------------------------------------------------------------


def test_classic_swarm_without_kv(tmp_path: Path) -> None:
    body = (
        NO_KV + "orchestration:\n  mode: classic-swarm\nnodes: [{name: a, roles: [swarm-master]}]\n"
    )
    assert problems(tmp_path, body) == [
        "line 7, orchestration.mode: classic-swarm discovers its agents through the KV store, "
        "but kv is null; configure kv:"
    ]


def test_classic_swarm_needs_a_master(tmp_path: Path) -> None:
    body = (
        "orchestration:\n  mode: classic-swarm\nnodes:\n  - {name: kv, roles: [kv]}\n"
        "  - {name: a, roles: [swarm-agent]}\n  - {name: b, roles: [swarm-agent]}\n"
    )
    assert problems(tmp_path, body) == [
        "line 5, orchestration.mode: classic-swarm needs a node with role swarm-master "
        "(several: one primary, the others replicas); add swarm-master to a node's roles"
    ]


def test_classic_swarm_may_have_several_masters(tmp_path: Path) -> None:
    body = (
        "orchestration:\n  mode: classic-swarm\nnodes:\n  - {name: kv, roles: [kv]}\n"
        "  - {name: a, roles: [swarm-master]}\n  - {name: b, roles: [swarm-master]}\n"
    )
    loads(tmp_path, body)  # valid: one primary, one replica


def test_swarm_mode_needs_a_manager(tmp_path: Path) -> None:
    body = NO_KV + "orchestration:\n  mode: swarm-mode\nnodes: [{name: a, roles: [worker]}]\n"
    assert problems(tmp_path, body) == [
        "line 7, orchestration.mode: swarm-mode needs at least one node with role manager; "
        "add manager to a node's roles"
    ]


# --- provider, images, stacks ---------------------------------------------------------


def test_ssh_hosts_cover_the_nodes(tmp_path: Path) -> None:
    body = """
    provider:
      type: ssh
      hosts:
        kv: {host: 10.0.0.1}
        b: {host: 10.0.0.2}
    nodes:
      - {name: kv, roles: [kv]}
      - {name: a}
    """
    assert problems(tmp_path, body) == [
        "line 6, provider.hosts: no entry for node 'a'; add a: {host: ...}",
        "line 8, provider.hosts.b: no node is named 'b' (nodes: kv, a)",
    ]


def test_image_nodes(tmp_path: Path) -> None:
    body = """
    nodes:
      - {name: kv, roles: [kv]}
      - {name: node1}
    images:
      - name: mongo:3.0
        nodes: [node1, nod2, kv]
    """
    assert problems(tmp_path, body) == [
        "line 9, images[0].nodes[1]: no node is named 'nod2'; did you mean 'node1'? "
        "(nodes: kv, node1)",
        "line 9, images[0].nodes[2]: node 'kv' runs no engine to load the image into",
    ]


STACK_NODES = "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: node1}\n"
V2 = """
version: "2.4"
services:
  web:
    image: overlaylab/probe:1
  db:
    image: docker.io/library/mongo:3.0
"""


def test_stack_placement(tmp_path: Path) -> None:
    body = STACK_NODES + (
        "images: [{name: mongo:3.0}]\n"
        "stacks:\n"
        "  - name: demo\n"
        "    file: stacks/v2.yml\n"
        "    services: {web: node9, db: kv}\n"
    )
    assert problems(tmp_path, body, {"stacks/v2.yml": V2}) == [
        "line 11, stacks[0].services.web: no node is named 'node9'; did you mean 'node1'? "
        "(nodes: kv, node1)",
        "line 11, stacks[0].services.db: node 'kv' runs no engine; place db on one of: node1",
    ]


def test_stack_file_missing(tmp_path: Path) -> None:
    body = (
        STACK_NODES
        + "stacks:\n  - name: demo\n    file: stacks/nope.yml\n    services: {web: node1}\n"
    )
    assert problems(tmp_path, body) == [
        f"line 9, stacks[0].file: compose file {tmp_path}/stacks/nope.yml not found; "
        f"paths are relative to the spec's folder {tmp_path}"
    ]


def test_stack_file_that_is_a_device_is_refused_not_read(tmp_path: Path) -> None:
    """/dev/zero once had validate read until the kernel killed it."""
    body = (
        STACK_NODES + "stacks:\n  - name: demo\n    file: /dev/zero\n    services: {web: node1}\n"
    )
    assert problems(tmp_path, body) == [
        "line 9, stacks[0].file: /dev/zero is a character device, not a regular file: "
        "a stack's file must be a compose YAML file"
    ]


def test_stack_file_that_is_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yml")  # opening it for reading would wait for a writer
    body = STACK_NODES + "stacks:\n  - name: demo\n    file: pipe.yml\n    services: {web: node1}\n"
    assert problems(tmp_path, body) == [
        f"line 9, stacks[0].file: {tmp_path}/pipe.yml is a FIFO, not a regular file: "
        "a stack's file must be a compose YAML file"
    ]


def test_a_huge_stack_file_is_refused_after_its_limit(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    with huge.open("wb") as f:
        f.truncate(MAX_COMPOSE_BYTES + 1)  # sparse: nothing written, still too big
    body = STACK_NODES + "stacks:\n  - name: demo\n    file: huge.yml\n    services: {web: node1}\n"
    assert problems(tmp_path, body) == [
        f"line 9, stacks[0].file: {huge} is larger than 1024 KiB: "
        "a stack's file must be a compose YAML file"
    ]


def test_a_spec_that_is_a_device_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(Path("/dev/zero"))
    assert info.value.problems == [
        "/dev/zero is a character device, not a regular file; pass the spec's YAML file"
    ]


def test_stack_file_resolves_against_the_spec_folder_not_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As docker-compose does: a spec in tier3/ names tier3/compose.yml as compose.yml,
    # whatever the working directory, and ../shared/x.yml reaches a sibling folder.
    (tmp_path / "tier3").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "tier3" / "compose.yml").write_text(V2, encoding="utf-8")
    (tmp_path / "shared" / "v2.yml").write_text(V2, encoding="utf-8")
    spec = tmp_path / "tier3" / "spec.yml"
    spec.write_text(
        HEAD
        + STACK_NODES
        + "images: [{name: mongo:3.0}]\n"
        + "stacks:\n"
        + "  - {name: a, file: compose.yml, services: {web: node1}}\n"
        + "  - {name: b, file: ../shared/v2.yml, services: {web: node1}}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path / "shared")
    loaded = load_spec(Path("../tier3/spec.yml"))
    assert [s.file for s in loaded.stacks] == ["compose.yml", "../shared/v2.yml"]


def test_stack_file_in_the_old_place_names_the_resolved_path(tmp_path: Path) -> None:
    # The old rule resolved against the spec folder's parent; the message now says
    # which absolute path was tried, so the fix (`../`) is obvious.
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "v2.yml").write_text(V2, encoding="utf-8")
    (tmp_path / "inventory").mkdir()
    spec = tmp_path / "inventory" / "spec.yml"
    spec.write_text(
        HEAD + STACK_NODES + "stacks: [{name: a, file: stacks/v2.yml, services: {web: node1}}]\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert info.value.problems == [
        f"line 7, stacks[0].file: compose file {tmp_path}/inventory/stacks/v2.yml not found; "
        f"paths are relative to the spec's folder {tmp_path}/inventory"
    ]


def test_image_tarball_missing_names_the_resolved_path(tmp_path: Path) -> None:
    body = STACK_NODES + "images:\n  - {name: mongo:3.0, tarball: ../images/mongo.tar}\n"
    sub = tmp_path / "labs"
    sub.mkdir()
    assert problems(sub, body) == [
        f"line 8, images[0].tarball: tarball {tmp_path}/images/mongo.tar not found; "
        f"paths are relative to the spec's folder {sub}; write it with "
        f"`docker save -o {tmp_path}/images/mongo.tar mongo:3.0`"
    ]


def test_image_tarball_present_or_a_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "mongo.tar").write_bytes(b"tar")
    loads(tmp_path, STACK_NODES + "images: [{name: mongo:3.0, tarball: images/mongo.tar}]\n")
    assert problems(tmp_path, STACK_NODES + "images: [{name: mongo:3.0, tarball: images}]\n") == [
        f"line 7, images[0].tarball: {tmp_path}/images is not a file; name the `docker save` "
        "tarball of mongo:3.0"
    ]


def test_stack_service_not_in_compose_file(tmp_path: Path) -> None:
    body = STACK_NODES + (
        "images: [{name: mongo:3.0}]\n"
        "stacks:\n"
        "  - name: demo\n"
        "    file: stacks/v2.yml\n"
        "    services:\n"
        "      wbe: node1\n"
    )
    assert problems(tmp_path, body, {"stacks/v2.yml": V2}) == [
        "line 12, stacks[0].services.wbe: stacks/v2.yml defines no service 'wbe'; "
        "did you mean 'web'? (services: web, db)"
    ]


def test_v1_compose_services_are_top_level_keys(tmp_path: Path) -> None:
    v1 = "web:\n  image: overlaylab/probe:1\n  net: dn\n"
    body = STACK_NODES + (
        "stacks:\n  - name: demo\n    file: stacks/v1.yml\n    services: {web: node1, db: node1}\n"
    )
    assert problems(tmp_path, body, {"stacks/v1.yml": v1}) == [
        "line 10, stacks[0].services.db: stacks/v1.yml defines no service 'db' (services: web)"
    ]


def test_compose_images_must_be_side_loaded(tmp_path: Path) -> None:
    compose = V2 + "  cache:\n    image: redis\n  tool:\n    build: .\n"
    body = STACK_NODES + (
        "images: [{name: mongo:3.0}]\n"
        "stacks:\n  - name: demo\n    file: stacks/v2.yml\n    services: {web: node1}\n"
    )
    assert problems(tmp_path, body, {"stacks/v2.yml": compose}) == [
        "line 10, stacks[0].file: service 'cache' in stacks/v2.yml (line 7) uses image "
        "'redis', which is neither one the lab builds (overlaylab/probe:1, "
        "overlaylab/pyapp:1) nor listed under images:; add '- name: redis' under images: "
        "(nothing is pulled)",
        "line 10, stacks[0].file: service 'tool' in stacks/v2.yml (line 9) has no image; the "
        "lab builds nothing and pulls nothing, so use overlaylab/probe:1 or an image listed "
        "under images:",
    ]


def test_listed_images_match_normalised(tmp_path: Path) -> None:
    compose = "services:\n  a: {image: redis}\n  b: {image: 'docker.io/library/busybox:1.36'}\n"
    body = STACK_NODES + (
        "images: [{name: 'redis:latest'}, {name: busybox:1.36}]\n"
        "stacks:\n  - name: demo\n    file: stacks/c.yml\n    services: {a: node1}\n"
    )
    loads(tmp_path, body, {"stacks/c.yml": compose})


def test_unparsable_compose_file(tmp_path: Path) -> None:
    body = (
        STACK_NODES
        + "stacks:\n  - name: demo\n    file: stacks/bad.yml\n    services: {web: node1}\n"
    )
    found = problems(tmp_path, body, {"stacks/bad.yml": "services: [\n"})
    assert len(found) == 1
    assert found[0].startswith("line 9, stacks[0].file: cannot read compose file stacks/bad.yml: ")


def test_via_swarm_master_needs_classic_swarm(tmp_path: Path) -> None:
    compose = "version: '2.3'\nservices:\n  web: {image: overlaylab/probe:1}\n"
    body = (
        "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: a}\n"
        "stacks:\n  - name: demo\n    file: c.yml\n    via: swarm-master\n    services: {web: a}\n"
    )
    assert problems(tmp_path, body, {"c.yml": compose}) == [
        "line 10, stacks[0].via: via: swarm-master deploys through a classic swarm master, "
        "but orchestration.mode is none; set mode: classic-swarm or via: node"
    ]


SWARM_MODE_STACK = (
    NO_KV + "orchestration:\n  mode: swarm-mode\nnodes: [{name: a, roles: [manager]}]\n"
    "stacks:\n  - name: demo\n    file: c.yml\n    services: {web: a}\n"
)


def test_swarm_mode_stack_needs_compose_version_3(tmp_path: Path) -> None:
    compose = "version: '2.4'\nservices:\n  web: {image: overlaylab/probe:1}\n"
    assert problems(tmp_path, SWARM_MODE_STACK, {"c.yml": compose}) == [
        f"line 11, stacks[0].file: {tmp_path}/c.yml is compose file version 2.4; "
        '`docker stack deploy` (swarm mode) needs version 3.x. Write it as version: "3.8" '
        "(deploy:, not container_name: or depends_on: conditions)"
    ]


@pytest.mark.parametrize("version", ["version: '3'\n", "version: '3.8'\n", ""])
def test_swarm_mode_stack_in_compose_version_3_or_none(tmp_path: Path, version: str) -> None:
    compose = version + "services:\n  web: {image: overlaylab/probe:1}\n"
    loads(tmp_path, SWARM_MODE_STACK, {"c.yml": compose})


CLASSIC_MASTER_STACK = (
    "orchestration:\n  mode: classic-swarm\n"
    "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: a, roles: [swarm-master]}\n"
    "stacks:\n  - name: demo\n    file: c.yml\n    via: swarm-master\n    services: {web: a}\n"
)


@pytest.mark.parametrize(("version", "shown"), [("version: '2.4'\n", "2.4"), ("", "1")])
def test_stack_via_swarm_master_needs_compose_2_0_to_2_3(
    tmp_path: Path, version: str, shown: str
) -> None:
    compose = version + "services:\n  web: {image: overlaylab/probe:1}\n"
    if not version:
        compose = "web: {image: overlaylab/probe:1}\n"  # version 1: services at the top
    assert problems(tmp_path, CLASSIC_MASTER_STACK, {"c.yml": compose}) == [
        f"line 11, stacks[0].file: {tmp_path}/c.yml is compose file version {shown} "
        "(via: swarm-master); swarm 1.2.9 speaks API 1.30, which compose allows for "
        'versions 2.0 to 2.3: write it as version: "2.3", or use via: node'
    ]


@pytest.mark.parametrize("version", ["2", "2.0", "2.3"])
def test_stack_via_swarm_master_in_compose_2_0_to_2_3(tmp_path: Path, version: str) -> None:
    compose = f"version: '{version}'\nservices:\n  web: {{image: overlaylab/probe:1}}\n"
    loads(tmp_path, CLASSIC_MASTER_STACK, {"c.yml": compose})
