"""load_spec: YAML and schema problems come back located, worded and all at once."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest
from lab_specs import REPO

from overlaylab.errors import SpecError
from overlaylab.spec import ClusterSpec, load_spec, parse_spec, resolve_in_spec_dir, spec_dir_of

SPECS = REPO / "tests" / "testdata" / "specs"
ENGINE_KEYS = (
    "valid keys: version, cluster-store, cluster-advertise, cluster-store-opts, dockerd, "
    "tls, api_port, daemon"
)
EXPECTED = "expected a mapping with apiVersion: overlaylab/v1, kind: Cluster, name: and nodes:"
HEAD = "apiVersion: overlaylab/v1\nkind: Cluster\nname: t\n"  # lines 1-3 of inline specs


def write_spec(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    """Write an inline spec as tmp_path/inventory/spec.yml."""
    path = tmp_path / "inventory" / "spec.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


# --- valid specs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        REPO / "inventory" / "lab.yml",
        REPO / "inventory" / "article-2015.yml",
        *sorted((SPECS / "valid").glob("*.yml")),
    ],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_valid_specs_load(path: Path) -> None:
    spec = load_spec(path)
    assert isinstance(spec, ClusterSpec)
    assert all(node.address is not None for node in spec.nodes)


def test_lab_yml_values() -> None:
    spec = load_spec(REPO / "inventory" / "lab.yml")
    assert spec.cluster_store_url() == "etcd://192.168.99.10:2379"
    assert [n.name for n in spec.engine_nodes] == ["node1", "node2", "node3"]


def test_article_topology() -> None:
    spec = load_spec(REPO / "inventory" / "article-2015.yml")
    assert spec.provider.type == "docker-machine"
    assert spec.orchestration.mode == "classic-swarm"
    assert spec.cluster_store_url() == "consul://192.168.99.10:8500"
    assert [n.name for n in spec.nodes if "swarm-master" in n.roles] == ["node1"]
    assert spec.networks[0].name == "dn" and spec.networks[0].subnet is None


def test_relative_paths_resolve_against_the_spec_folder() -> None:
    path = REPO / "inventory" / "lab.yml"
    spec = load_spec(path)
    assert spec_dir_of(path) == REPO / "inventory"
    assert spec.stacks[0].file == "../stacks/demo/docker-compose.yml"
    compose = resolve_in_spec_dir(spec_dir_of(path), spec.stacks[0].file)
    assert compose == REPO / "stacks" / "demo" / "docker-compose.yml"


def test_spec_dir_of_a_relative_path_is_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "tests")
    assert spec_dir_of("../inventory/lab.yml") == REPO / "inventory"
    assert spec_dir_of("lab.yml") == REPO / "tests"


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    assert resolve_in_spec_dir(tmp_path, "/srv/x.tar") == Path("/srv/x.tar")


def test_parse_spec_from_text(tmp_path: Path) -> None:
    spec = parse_spec(
        HEAD + "nodes: [{name: kv, roles: [kv]}, {name: a}]\n", source="<t>", spec_dir=tmp_path
    )
    assert spec.name == "t"


# --- defaults -------------------------------------------------------------------------


def test_default_addresses_skip_taken(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """
        nodes:
          - {name: kv, roles: [kv]}
          - {name: a, address: 192.168.99.11}
          - {name: b}
          - {name: c, address: 192.168.99.12}
          - {name: d}
        """,
    )
    spec = load_spec(path)
    assert [str(n.address) for n in spec.nodes] == [
        "192.168.99.10",
        "192.168.99.11",
        "192.168.99.13",
        "192.168.99.12",
        "192.168.99.14",
    ]


def test_default_addresses_follow_subnet_and_skip_host(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """
        provider: {type: local, host_address: 10.1.2.10}
        lab: {subnet: 10.1.2.0/24}
        nodes:
          - {name: kv, roles: [kv]}
          - {name: a}
        """,
    )
    spec = load_spec(path)
    assert [str(n.address) for n in spec.nodes] == ["10.1.2.11", "10.1.2.12"]


def test_default_host_address_is_first_host(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """
        lab: {subnet: 172.30.5.0/24}
        nodes: [{name: kv, roles: [kv]}, {name: a}]
        """,
    )
    spec = load_spec(path)
    assert spec.provider.type == "local"
    assert spec.provider.host_address == ipaddress.IPv4Address("172.30.5.1")


# --- invalid fixtures: exact messages -------------------------------------------------


def test_unknown_key_suggests_closest() -> None:
    assert problems_of(SPECS / "invalid" / "unknown-key.yml") == [
        f"line 6, engine.clsuter-store: unknown key; did you mean 'cluster-store'? {ENGINE_KEYS}"
    ]


def test_python_field_name_is_not_a_key(tmp_path: Path) -> None:
    # populate_by_name must not leak into the YAML: only Docker's spelling is accepted.
    path = write_spec(tmp_path, "engine:\n  cluster_store: auto\nnodes: [{name: a}]\n")
    assert problems_of(path) == [
        f"line 5, engine.cluster_store: unknown key; did you mean 'cluster-store'? {ENGINE_KEYS}"
    ]


def test_wrong_types() -> None:
    assert problems_of(SPECS / "invalid" / "wrong-type.yml") == [
        'line 5, engine.version: got 20.10; must be a string; put it in quotes: "20.10"',
        "line 6, engine.tls: got 'maybe'; must be true or false",
    ]


def test_bad_literals() -> None:
    assert problems_of(SPECS / "invalid" / "bad-literal.yml") == [
        "line 5, kv.backend: got 'redis'; must be one of etcd, consul, zookeeper",
        "line 7, orchestration.mode: got 'swarm'; must be one of none, classic-swarm, "
        "swarm-mode; did you mean 'swarm-mode'?",
        "line 10, nodes[0].roles[1]: got 'database'; must be one of kv, engine, swarm-master, "
        "swarm-agent, manager, worker",
    ]


def test_bad_cluster_advertise_form() -> None:
    assert problems_of(SPECS / "invalid" / "bad-advertise.yml") == [
        "line 5, engine.cluster-advertise: got 'eth1'; must be IFACE:PORT or IP:PORT, "
        "e.g. eth1:2376"
    ]


def test_provider_type_is_readable() -> None:
    assert problems_of(SPECS / "invalid" / "provider-type.yml") == [
        "line 5, provider.type: got 'virtualbox'; must be one of local, vagrant, "
        "docker-machine, ssh"
    ]


def test_provider_without_type(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "provider:\n  host_link: false\nnodes: [{name: a}]\n")
    assert problems_of(path) == [
        "line 4, provider.type: required key is missing; must be one of local, vagrant, "
        "docker-machine, ssh"
    ]


def test_provider_as_a_string(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "provider: vagrant\nnodes: [{name: a}]\n")
    assert problems_of(path) == [
        "line 4, provider: got 'vagrant'; must be a mapping; write provider: {type: vagrant}"
    ]


def test_unknown_key_inside_a_provider(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """
        provider:
          type: ssh
          hosts: {a: {host: h}}
          key: ~/.ssh/id
        nodes: [{name: a}]
        """,
    )
    assert problems_of(path) == [
        "line 7, provider.key: unknown key; did you mean 'key_file'? valid keys: type, hosts, "
        "key_file, interfaces, engine"
    ]


def test_many_errors_at_once() -> None:
    problems = problems_of(SPECS / "invalid" / "many-errors.yml")
    assert len(problems) == 5
    assert problems == [
        "line 3, kind: got 'Clutser'; must be Cluster",
        "line 4, name: got 'Many_Errors'; must match ^[a-z][a-z0-9-]{0,11}$ (a lowercase "
        "letter, then up to 11 lowercase letters, digits or '-')",
        "line 6, lab.subnet: got '192.168.99.1/24'; must be an IPv4 network with the host "
        "bits zero, e.g. 192.168.99.0/24",
        "line 9, nodes[0].adress: unknown key; did you mean 'address'? valid keys: name, "
        "address, roles, labels",
        "line 10, nodes[1].name: required key is missing; add name:",
    ]


def test_missing_top_level_keys_point_at_the_mapping(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "", head="# comment\nkind: Cluster\n")
    assert problems_of(path) == [
        "line 2, apiVersion: required key is missing; add apiVersion: overlaylab/v1",
        "line 2, name: required key is missing; add name: (Cluster name; prefixes every "
        "resource the lab makes.)",
        "line 2, nodes: required key is missing; add nodes:",
    ]


def test_empty_node_list(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "nodes: []\n")
    assert problems_of(path) == ["line 4, nodes: got an empty list; must have at least 1 item(s)"]


def test_wrong_container_types(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "networks: {dn: {}}\nnodes:\n  - name: a\n    labels: [x]\n")
    assert problems_of(path) == [
        "line 4, networks: got a mapping; must be a list (`- item` lines or [a, b])",
        "line 7, nodes[0].labels: got a list; must be a mapping (key: value)",
    ]


def test_non_string_mapping_key(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "nodes:\n  - name: a\n    labels: {1: x}\n")
    assert problems_of(path) == [
        'line 6, nodes[0].labels.1: key 1 must be a string; put it in quotes: "1"'
    ]


def test_bad_address(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "nodes:\n  - name: a\n    address: 192.168.99\n")
    assert problems_of(path) == [
        "line 6, nodes[0].address: got '192.168.99'; must be an IPv4 address, e.g. 192.168.99.11"
    ]


def test_duplicate_yaml_keys(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "nodes: [{name: a}]\nkv: null\nkv: {node: a}\n")
    assert problems_of(path) == [
        "line 6, kv: duplicate key (also on line 5); YAML keeps only the last one, "
        "so remove one of them"
    ]


def test_semantic_checks_wait_for_a_valid_schema(tmp_path: Path) -> None:
    # kv.node names no node (semantic), but the schema error is all that is reported.
    path = write_spec(tmp_path, "kv: {node: nope}\nnodes: [{name: a, roles: [bogus]}]\n")
    assert problems_of(path) == [
        "line 5, nodes[0].roles[0]: got 'bogus'; must be one of kv, engine, swarm-master, "
        "swarm-agent, manager, worker"
    ]


# --- unreadable files -----------------------------------------------------------------


def test_yaml_syntax_error() -> None:
    assert problems_of(SPECS / "invalid" / "syntax-error.yml") == [
        "line 6, column 11: YAML syntax error: mapping values are not allowed here; "
        "check indentation and quoting"
    ]


def test_tab_indentation(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "nodes:\n\t- name: a\n")
    assert problems_of(path) == [
        "line 5, column 1: YAML syntax error: found character '\\t' that cannot start any "
        "token; indent with spaces, not tabs"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yml")
    assert info.value.path == str(tmp_path / "nope.yml")
    assert info.value.problems == [
        "file not found; pass the path of a cluster spec, e.g. inventory/lab.yml"
    ]


def test_empty_file() -> None:
    assert problems_of(SPECS / "invalid" / "empty.yml") == [
        f"line 1: the file is empty; {EXPECTED}"
    ]


def test_top_level_not_a_mapping() -> None:
    assert problems_of(SPECS / "invalid" / "not-a-mapping.yml") == [
        f"line 1: the top level is a list; {EXPECTED}"
    ]


def test_top_level_scalar(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "", head="\n\nhello\n")
    assert problems_of(path) == [f"line 3: the top level is a single value ('hello'); {EXPECTED}"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "spec.yml"
    path.write_bytes(b"kind: Cluster\nname: \xff\n")
    assert problems_of(path) == ["line 2: not UTF-8 text; save the file as UTF-8"]


def test_error_text_lists_every_problem() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(SPECS / "invalid" / "many-errors.yml")
    text = str(info.value)
    assert text.startswith(f"{SPECS / 'invalid' / 'many-errors.yml'}: 5 problems in the cluster")
    assert "\n  - line 3, kind: got 'Clutser'; must be Cluster\n" in text
