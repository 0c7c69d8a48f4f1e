"""Faults in the stacks' containers, as a person or a crash leaves them: a container
disconnected from its overlay, a paused one, a stale name (a container killed hard and
replaced, its old record left in the store the engines read names from), and an app
that registers its docker_gwbridge address. Each goes through the engine of the node
the container runs on (its node handle); heal puts the container back as it was and
checks it.

One module (~420 lines) for one family of the catalogue: the faults share how a stack
service is chosen (`--option service=`) and found on its node."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from typing import Any

import docker.errors

from overlaylab.context import LabContext
from overlaylab.faults.model import LEGACY, ActiveFault, FaultError, FaultKind, Options, Undo
from overlaylab.up.steps.stacks import service_labels
from overlaylab.waiting import wait_until

# A planted record's id: recognisable in the store, never one an engine makes (64 hex).
STALE_ID = "5ca1ab1e" * 8
NAME_TIMEOUT = 15.0  # the engines' watch on the store takes a moment to pass a change on


def placed(lab: LabContext) -> list[tuple[str, str, str]]:
    """(stack, service, node) of every stack service the spec places, in spec order."""
    return [
        (stack.name, service, node)
        for stack in lab.spec.stacks
        for service, node in stack.services.items()
    ]


def _needs_stack(lab: LabContext) -> str | None:
    if not placed(lab):
        return "the spec places no stack service on a node"
    return None


def _first_stack_node(lab: LabContext) -> list[str]:
    return [placed(lab)[0][2]] if placed(lab) else []


def _service_on(lab: LabContext, node: str, options: Options) -> tuple[str, str]:
    """(stack, service) the fault acts on: --option service=STACK/SERVICE, else the first
    stack service the spec places on `node`."""
    wanted = options.get("service", "")
    here = [(s, v) for s, v, n in placed(lab) if n == node]
    if wanted:
        stack, _, service = wanted.partition("/")
        if (stack, service) not in here:
            names = ", ".join(f"{s}/{v}" for s, v in here) or "none"
            raise FaultError(f"no stack service {wanted} placed on {node} (there: {names})")
        return stack, service
    if not here:
        names = ", ".join(sorted({n for _, _, n in placed(lab)})) or "none"
        raise FaultError(f"the spec places no stack service on {node} (nodes with one: {names})")
    return here[0]


def _service_option(lab: LabContext, options: Options) -> str | None:
    wanted = options.get("service", "")
    if wanted and "/" not in wanted:
        return f"service must be STACK/SERVICE (e.g. demo/web), got {wanted!r}"
    return None


def _container(client: Any, lab: LabContext, stack: str, service: str) -> Any:
    spec_stack = next(s for s in lab.spec.stacks if s.name == stack)
    found = client.containers.list(
        all=True, filters={"label": service_labels(lab.spec, spec_stack, service)}
    )
    if not found:
        raise FaultError(f"no container of {stack}/{service} on its engine: `invoke up` first")
    return found[0]


def _network_of(lab: LabContext, attrs: dict[str, Any]) -> str:
    """The spec's first overlay the container is on."""
    networks = attrs["NetworkSettings"]["Networks"]
    for net in lab.spec.networks:
        if net.name in networks:
            return net.name
    raise FaultError(f"{attrs['Name'].lstrip('/')} is on none of the spec's overlays")


# --- a container disconnected from its overlay ----------------------------------------------


def _inject_disconnect(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    for node in targets:
        stack, service = _service_on(lab, node, options)
        with lab.node(node).engine(timeout=30) as client:
            container = _container(client, lab, stack, service)
            network = _network_of(lab, container.attrs)
            settings = container.attrs["NetworkSettings"]["Networks"][network]
            # Compose adds the container's short id to its aliases; connect adds it again.
            aliases = [a for a in settings.get("Aliases") or [] if a != container.id[:12]]
            client.networks.get(network).disconnect(container.name)
            undo.setdefault("disconnected", []).append(
                {"node": node, "container": container.name, "network": network, "aliases": aliases}
            )


def _heal_disconnect(lab: LabContext, active: ActiveFault) -> None:
    for entry in active.undo.get("disconnected", []):
        with lab.node(entry["node"]).engine(timeout=30) as client:
            container = client.containers.get(entry["container"])
            if entry["network"] not in container.attrs["NetworkSettings"]["Networks"]:
                client.networks.get(entry["network"]).connect(
                    container.name, aliases=entry["aliases"] or None
                )
            container.reload()
            if entry["network"] not in container.attrs["NetworkSettings"]["Networks"]:
                raise FaultError(f"{entry['container']} is still not on {entry['network']}")


# --- a paused container ------------------------------------------------------------------------


def _inject_pause(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    for node in targets:
        stack, service = _service_on(lab, node, options)
        with lab.node(node).engine(timeout=30) as client:
            container = _container(client, lab, stack, service)
            container.pause()
            undo.setdefault("paused", []).append({"node": node, "container": container.name})


def _heal_pause(lab: LabContext, active: ActiveFault) -> None:
    for entry in active.undo.get("paused", []):
        with lab.node(entry["node"]).engine(timeout=30) as client:
            container = client.containers.get(entry["container"])
            if container.status == "paused":
                container.unpause()
            container.reload()
            if container.status != "running":
                raise FaultError(f"{entry['container']} is {container.status}, not running")


def _container_nodes(lab: LabContext, active: ActiveFault) -> list[str]:
    return list(active.targets)


# --- a stale name: a removed container's record left in the store ----------------------------


def _store_url(lab: LabContext, key: str) -> str:
    kv = lab.spec.kv
    assert kv is not None
    path = "/".join(p for p in (kv.path.strip("/"), "docker/network/v1.0", key) if p)
    return f"http://{lab.spec.address_of(kv.node)}:{kv.client_port}/v2/keys/{path}"


def _etcd(lab: LabContext, method: str, key: str, *data: str) -> dict[str, Any]:
    assert lab.spec.kv is not None
    argv = ["curl", "-sS", "-m", "5", "-X", method, _store_url(lab, key), *data]
    done = lab.node(lab.spec.kv.node).run(argv, check=False)
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise FaultError(f"the KV store did not answer {method} {key}: {done.stderr}") from None
    return answer


def _stale_applies(lab: LabContext) -> str | None:
    if lab.spec.kv is None or lab.spec.kv.backend != "etcd":
        return "it edits the store over etcd's v2 HTTP API (the lab's store is not etcd)"
    if not lab.spec.engine.uses_cluster_store:
        return "the lab's engines keep no names in a cluster store"
    return _needs_stack(lab)


def _free_address(subnet: str, used: set[str]) -> str:
    """The highest address of the overlay no container holds: where the stale record
    points (a container that is gone, whose address nobody took since)."""
    network = ipaddress.IPv4Network(subnet, strict=False)
    for host in reversed(list(network.hosts())):
        if str(host) not in used:
            return str(host)
    raise FaultError(f"no free address on {subnet} for the stale record")


def _count(lab: LabContext, net_id: str, change: int) -> None:
    """Bump the network's endpoint count: the engines watch that key, and read the
    endpoint list again when it changes (as when an engine adds a container)."""
    found = _etcd(lab, "GET", f"endpoint_count/{net_id}")
    value = json.loads(found["node"]["value"])
    value["Count"] = int(value["Count"]) + change
    _etcd(lab, "PUT", f"endpoint_count/{net_id}", "--data-urlencode", f"value={json.dumps(value)}")


def _inject_stale(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    node = targets[0]
    stack, service = _service_on(lab, node, options)
    with lab.node(node).engine(timeout=30) as client:
        container = _container(client, lab, stack, service)
        network = _network_of(lab, container.attrs)
        net = client.networks.get(network)
        net_id = net.id
        endpoint = container.attrs["NetworkSettings"]["Networks"][network]["EndpointID"]
        subnet = net.attrs["IPAM"]["Config"][0]["Subnet"]
    record = json.loads(_etcd(lab, "GET", f"endpoint/{net_id}/{endpoint}")["node"]["value"])
    listed = _etcd(lab, "GET", f"endpoint/{net_id}")["node"].get("nodes", [])
    used = {json.loads(n["value"])["ep_iface"]["addr"].split("/")[0] for n in listed}
    address = _free_address(subnet, used)
    # The record the engine left when the container was killed hard: its names, its node,
    # the address it had. A replacement got another address; both now answer to the names.
    record.update(id=STALE_ID, sandbox=STALE_ID)
    prefix = record["ep_iface"]["addr"].split("/")[1]
    record["ep_iface"].update(
        addr=f"{address}/{prefix}",
        mac="02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed),
        srcName="veth" + STALE_ID[:7],
    )
    key = f"endpoint/{net_id}/{STALE_ID}"
    _etcd(lab, "PUT", key, "--data-urlencode", f"value={json.dumps(record)}")
    undo["record"] = {"key": key, "network": network, "net_id": net_id, "address": address}
    _count(lab, net_id, +1)
    undo["counted"] = True
    undo["node"] = node
    undo["container"] = container.name


def _heal_stale(lab: LabContext, active: ActiveFault) -> None:
    record = active.undo.get("record")
    if not record:
        return
    found = _etcd(lab, "GET", record["key"])
    if "node" in found:
        _etcd(lab, "DELETE", record["key"])
    if active.undo.get("counted"):
        _count(lab, record["net_id"], -1)
    if "node" in _etcd(lab, "GET", record["key"]):
        raise FaultError(f"stale-name: the planted record {record['key']} is still in the store")


def _stale_default(lab: LabContext) -> list[str]:
    return _first_stack_node(lab)


# --- an app registering its docker_gwbridge address -------------------------------------------

NAIVE_PICK = "java-enumeration"  # stacks/discovery/app.py: Java's interface order


def _registering(lab: LabContext, node: str) -> list[tuple[str, str, dict[str, str]]]:
    """(stack, service, environment) of the stack containers on `node` that register
    themselves in the lab's registry (they have a REGISTRY in their environment)."""
    found = []
    with lab.node(node).engine(timeout=30) as client:
        for stack, service, where in placed(lab):
            if where != node:
                continue
            container = _container(client, lab, stack, service)
            env = dict(
                e.split("=", 1) for e in container.attrs["Config"].get("Env") or [] if "=" in e
            )
            if env.get("REGISTRY"):
                found.append((stack, service, env))
    return found


def _registering_nodes(lab: LabContext) -> list[str]:
    found = []
    for node in dict.fromkeys(n for _, _, n in placed(lab)):
        try:
            if _registering(lab, node):
                found.append(node)
        except (FaultError, docker.errors.DockerException):
            continue  # its engine is down: verify says so
    return found


def _gwbridge_applies(lab: LabContext) -> str | None:
    if _needs_stack(lab):
        return _needs_stack(lab)
    if lab.spec.kv is None or lab.spec.kv.backend != "etcd":
        return "its apps register in etcd (stacks/discovery): the lab's store is not etcd"
    if not _registering_nodes(lab):
        return (
            "no stack container registers itself (REGISTRY in its environment, as "
            "stacks/discovery's apps do)"
        )
    return None


def _gwbridge_default(lab: LabContext) -> list[str]:
    return _registering_nodes(lab)[:1] or _first_stack_node(lab)


def _inject_gwbridge(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    node = targets[0]
    apps = _registering(lab, node)
    if not apps:
        raise FaultError(
            f"no stack container on {node} registers itself (none has REGISTRY in its "
            "environment, as stacks/discovery's apps do)"
        )
    stack, service, env = apps[0]
    with lab.node(node).engine(timeout=30) as client:
        container = _container(client, lab, stack, service)
        network = _network_of(lab, container.attrs)
        name = f"{container.name}-naive"
        # The same app built the naive way: it registers the first address Java's
        # interface order gives, docker_gwbridge's, under a name of its own.
        env = {k: v for k, v in env.items() if k != "PREFERRED_NETWORKS"}
        env.update(
            ADDRESS_PICK=NAIVE_PICK, SERVICE_NAME=f"{env.get('SERVICE_NAME', service)}-naive"
        )
        made = client.containers.run(
            container.image.id,
            name=name,
            detach=True,
            environment=env,
            network=network,
            labels={"overlaylab.fault": "gwbridge-app"},
        )
        undo["container"] = {"node": node, "name": made.name, "service": env["SERVICE_NAME"]}
    if not wait_until(lambda: _registered(lab, env["SERVICE_NAME"]), NAME_TIMEOUT, 0.5):
        raise FaultError(f"{name} did not register itself within {NAME_TIMEOUT:g}s")


def _registered(lab: LabContext, service: str) -> bool:
    kv = lab.spec.kv
    assert kv is not None
    url = f"http://{lab.spec.address_of(kv.node)}:{kv.client_port}/v2/keys/services/{service}"
    done = lab.node(kv.node).run(["curl", "-sS", "-m", "5", url], check=False)
    return '"nodes"' in done.stdout


def _heal_gwbridge(lab: LabContext, active: ActiveFault) -> None:
    entry = active.undo.get("container")
    if not entry:
        return
    with (
        lab.node(entry["node"]).engine(timeout=30) as client,
        contextlib.suppress(docker.errors.NotFound),
    ):
        client.containers.get(entry["name"]).remove(force=True)
    kv = lab.spec.kv
    assert kv is not None
    # Its registration would outlive it by its TTL: the registry forgets it now.
    url = f"http://{lab.spec.address_of(kv.node)}:{kv.client_port}/v2/keys/services/{entry['service']}"
    lab.node(kv.node).run(
        ["curl", "-sS", "-m", "5", "-X", "DELETE", f"{url}?recursive=true"], check=False
    )
    if _registered(lab, entry["service"]):
        raise FaultError(f"gwbridge-app: {entry['service']} is still registered")


SERVICE_OPTION = {"service": ""}
SERVICE_PARAMETERS = (
    "NODE (default: the first stack service's node); --option service=STACK/SERVICE "
    "(default: the first stack service placed there)"
)

KINDS = [
    FaultKind(
        name="disconnect",
        misery="a stack container disconnected from its overlay (`docker network "
        "disconnect`): it runs, and nothing on the overlay reaches it",
        parameters=SERVICE_PARAMETERS,
        expected_cause="stack_containers_not_serving",
        modes=LEGACY,
        inject_fn=_inject_disconnect,
        heal_fn=_heal_disconnect,
        options=SERVICE_OPTION,
        check_options_fn=_service_option,
        applies_fn=_needs_stack,
        default_targets_fn=_first_stack_node,
        expected_nodes_fn=_container_nodes,
    ),
    FaultKind(
        name="pause",
        misery="a stack container paused (`docker pause`): the engine says it is up, its "
        "port accepts connections, and nothing ever answers",
        parameters=SERVICE_PARAMETERS,
        expected_cause="stack_containers_not_serving",
        modes=LEGACY,
        inject_fn=_inject_pause,
        heal_fn=_heal_pause,
        options=SERVICE_OPTION,
        check_options_fn=_service_option,
        applies_fn=_needs_stack,
        default_targets_fn=_first_stack_node,
        expected_nodes_fn=_container_nodes,
    ),
    FaultKind(
        name="stale-name",
        misery="a stale name: a stack container killed hard and replaced, its old record "
        "left in the KV store, so its names answer with an address nobody holds too",
        parameters=SERVICE_PARAMETERS,
        expected_cause="names.resolve",
        modes=LEGACY,
        inject_fn=_inject_stale,
        heal_fn=_heal_stale,
        options=SERVICE_OPTION,
        check_options_fn=_service_option,
        applies_fn=_stale_applies,
        default_targets_fn=_stale_default,
        expected_nodes_fn=_container_nodes,
    ),
    FaultKind(
        name="gwbridge-app",
        misery="an app registering its docker_gwbridge address (the discovery demo's naive "
        "build): its health URL answers nobody on the other hosts",
        parameters="NODE (default: the first node running an app that registers itself)",
        expected_cause="registered_gwbridge",
        modes=LEGACY,
        inject_fn=_inject_gwbridge,
        heal_fn=_heal_gwbridge,
        applies_fn=_gwbridge_applies,
        default_targets_fn=_gwbridge_default,
        expected_nodes_fn=_container_nodes,
    ),
]
