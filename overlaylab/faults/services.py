"""Faults in the lab's services: the KV store stopped or hung, an engine killed or
stopped, an engine restarted advertising a non-lab address, unreadable entries in the
engines' discovery store. Each goes through the node's service handle; heal brings the
service back the way `up` does and checks that it answers.

One module (~430 lines) for one family of the catalogue: the engine faults share the
restart (`start_engine`, which keeps the engine's containers running) and the heal
through `up`."""

from __future__ import annotations

import contextlib
import json

import docker.errors

from overlaylab.context import LabContext
from overlaylab.faults.model import LEGACY, ActiveFault, FaultError, FaultKind, Options, Undo
from overlaylab.nodeconf import KV_BINARIES
from overlaylab.providers.base import ENGINE_SERVICE
from overlaylab.up.run import UpRun
from overlaylab.up.steps.engines import daemon_config, enable_forwarding
from overlaylab.up.steps.kv import ensure_kv, kv_ready
from overlaylab.waiting import wait_until

ENGINE_STOP_TIMEOUT = 30.0  # a dockerd with containers and an overlay to leave
ENGINE_READY_TIMEOUT = 30.0
KV_READY_TIMEOUT = 15.0


def _pid(lab: LabContext, node: str, service: str) -> int:
    handle = lab.node(node)
    raw = handle.read_file(handle.paths.root / f"{service}.pid")
    if not raw or not raw.split() or not raw.split()[0].isdigit():
        raise FaultError(f"{service} on {node} has no pid file: is it running?")
    return int(raw.split()[0])


def _kv(lab: LabContext) -> tuple[str, str, str]:
    """(node, service, binary) of the lab's KV store."""
    kv = lab.spec.kv
    assert kv is not None
    return kv.node, kv.backend, KV_BINARIES[kv.backend]


def _needs_kv(lab: LabContext) -> str | None:
    return None if lab.spec.kv is not None else "the lab has no KV store"


def _kv_node(lab: LabContext, active: ActiveFault | None = None) -> list[str]:
    kv = lab.spec.kv
    return [kv.node] if kv is not None else []


def _store_back(lab: LabContext) -> None:
    if not wait_until(lambda: kv_ready(lab)[0], KV_READY_TIMEOUT, interval=0.2):
        raise FaultError(f"the KV store does not answer after healing: {kv_ready(lab)[1]}")


# --- the KV store ---------------------------------------------------------------------------


def _inject_kv_stopped(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    node, service, binary = _kv(lab)
    undo["stopped"] = {"node": node, "service": service}
    lab.node(node).stop_service(service, binary)
    if lab.node(node).service_alive(service, binary):
        raise FaultError(f"{service} on {node} is still running after stopping it")


def _heal_kv_stopped(lab: LabContext, active: ActiveFault) -> None:
    if "stopped" not in active.undo:
        return
    ensure_kv(lab, UpRun())  # starts the store as `up` does, and waits until it serves
    _store_back(lab)


def _inject_kv_hung(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    node, service, _binary = _kv(lab)
    pid = _pid(lab, node, service)
    # SIGSTOP: the kernel still completes TCP handshakes on its port, nothing answers.
    lab.node(node).run(["kill", "-STOP", str(pid)])
    undo["stopped_pid"] = {"node": node, "pid": pid}


def _heal_kv_hung(lab: LabContext, active: ActiveFault) -> None:
    entry = active.undo.get("stopped_pid")
    if not entry:
        return
    lab.node(entry["node"]).run(["kill", "-CONT", str(entry["pid"])], check=False)
    _store_back(lab)


# --- engines ----------------------------------------------------------------------------------


def _private_engine(lab: LabContext) -> str | None:
    first = lab.spec.engine_nodes[0].name
    if not lab.node(first).paths.private_engine:
        return "the lab's engines are the hosts' own Docker services (engine: host)"
    return None


def _engine_gone(lab: LabContext, node: str) -> bool:
    handle = lab.node(node)
    return wait_until(
        lambda: not handle.service_alive(ENGINE_SERVICE, ENGINE_SERVICE),
        ENGINE_STOP_TIMEOUT,
        interval=0.1,
    )


def _inject_engine_killed(
    lab: LabContext, targets: list[str], options: Options, undo: Undo
) -> None:
    for node in targets:
        pid = _pid(lab, node, ENGINE_SERVICE)
        undo.setdefault("engines", []).append(node)
        lab.node(node).run(["kill", "-KILL", str(pid)])
        if not _engine_gone(lab, node):
            raise FaultError(f"dockerd on {node} (pid {pid}) survived kill -9")


def _inject_engine_stopped(
    lab: LabContext, targets: list[str], options: Options, undo: Undo
) -> None:
    for node in targets:
        undo.setdefault("engines", []).append(node)
        # SIGTERM, then dockerd's own shutdown: it stops its containers and leaves serf.
        lab.node(node).stop_service(ENGINE_SERVICE, ENGINE_SERVICE, ENGINE_STOP_TIMEOUT)
        if not _engine_gone(lab, node):
            raise FaultError(f"dockerd on {node} did not stop")


def start_engine(lab: LabContext, node: str, config: dict[str, object] | None = None) -> None:
    """(Re)start a node's engine, with `config` as its daemon.json (default: the spec's),
    wait until it answers, and start again the containers the restart stopped: what a
    fault changes is the engine's configuration, not which containers run (a stack
    container left stopped would be a second finding the fault did not ask for)."""
    handle = lab.node(node)
    running: list[str] = []
    if handle.service_alive(ENGINE_SERVICE, ENGINE_SERVICE):
        # Killed first: a stopping engine gives each container 10 s to heed SIGTERM, which
        # a probe's shell ignores; they are started again below anyway.
        running = _kill_running(lab, node)
        handle.stop_service(ENGINE_SERVICE, ENGINE_SERVICE, ENGINE_STOP_TIMEOUT)
        _engine_gone(lab, node)
    wanted = config if config is not None else daemon_config(lab, lab.spec.node(node))
    path = handle.paths.daemon_config
    handle.put_file(path, (json.dumps(wanted, indent=2, sort_keys=True) + "\n").encode())
    enable_forwarding(handle)
    handle.start_service(
        ENGINE_SERVICE, [lab.spec.engine.dockerd or "dockerd", "--config-file", str(path)]
    )
    if not wait_until(handle.engine_ping, ENGINE_READY_TIMEOUT, interval=0.1):
        raise FaultError(f"dockerd on {node} did not answer within {ENGINE_READY_TIMEOUT:g}s")
    _start_containers(lab, node, running)


def _up_again(lab: LabContext) -> None:
    """`up` on the lab: starts what is down with the spec's configuration, puts the
    stacks' containers back, repairs gossip. The deferred import keeps `up`'s steps
    out of every fault command that does not need them."""
    from overlaylab.up.pipeline import up

    up(lab)


def _heal_engines(lab: LabContext, active: ActiveFault) -> None:
    nodes = active.undo.get("engines", [])
    if not nodes:
        return
    # `up` forgets the pid files the killed engines left (overlaylab.up.dead_engine).
    _up_again(lab)
    down = [n for n in nodes if not lab.node(n).engine_ping()]
    if down:
        raise FaultError(f"the engine on {', '.join(down)} does not answer after `up`")


# --- an engine advertising a non-lab address ------------------------------------------------

NAT_ADDRESS = "10.0.2.15"  # VirtualBox's NAT eth0, the same on every VM


def _advertise_options(lab: LabContext, options: Options) -> str | None:
    import ipaddress

    try:
        address = ipaddress.IPv4Address(options.get("address", ""))
    except ValueError:
        return f"address must be an IPv4 address, got {options.get('address')!r}"
    if address in lab.spec.lab.subnet:
        return f"{address} is in the lab subnet {lab.spec.lab.subnet}: peers would reach it"
    return None


def _advertise_applies(lab: LabContext) -> str | None:
    if not lab.spec.engine.uses_cluster_store:
        return "the lab's engines have no cluster-store, so nothing to advertise"
    return _private_engine(lab)


def _inject_advertise(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    address = options["address"]
    for node in targets:
        handle = lab.node(node)
        # The address exists on the node, as a NAT eth0's does (on lo: no one reaches it),
        # so the engine binds its gossip there and starts.
        handle.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"])
        undo.setdefault("addresses", []).append({"node": node, "address": address})
        config = dict(daemon_config(lab, lab.spec.node(node)))
        config["cluster-advertise"] = f"{address}:{lab.spec.engine.api_port}"
        undo.setdefault("engines", []).append(node)
        start_engine(lab, node, config)


def _kill_running(lab: LabContext, node: str) -> list[str]:
    """Kill the engine's running containers; their ids, to start them again."""
    with lab.node(node).engine() as client:
        running = [c.id for c in client.containers.list(sparse=True)]
        for container_id in running:
            with contextlib.suppress(docker.errors.APIError):  # gone, or stopped meanwhile
                client.api.kill(container_id)
    return running


def _start_containers(lab: LabContext, node: str, ids: list[str]) -> None:
    failed = []
    with lab.node(node).engine() as client:
        for container_id in ids:
            try:
                client.api.start(container_id)
            except docker.errors.APIError as exc:
                failed.append(f"{container_id[:12]}: {exc.explanation or exc}")
    if failed:
        raise FaultError(f"the engine on {node} did not start its containers again: {failed}")


def _heal_advertise(lab: LabContext, active: ActiveFault) -> None:
    for node in active.undo.get("engines", []):
        start_engine(lab, node)  # the spec's daemon.json again
    for entry in active.undo.get("addresses", []):
        handle = lab.node(entry["node"])
        handle.run(["ip", "addr", "del", f"{entry['address']}/32", "dev", "lo"], check=False)
        shown = handle.run(["ip", "-o", "-4", "addr", "show", "dev", "lo"]).stdout
        if f" {entry['address']}/" in shown:
            raise FaultError(f"advertise: {entry['address']} is still on {entry['node']}'s lo")
    # The other engines learned the healed engines' containers, over gossip, at the
    # address they advertised, and keep what they learned (overlay/peers.py): the fdb
    # entries outlive the restart, and the containers come back with the same MACs. A
    # restart makes them learn every peer again; `up` then starts them and the stacks.
    healed = set(active.undo.get("engines", []))
    for other in lab.spec.engine_nodes:
        if other.name not in healed:
            lab.node(other.name).stop_service(ENGINE_SERVICE, ENGINE_SERVICE, ENGINE_STOP_TIMEOUT)
    _heal_engines(lab, active)


# --- unreadable entries in the discovery store ---------------------------------------------

JUNK_KEYS = ("garbage1", "garbage2")


def _discovery_url(lab: LabContext, key: str) -> str:
    kv = lab.spec.kv
    assert kv is not None
    prefix = kv.path.strip("/")
    path = "/".join(p for p in (prefix, "docker/nodes", key) if p)
    return f"http://{lab.spec.address_of(kv.node)}:{kv.client_port}/v2/keys/{path}"


def _junk_applies(lab: LabContext) -> str | None:
    if lab.spec.kv is None or lab.spec.kv.backend != "etcd":
        return "it writes to the store over etcd's v2 HTTP API (the lab's store is not etcd)"
    if not lab.spec.engine.uses_cluster_store:
        return "the lab's engines have no cluster-store"
    return _private_engine(lab)


def _etcd(lab: LabContext, method: str, key: str, *data: str) -> None:
    assert lab.spec.kv is not None
    kv = lab.node(lab.spec.kv.node)
    kv.run(["curl", "-sS", "--fail", "-m", "5", "-X", method, _discovery_url(lab, key), *data])


def _inject_junk(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    for key in JUNK_KEYS:
        undo.setdefault("keys", []).append(key)
        _etcd(lab, "PUT", key, "-d", "value=garbage")
    for node in targets:
        # An engine reads the engine list when it starts: this one stumbles on the junk
        # and never starts serf.
        undo.setdefault("engines", []).append(node)
        start_engine(lab, node)


def _heal_junk(lab: LabContext, active: ActiveFault) -> None:
    assert lab.spec.kv is not None
    kv = lab.spec.kv
    handle = lab.node(kv.node)
    address = str(lab.spec.address_of(kv.node))
    for key in active.undo.get("keys", []):
        handle.run(
            ["curl", "-sS", "-m", "5", "-X", "DELETE", _discovery_url(lab, key)], check=False
        )
        prefix = _discovery_url(lab, key).split(f":{kv.client_port}", 1)[1]
        status, _body = handle.http_get(address, kv.client_port, prefix, timeout=5)
        if status != 404:
            raise FaultError(f"discovery-junk: key {key} is still in the store (HTTP {status})")
    # The engine that read the junk started serf late and learned no peer: start it again.
    for node in active.undo.get("engines", []):
        start_engine(lab, node)
    _heal_engines(lab, active)


KINDS = [
    FaultKind(
        name="kv-stopped",
        misery="the KV store stopped: engines cannot register, nor list or create overlays",
        parameters="no target (the spec's KV node)",
        expected_cause="kv_down",
        modes=LEGACY,
        inject_fn=_inject_kv_stopped,
        heal_fn=_heal_kv_stopped,
        targets="none",
        min_targets=0,
        max_targets=0,
        applies_fn=_needs_kv,
        expected_nodes_fn=_kv_node,
    ),
    FaultKind(
        name="kv-hung",
        misery="the KV store hung (kill -STOP): it accepts connections and never answers",
        parameters="no target (the spec's KV node)",
        expected_cause="kv_down",
        modes=LEGACY,
        inject_fn=_inject_kv_hung,
        heal_fn=_heal_kv_hung,
        targets="none",
        min_targets=0,
        max_targets=0,
        applies_fn=_needs_kv,
        expected_nodes_fn=_kv_node,
    ),
    FaultKind(
        name="engine-killed",
        misery="an engine killed (kill -9): its containers' paths, gossip and API gone at once",
        parameters="NODE (default: the last engine node)",
        expected_cause="dead_engines",
        modes=LEGACY,
        inject_fn=_inject_engine_killed,
        heal_fn=_heal_engines,
        applies_fn=_private_engine,
    ),
    FaultKind(
        name="engine-stopped",
        misery="an engine stopped gracefully (SIGTERM): it leaves the gossip cluster and "
        "stops its containers",
        parameters="NODE (default: the last engine node)",
        expected_cause="dead_engines",
        modes=LEGACY,
        inject_fn=_inject_engine_stopped,
        heal_fn=_heal_engines,
        applies_fn=_private_engine,
    ),
    FaultKind(
        name="advertise",
        misery="an engine restarted advertising a non-lab address (the NAT eth0 misery): "
        "it registers, and its peers cannot reach what it advertises",
        parameters=f"NODE (default: the last engine node); --option address=IP (default "
        f"{NAT_ADDRESS}, VirtualBox's NAT address)",
        expected_cause="wrong_advertise",
        modes=LEGACY,
        inject_fn=_inject_advertise,
        heal_fn=_heal_advertise,
        options={"address": NAT_ADDRESS},
        check_options_fn=_advertise_options,
        applies_fn=_advertise_applies,
    ),
    FaultKind(
        name="discovery-junk",
        misery="unreadable entries in the engines' discovery store (docker/nodes), then an "
        "engine restarted: it cannot read the engine list and never gossips",
        parameters="NODE (the engine restarted; default: the last engine node)",
        expected_cause="engine_not_gossiping",
        modes=LEGACY,
        inject_fn=_inject_junk,
        heal_fn=_heal_junk,
        applies_fn=_junk_applies,
    ),
]
