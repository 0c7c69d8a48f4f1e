"""`invoke new`: a new spec from a few choices, valid before it is written."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lab_specs import REPO

from overlaylab.errors import OverlaylabError
from overlaylab.scaffold import (
    KV_BACKENDS,
    MODES,
    PROVIDERS,
    LayoutChoices,
    layout_text,
    parse_networks,
    plan_layout,
    write_layout,
)
from overlaylab.spec import load_spec_file, parse_spec, semantic_problems
from overlaylab.spec.warnings import spec_warnings

COMBINATIONS = list(
    itertools.product([None, *KV_BACKENDS], MODES, PROVIDERS, [("dn",), ("front", "back")])
)


@pytest.mark.parametrize(("kv", "mode", "provider", "networks"), COMBINATIONS)
def test_every_combination_is_a_valid_spec(
    tmp_path: Path, kv: str | None, mode: str, provider: str, networks: tuple[str, ...]
) -> None:
    choices = LayoutChoices(
        "combo", nodes=3, kv=kv, mode=mode, provider=provider, networks=networks
    )
    target = tmp_path / "combo.yml"
    text = layout_text(choices, target)
    # The real loader: schema, defaults, every semantic check.
    spec = parse_spec(text, source=str(target), spec_dir=tmp_path)
    assert semantic_problems(spec, tmp_path, lambda loc: (1, True)) == []
    assert spec.provider.type == provider
    assert spec.orchestration.mode == mode
    assert [n.name for n in spec.networks] == list(networks)
    assert len(spec.engine_nodes) == 3
    if mode == "swarm-mode":
        assert spec.kv is None and spec.engine.cluster_store is None
        assert spec.engine_nodes[0].roles == ["engine", "manager"]
    else:
        assert spec.kv is not None and spec.kv.backend == (kv or "etcd")
        assert spec.cluster_store_url() is not None
        assert spec.engine.cluster_advertise == "eth1:2376"
    if mode == "classic-swarm":
        assert [r for n in spec.nodes for r in n.roles if r.startswith("swarm")] == [
            "swarm-master",
            "swarm-agent",
            "swarm-agent",
        ]
    # A fresh layout should not start with warnings either.
    assert spec_warnings(spec) == []


def test_default_layout_is_the_articles_overlay_on_this_machine(tmp_path: Path) -> None:
    path, layout = write_layout(LayoutChoices("t3"), tmp_path)
    spec = load_spec_file(path).spec
    assert path == tmp_path / "t3.yml"
    assert [(n.name, str(n.address), n.roles) for n in spec.nodes] == [
        ("kv", "192.168.99.10", ["kv"]),
        ("node1", "192.168.99.11", ["engine"]),
        ("node2", "192.168.99.12", ["engine"]),
        ("node3", "192.168.99.13", ["engine"]),
    ]
    assert spec.provider.type == "local"
    assert spec.cluster_store_url() == "etcd://192.168.99.10:2379"
    assert [(n.name, str(n.subnet)) for n in spec.networks] == [("dn", "10.0.9.0/24")]
    assert layout.notes == []


def test_subnet_and_networks_choose_addresses(tmp_path: Path) -> None:
    choices = LayoutChoices("mylab", nodes=4, networks=("front", "back"), subnet="192.168.94.0/24")
    spec = parse_spec(layout_text(choices, tmp_path / "m.yml"), source="m.yml", spec_dir=tmp_path)
    assert [str(n.address) for n in spec.nodes] == [f"192.168.94.{i}" for i in range(10, 15)]
    assert [str(n.subnet) for n in spec.networks] == ["10.0.9.0/24", "10.0.10.0/24"]


def test_overlays_avoid_a_lab_subnet_in_their_range(tmp_path: Path) -> None:
    choices = LayoutChoices("x", networks=("a", "b"), subnet="10.0.9.0/24")
    subnets = [str(n.subnet) for n in plan_layout(choices).networks]
    assert subnets == ["10.0.10.0/24", "10.0.11.0/24"]


def test_small_subnet_starts_low_and_a_full_one_is_refused() -> None:
    assert [
        str(n.address) for n in plan_layout(LayoutChoices("x", nodes=3, subnet="10.1.0.0/28")).nodes
    ] == [
        "10.1.0.10",
        "10.1.0.11",
        "10.1.0.12",
        "10.1.0.13",
    ]
    low = plan_layout(LayoutChoices("x", nodes=6, subnet="10.1.0.0/28")).nodes
    assert str(low[0].address) == "10.1.0.2"
    with pytest.raises(OverlaylabError, match=r"do not fit in --subnet 10\.1\.0\.0/28"):
        plan_layout(LayoutChoices("x", nodes=20, subnet="10.1.0.0/28"))


def test_swarm_mode_says_why_kv_is_not_used(tmp_path: Path) -> None:
    choices = LayoutChoices("s", kv="zookeeper", mode="swarm-mode")
    text = layout_text(choices, tmp_path / "s.yml")
    assert "# Note: --kv zookeeper is not used: swarm mode keeps its own (raft) store" in text
    assert "kv: null" in text


def test_names_yaml_would_misread_stay_strings(tmp_path: Path) -> None:
    choices = LayoutChoices("yes", networks=("null", "1e3", "on"))
    spec = parse_spec(layout_text(choices, tmp_path / "y.yml"), source="y", spec_dir=tmp_path)
    assert spec.name == "yes"
    assert [n.name for n in spec.networks] == ["null", "1e3", "on"]


def test_bad_options_are_all_reported_and_nothing_is_written(tmp_path: Path) -> None:
    choices = LayoutChoices(
        "Bad",
        nodes=0,
        kv="redis",
        mode="mesh",
        provider="aws",
        networks=("a", "a", "-x"),
        subnet="10.0.0.1/24",
    )
    with pytest.raises(OverlaylabError) as caught:
        write_layout(choices, tmp_path)
    message = str(caught.value)
    for part in (
        "NAME 'Bad'",
        "--nodes 0",
        "--kv 'redis' must be one of etcd, zookeeper, consul",
        "--mode 'mesh'",
        "--provider 'aws'",
        "'-x' is not a network name",
        "names a more than once",
        "--subnet '10.0.0.1/24'",
    ):
        assert part in message
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path, _ = write_layout(LayoutChoices("keep", nodes=2), tmp_path)
    before = path.read_text()
    with pytest.raises(OverlaylabError, match="exists; pass --force"):
        write_layout(LayoutChoices("keep", nodes=5), tmp_path)
    assert path.read_text() == before
    write_layout(LayoutChoices("keep", nodes=5), tmp_path, force=True)
    assert len(load_spec_file(path).spec.engine_nodes) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.yml"]  # no partial file


def test_parse_networks() -> None:
    assert parse_networks("front, back") == ("front", "back")
    assert parse_networks("") == ()


def test_the_file_explains_itself(tmp_path: Path) -> None:
    text = layout_text(LayoutChoices("doc", provider="ssh"), tmp_path / "doc.yml")
    assert text.startswith("# yaml-language-server: $schema=")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    for topic in (
        "invoke new doc",
        "ssh:",
        "lab switch",
        "KV store",
        "dockerd",
        "Roles:",
        "Overlay",
    ):
        assert any(topic in line for line in comments), topic
    hosts = yaml.safe_load(text)["provider"]["hosts"]
    assert hosts["node1"] == {"host": "192.168.99.11", "user": "root", "port": 22}


def test_in_inventory_the_schema_is_found_next_to_the_spec(tmp_path: Path) -> None:
    text = layout_text(LayoutChoices("inv"), REPO / "inventory" / "inv.yml")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=schema.json"


@pytest.mark.tools
def test_new_task(tmp_path: Path) -> None:
    def new(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "new", *args, "--inventory-dir", str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
        )

    made = new("mylab", "--nodes", "4", "--networks", "front,back", "--kv", "zookeeper")
    assert made.returncode == 0, made.stderr
    assert f"wrote {tmp_path / 'mylab.yml'}" in made.stderr
    spec = load_spec_file(tmp_path / "mylab.yml").spec
    assert (len(spec.engine_nodes), spec.kv and spec.kv.backend) == (4, "zookeeper")
    again = new("mylab")
    assert again.returncode == 2
    assert "exists; pass --force" in again.stderr and "Traceback" not in again.stderr
    noted = new("sm", "--mode", "swarm-mode", "--kv", "etcd")
    assert noted.returncode == 0
    assert "note: --kv etcd is not used" in noted.stderr
