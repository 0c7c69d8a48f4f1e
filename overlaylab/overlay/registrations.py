"""Where the engines of a legacy overlay register in the KV store (docker/nodes).

Each engine writes its cluster-advertise address there every heartbeat with a TTL:
verify checks that every engine is listed, and healing a cut from the store waits
until the engine is listed again."""

from __future__ import annotations

import json
from typing import Any

from overlaylab.context import LabContext
from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.logtail import tail
from overlaylab.waiting import asked_twice

# Debian's zookeeper package ships its CLI next to the server script.
ZOOKEEPER_CLI = ZOOKEEPER_SERVER.parent / "zkCli.sh"

DISCOVERY_PATH = "docker/nodes"  # libkv's default kv.path for engine discovery


def _discovery_path(lab: LabContext) -> str:
    spec = lab.spec
    assert spec.kv is not None
    prefix = spec.kv.path.strip("/")
    return "/".join(p for p in (prefix, DISCOVERY_PATH) if p)


def _http_registrations(lab: LabContext, url_path: str) -> tuple[Any, str]:
    """(the JSON body, "") or (None, why not), from the store's HTTP API on the KV node."""
    spec = lab.spec
    assert spec.kv is not None
    kv_node = lab.node(spec.kv.node)
    address = str(spec.address_of(spec.kv.node))
    try:
        status, body = asked_twice(
            lambda: kv_node.http_get(address, spec.kv.client_port, url_path, timeout=2)
        )
    except OSError as exc:
        return None, f"{spec.kv.backend} does not answer: {exc}"
    if status == 404:
        return [], f"HTTP 404 for {url_path} (no engine ever registered)"
    if status != 200:
        return None, f"HTTP {status} for {url_path}"
    return json.loads(body), ""


def _etcd_registrations(lab: LabContext) -> tuple[set[str] | None, str]:
    body, why = _http_registrations(lab, f"/v2/keys/{_discovery_path(lab)}/")
    if body is None or body == []:
        return (None if body is None else set()), why
    nodes = body.get("node", {}).get("nodes", [])
    return {n["key"].rsplit("/", 1)[-1] for n in nodes}, ""


def _consul_registrations(lab: LabContext) -> tuple[set[str] | None, str]:
    body, why = _http_registrations(lab, f"/v1/kv/{_discovery_path(lab)}/?keys")
    if body is None:
        return None, why
    return {key.rstrip("/").rsplit("/", 1)[-1] for key in body}, why


def _zookeeper_registrations(lab: LabContext) -> tuple[set[str] | None, str]:
    """zkCli on the KV node (ZooKeeper has no HTTP API for its znodes)."""
    spec = lab.spec
    assert spec.kv is not None
    server = f"{spec.address_of(spec.kv.node)}:{spec.kv.client_port}"
    znode = "/" + _discovery_path(lab)
    result = lab.node(spec.kv.node).run(
        [str(ZOOKEEPER_CLI), "-server", server, "ls", znode], check=False, timeout=30
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    if "NoNode" in result.stdout + result.stderr:
        return set(), f"no znode {znode} (no engine ever registered)"
    if result.returncode != 0 or not lines:
        return None, f"zkCli ls {znode} failed (exit {result.returncode}): {tail(result.stderr)}"
    return {k.strip() for k in lines[-1].strip("[]").split(",") if k.strip()}, ""


REGISTRATIONS = {
    "etcd": _etcd_registrations,
    "consul": _consul_registrations,
    "zookeeper": _zookeeper_registrations,
}


def engine_registrations(lab: LabContext) -> tuple[set[str] | None, str]:
    """The addresses (ip:port) registered under the discovery path, or (None, why not)."""
    assert lab.spec.kv is not None
    return REGISTRATIONS[lab.spec.kv.backend](lab)


def registration_key(lab: LabContext, node: str) -> str:
    """The key an engine registers under: its lab address and advertise port."""
    return f"{lab.spec.address_of(node)}:{lab.spec.engine.advertise_port}"
