"""Faults in the lab network and in the overlays' own plumbing: firewall rules, a link's
MTU, a protocol filtered inside an overlay sandbox, gossip split into islands.

One module (~500 lines) for one family of the catalogue, in the order `--list` and the
drill show it: each fault is a FaultKind plus its inject and heal, and they share the
rule helpers, the lab interface and the gossip waits."""

from __future__ import annotations

import re
from collections.abc import Callable

import docker.errors

from overlaylab.context import LabContext
from overlaylab.faults.model import (
    ALL_MODES,
    LEGACY,
    ActiveFault,
    FaultError,
    FaultKind,
    InjectFn,
    Options,
    Undo,
)
from overlaylab.faults.netfilter import add_rule, lab_interface, link_mtu, remove_rules
from overlaylab.overlay.gossip import serf_view
from overlaylab.overlay.registrations import engine_registrations, registration_key
from overlaylab.providers.base import ENGINE_SERVICE
from overlaylab.waiting import wait_until

VXLAN_PORT = "4789"
GOSSIP_PORT = "7946"
Rule = tuple[str, list[str]]  # (chain, matchers)


def drop(kind: str, rules: Callable[[LabContext, str, Options], list[Rule]]) -> InjectFn:
    """An inject function that inserts `rules(lab, node, options)` on every target."""

    def inject(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
        for node in targets:
            for chain, matchers in rules(lab, node, options):
                add_rule(lab, undo, node, kind, chain, matchers)

    return inject


def _vxlan_both(lab: LabContext, node: str, options: Options) -> list[Rule]:
    return [
        ("INPUT", ["-p", "udp", "--dport", VXLAN_PORT]),
        ("OUTPUT", ["-p", "udp", "--dport", VXLAN_PORT]),
    ]


def _vxlan_out(lab: LabContext, node: str, options: Options) -> list[Rule]:
    return [("OUTPUT", ["-p", "udp", "--dport", VXLAN_PORT])]


def _gossip(lab: LabContext, node: str, options: Options) -> list[Rule]:
    return [
        ("INPUT", ["-p", "tcp", "--dport", GOSSIP_PORT]),
        ("INPUT", ["-p", "udp", "--dport", GOSSIP_PORT]),
    ]


def _cut(lab: LabContext, node: str, options: Options) -> list[Rule]:
    link = lab_interface(lab, node)
    # Everything in or out of the lab link, routed or not (containers' traffic to the
    # lab leaves through FORWARD): a pulled cable, seen from the node.
    return [
        ("INPUT", ["-i", link]),
        ("OUTPUT", ["-o", link]),
        ("FORWARD", ["-i", link]),
        ("FORWARD", ["-o", link]),
    ]


def _cut_applies(lab: LabContext) -> str | None:
    if not lab.spec.engine.tls:
        return (
            "verify tells a cut-off node by its engine port (underlay.api), which a lab "
            "without engine.tls does not open"
        )
    if lab.provider.name != "local":
        # The provider's own connection to a remote host may cross the lab link: cutting
        # it would cut overlaylab off the node too, heal included.
        return f"the {lab.provider.name} provider may reach its hosts over the lab link"
    return None


def _kv_cut(lab: LabContext, node: str, options: Options) -> list[Rule]:
    kv = lab.spec.kv
    assert kv is not None
    address = str(lab.spec.address_of(kv.node))
    return [("OUTPUT", ["-d", address, "-p", "tcp", "--dport", str(kv.client_port)])]


def _needs_kv(lab: LabContext) -> str | None:
    return None if lab.spec.kv is not None else "the lab has no KV store"


# --- a published port --------------------------------------------------------------------


def _published(lab: LabContext, node: str) -> list[tuple[str, int]]:
    """(container, container port) of every published TCP port on the node's engine."""
    found = []
    with lab.node(node).engine(timeout=10) as client:
        for container in client.containers.list():
            ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
            for spec, bindings in sorted(ports.items()):
                port, _, proto = spec.partition("/")
                if bindings and proto == "tcp":
                    found.append((container.name, int(port)))
    return found


def _port_default_targets(lab: LabContext) -> list[str]:
    for node in lab.spec.engine_nodes:
        try:
            if _published(lab, node.name):
                return [node.name]
        except docker.errors.DockerException:
            continue
    return [lab.spec.engine_nodes[0].name]


def _port_rules(lab: LabContext, node: str, options: Options) -> list[Rule]:
    port = options.get("port") or ""
    if not port:
        published = _published(lab, node)
        if not published:
            raise FaultError(f"no container on {node} publishes a TCP port")
        port = str(published[0][1])
    # DOCKER-USER sees connections after DNAT: the container's own port.
    return [("DOCKER-USER", ["-p", "tcp", "--dport", port])]


def _port_options(lab: LabContext, options: Options) -> str | None:
    port = options.get("port", "")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"port must be a TCP port number, got {port!r}"
    return None


# --- the lab link's MTU ----------------------------------------------------------------------


def _mtu_options(lab: LabContext, options: Options) -> str | None:
    mtu = options.get("mtu", "")
    if not (mtu.isdigit() and 576 <= int(mtu) < 1500):
        return f"mtu must be a number from 576 to 1499, got {mtu!r}"
    return None


def _inject_mtu(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    for node in targets:
        link = lab_interface(lab, node)
        was = link_mtu(lab, node, link)
        undo.setdefault("links", []).append({"node": node, "interface": link, "mtu": was})
        lab.node(node).run(["ip", "link", "set", "dev", link, "mtu", options["mtu"]])


def _heal_mtu(lab: LabContext, active: ActiveFault) -> None:
    for entry in active.undo.get("links", []):
        node, link, was = entry["node"], entry["interface"], int(entry["mtu"])
        lab.node(node).run(["ip", "link", "set", "dev", link, "mtu", str(was)])
        now = link_mtu(lab, node, link)
        if now != was:
            raise FaultError(f"mtu: {link} on {node} is at {now} after setting it back to {was}")
    if active.undo.get("links"):
        flush_path_mtu(lab)


def flush_path_mtu(lab: LabContext) -> list[str]:
    """Forget every path MTU the lowered link taught (the kernel keeps them for
    net.ipv4.route.mtu_expires, 10 min): in each engine node's own namespace, its
    overlay sandboxes and its running containers. Returns where it flushed."""
    flushed = []
    for spec_node in lab.spec.engine_nodes:
        handle = lab.node(spec_node.name)
        namespaces = [""]
        netns_dir = handle.paths.exec_root / "netns"
        listed = handle.run(["ls", str(netns_dir)], check=False)
        namespaces += [str(netns_dir / n) for n in listed.stdout.split()] if listed.ok else []
        try:
            with handle.engine(timeout=10) as client:
                for container in client.containers.list():
                    pid = container.attrs.get("State", {}).get("Pid")
                    if pid:
                        namespaces.append(f"/proc/{pid}/ns/net")
        except docker.errors.DockerException:
            pass  # an engine that does not answer has no running containers to flush
        for netns in namespaces:
            enter = ["nsenter", f"--net={netns}"] if netns else []
            handle.run([*enter, "ip", "route", "flush", "cache"], check=False)
            flushed.append(f"{spec_node.name}:{netns or 'host'}")
    return flushed


# --- one protocol filtered inside an overlay ------------------------------------------------

PROTOCOLS = ("icmp", "tcp", "udp")


def _first_network(lab: LabContext) -> str:
    return lab.spec.networks[0].name if lab.spec.networks else ""


def _protocol_options(lab: LabContext, options: Options) -> str | None:
    if options.get("proto") not in PROTOCOLS:
        return f"proto must be one of {', '.join(PROTOCOLS)}, got {options.get('proto')!r}"
    network = options.get("network") or _first_network(lab)
    names = [n.name for n in lab.spec.networks]
    if network not in names:
        return f"no overlay {network!r} in the spec; overlays: {', '.join(names) or '(none)'}"
    return None


def _needs_overlay(lab: LabContext) -> str | None:
    return None if lab.spec.networks else "the lab has no overlay network"


def sandbox(lab: LabContext, node: str, network: str) -> str:
    """The path of the engine's overlay sandbox (a network namespace) of `network`."""
    handle = lab.node(node)
    try:
        with handle.engine(timeout=10) as client:
            net_id = client.networks.get(network).id
    except docker.errors.DockerException as exc:
        raise FaultError(f"the engine on {node} cannot show overlay {network}: {exc}") from exc
    netns_dir = handle.paths.exec_root / "netns"
    listed = handle.run(["ls", str(netns_dir)], check=False).stdout.split()
    # <n>-<network id cut to 10 characters>: n grows when the sandbox is made again.
    found = [n for n in listed if re.fullmatch(rf"\d+-{re.escape(net_id[:9])}\w*", n)]
    if len(found) != 1:
        raise FaultError(
            f"{node} has {len(found)} sandboxes of overlay {network} in {netns_dir} (wanted "
            "one: a container on it there makes it)"
        )
    return str(netns_dir / found[0])


def _ebtables_rule(proto: str) -> list[str]:
    return ["FORWARD", "-p", "IPv4", "--ip-proto", proto, "-j", "DROP"]


def _inject_protocol(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    network = options.get("network") or _first_network(lab)
    for node in targets:
        path = sandbox(lab, node, network)
        rule = _ebtables_rule(options["proto"])
        # The overlay's bridge forwards between the node's own containers and VXLAN: an
        # ebtables rule there filters the protocol for every path through this node.
        lab.node(node).run(["nsenter", f"--net={path}", "ebtables", "-A", *rule])
        undo.setdefault("ebtables", []).append({"node": node, "netns": path, "rule": rule})


def _heal_protocol(lab: LabContext, active: ActiveFault) -> None:
    for entry in active.undo.get("ebtables", []):
        handle = lab.node(entry["node"])
        enter = ["nsenter", f"--net={entry['netns']}"]
        gone = handle.run(["test", "-e", entry["netns"]], check=False).returncode != 0
        if gone:
            continue  # the sandbox went with its last container, the rule with it
        handle.run([*enter, "ebtables", "-D", *entry["rule"]], check=False)
        listed = handle.run([*enter, "ebtables", "-L", "FORWARD"]).stdout
        proto = entry["rule"][entry["rule"].index("--ip-proto") + 1]
        if any(f"--ip-proto {proto}" in line and "DROP" in line for line in listed.splitlines()):
            raise FaultError(f"protocol: the ebtables rule on {entry['node']} is still there")


# --- gossip split into two islands -----------------------------------------------------------

SPLIT_TIMEOUT = 60.0  # serf declares members failed after a few seconds of silence
MERGE_TIMEOUT = 90.0  # libnetwork's serf retries failed members every 30 s


def _island_rules(lab: LabContext, targets: list[str]) -> list[tuple[str, str]]:
    """(node, address of the other island's node) for every pair across the split."""
    engines = [n.name for n in lab.spec.engine_nodes]
    island = [n for n in engines if n not in targets]
    pairs = [(a, b) for a in island for b in targets] + [(b, a) for b in targets for a in island]
    return [(node, str(lab.spec.address_of(other))) for node, other in pairs]


def gossip_views(lab: LabContext) -> dict[str, set[str]]:
    """Each engine's serf membership, as its own log tells it."""
    node_at = {str(n.address): n.name for n in lab.spec.engine_nodes}
    return {
        n.name: serf_view(lab.node(n.name).service_log(ENGINE_SERVICE) or "", node_at)
        for n in lab.spec.engine_nodes
    }


def _inject_islands(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    if len(targets) >= len(lab.spec.engine_nodes):
        raise FaultError("name the second island only: some engine nodes must stay in the first")
    for node, other in _island_rules(lab, targets):
        # Serf's UDP probes, and the data of its TCP streams (push-pull, fallback pings):
        # the TCP handshake still completes, so the gossip port looks open (underlay.gossip
        # passes) while no member hears the other island: two clusters, as engines that
        # joined different neighbours at start form.
        add_rule(
            lab, undo, node, "islands", "INPUT", ["-s", other, "-p", "udp", "--dport", GOSSIP_PORT]
        )
        add_rule(
            lab,
            undo,
            node,
            "islands",
            "INPUT",
            ["-s", other, "-p", "tcp", "--dport", GOSSIP_PORT, "--tcp-flags", "PSH", "PSH"],
        )
    engines = {n.name for n in lab.spec.engine_nodes}
    island = engines - set(targets)

    def split() -> bool:
        views = gossip_views(lab)
        return all(views[n] <= (set(targets) if n in targets else island) for n in engines)

    if not wait_until(split, SPLIT_TIMEOUT, interval=1):
        raise FaultError(
            f"the engines' gossip did not split within {SPLIT_TIMEOUT:g}s: {gossip_views(lab)}"
        )


def rules_then_gossip(lab: LabContext, active: ActiveFault) -> None:
    """Remove the rules, then wait until every engine's serf holds every engine again:
    while gossip was cut, the others declared the node failed, and serf takes it back
    only at its next reconnect round (every 30 s)."""
    remove_rules(lab, active)
    if not active.undo.get("rules") or not lab.spec.engine.uses_cluster_store:
        return
    everyone = {n.name for n in lab.spec.engine_nodes}
    if not wait_until(
        lambda: all(v == everyone for v in gossip_views(lab).values()), MERGE_TIMEOUT, 1
    ):
        raise FaultError(
            f"{active.kind}: the rules are gone, but the engines' gossip did not merge "
            f"within {MERGE_TIMEOUT:g}s ({gossip_views(lab)}); `invoke up` restarts the "
            "engines of the smaller island"
        )


# An engine registers every heartbeat (20 s) with a TTL (60 s). While the store was cut
# its registration may have expired, and its connection to the store sits in TCP's
# retransmission back-off (up to about 30 s) before it tries again.
REGISTER_TIMEOUT = 90.0


def rules_then_registered(lab: LabContext, active: ActiveFault) -> None:
    """Remove the rules, then wait until every engine cut from the store is registered
    in it again: until then verify rightly fails kv.registered on it."""
    remove_rules(lab, active)
    targets = sorted({entry["node"] for entry in active.undo.get("rules", [])})
    if not targets or not lab.spec.engine.uses_cluster_store:
        return

    def missing() -> list[str]:
        found, _why = engine_registrations(lab)
        return [n for n in targets if found is None or registration_key(lab, n) not in found]

    for node in missing():
        lab.progress.item(node, f"{active.kind}: waiting for its engine to register again")
    if not wait_until(lambda: not missing(), REGISTER_TIMEOUT, 1):
        raise FaultError(
            f"{active.kind}: the rules are gone, but {', '.join(missing())} did not register "
            f"in the store within {REGISTER_TIMEOUT:g}s; `invoke up` restarts its engine"
        )


def _islands_default(lab: LabContext) -> list[str]:
    engines = [n.name for n in lab.spec.engine_nodes]
    return engines[(len(engines) + 1) // 2 :]


def _islands_applies(lab: LabContext) -> str | None:
    if not lab.spec.engine.uses_cluster_store:
        return "the lab's engines have no cluster-store, so no serf gossip to split"
    if len(lab.spec.engine_nodes) < 2:
        return "it takes two engines to make two islands"
    return None


def _all_engines(lab: LabContext, active: ActiveFault) -> list[str]:
    return [n.name for n in lab.spec.engine_nodes]


def _path_ends(lab: LabContext, active: ActiveFault) -> list[str]:
    """Where verify can place a drop on the overlay's paths: the node every failing path
    touches. With two engines there is one path between hosts, both of its ends touch
    every failing test, and no evidence tells them apart: both are named."""
    engines = _all_engines(lab, active)
    return engines if len(engines) == 2 else list(active.targets)


KINDS = [
    FaultKind(
        name="vxlan",
        misery="overlay data (VXLAN, udp/4789) dropped on a node, both ways: containers "
        "there reach no other host's containers, though every control port is open",
        parameters="NODE (default: the last engine node)",
        expected_cause="data_plane_blocked",
        expected_nodes_fn=_path_ends,
        modes=ALL_MODES,
        inject_fn=drop("vxlan", _vxlan_both),
        heal_fn=remove_rules,
        applies_fn=_needs_overlay,
    ),
    FaultKind(
        name="vxlan-out",
        misery="overlay data (VXLAN, udp/4789) dropped leaving a node only (an egress "
        "firewall): nothing it sends crosses, what others send still arrives",
        parameters="NODE (default: the last engine node)",
        expected_cause="data_plane_blocked",
        expected_nodes_fn=_path_ends,
        modes=ALL_MODES,
        inject_fn=drop("vxlan-out", _vxlan_out),
        heal_fn=remove_rules,
        applies_fn=_needs_overlay,
    ),
    FaultKind(
        name="gossip",
        misery="gossip (tcp+udp 7946) dropped into a node: the others stop learning where "
        "its containers are",
        parameters="NODE (default: the last engine node)",
        expected_cause="gossip_blocked",
        modes=ALL_MODES,
        inject_fn=drop("gossip", _gossip),
        heal_fn=rules_then_gossip,
        causes_by_mode={"swarm-mode": "swarm_gossip_blocked"},
    ),
    FaultKind(
        name="cut",
        misery="a node cut off the lab network (a pulled cable, a dead switch port)",
        parameters="NODE (default: the last engine node)",
        expected_cause="cut_off_nodes",
        modes=ALL_MODES,
        inject_fn=drop("cut", _cut),
        heal_fn=rules_then_gossip,
        applies_fn=_cut_applies,
    ),
    FaultKind(
        name="kv-cut",
        misery="one node cut from the KV store only (a firewall on the store's port): the "
        "others keep the store",
        parameters="NODE (default: the last engine node)",
        expected_cause="kv_unreachable_from",
        modes=LEGACY,
        inject_fn=drop("kv-cut", _kv_cut),
        heal_fn=rules_then_registered,
        applies_fn=_needs_kv,
    ),
    FaultKind(
        name="port",
        misery="a published port dropped in DOCKER-USER on its node: the service runs, "
        "nobody reaches it from outside",
        parameters="NODE (default: the first node publishing a port); --option "
        "port=CONTAINER_PORT (default: the first published one there)",
        expected_cause="ports.published",
        modes=LEGACY,
        inject_fn=drop("port", _port_rules),
        heal_fn=remove_rules,
        options={"port": ""},
        default_targets_fn=_port_default_targets,
        check_options_fn=_port_options,
    ),
    FaultKind(
        name="mtu",
        misery="the lab link's MTU lowered on one node (the cloud MTU misery): small "
        "packets cross, full-size ones vanish",
        parameters="NODE (default: the last engine node); --option mtu=N (default 1400)",
        expected_cause="data_plane_blocked",
        expected_nodes_fn=_path_ends,
        modes=ALL_MODES,
        inject_fn=_inject_mtu,
        heal_fn=_heal_mtu,
        options={"mtu": "1400"},
        check_options_fn=_mtu_options,
        applies_fn=_needs_overlay,
    ),
    FaultKind(
        name="protocol",
        misery="one protocol filtered inside an overlay on a node (ebtables in its "
        "overlay sandbox): the others cross, so VXLAN itself works",
        parameters="NODE (default: the last engine node); --option proto=icmp|tcp|udp "
        "(default icmp), --option network=OVERLAY (default: the spec's first)",
        expected_cause="protocol_filtered",
        modes=LEGACY,
        inject_fn=_inject_protocol,
        heal_fn=_heal_protocol,
        options={"proto": "icmp", "network": ""},
        check_options_fn=_protocol_options,
        applies_fn=_needs_overlay,
    ),
    FaultKind(
        name="islands",
        misery="the engines' gossip split into two islands: every port is open, yet "
        "containers on different islands never learn of each other",
        parameters="NODE ... (the second island; default: the last half of the engine nodes)",
        expected_cause="gossip_partition",
        modes=LEGACY,
        inject_fn=_inject_islands,
        heal_fn=rules_then_gossip,
        max_targets=64,
        default_targets_fn=_islands_default,
        applies_fn=_islands_applies,
        expected_nodes_fn=_all_engines,
    ),
]
