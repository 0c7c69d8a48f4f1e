"""The lab network under the overlays: can each node reach each other's control ports?

Overlay peers talk on three ports of each other's advertised address: the engine API
(2376), gossip (tcp+udp 7946: serf on legacy overlays, the swarm's networkdb in swarm
mode; how each node learns where the others' containers are) and VXLAN (udp 4789,
the data itself; connectionless, so the connectivity checks are its test). A failure
here names the layer before any container is involved.
"""

from __future__ import annotations

import re
from itertools import permutations

from overlaylab.overlay.gossip import serf_view
from overlaylab.providers.base import ENGINE_SERVICE, Node
from overlaylab.verify.check import Check
from overlaylab.verify.checks import connectivity
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

SERF_PORT = 7946


def connects(handle: Node, host: str, port: int, timeout: float = 2) -> tuple[bool, str]:
    """A TCP connect from a node, tried once more before it counts as failed: one slow
    moment (a lost SYN, a busy host starting the shell while other checks run beside it)
    must not stand as a finding. A refused port answers at once; a dropped one costs a
    second wait."""
    ok, why = handle.tcp_connect(host, port, timeout=timeout)
    if not ok:
        ok, why = handle.tcp_connect(host, port, timeout=timeout)
    return ok, why


def _probe_port(
    vctx: VerifyContext, check: str, port: int, what: str, hint: str
) -> list[CheckResult]:
    spec = vctx.lab.spec
    nodes = spec.engine_nodes

    def one(pair):  # type: ignore[no-untyped-def]
        a, b = pair
        observer = vctx.lab.node(a.name)
        ok, why = connects(observer, str(b.address), port)
        return [
            CheckResult(
                check=check,
                subject=f"{a.name} -> {b.name}:{port}",
                status="pass" if ok else "fail",
                message=f"{what} on {b.address}:{port} "
                + ("accepts connections" if ok else f"unreachable: {why}"),
                hint="" if ok else hint,
                nodes=[a.name, b.name],
                source=a.name,
                target=b.name,
                # Refused: nothing listens (or a REJECT rule); a DROP times out.
                details={"port": port, "refused": "refused" in why.lower()},
                command=observer.tcp_probe_command(str(b.address), port),
            )
        ]

    return vctx.map(one, list(permutations(nodes, 2)))


HINT_SERF = (
    "legacy overlays learn which node holds which container over serf (tcp+udp/7946 on "
    "the advertised address): open it between the nodes; without it, containers started "
    "later on a node are unreachable from the others"
)
HINT_NETWORKDB = (
    "swarm nodes learn which node holds which container (its address, its DNS names) "
    "over the swarm's gossip, networkdb (tcp+udp/7946 on the advertise address): open it "
    "between the nodes; without it, the others soon declare the node failed and drop "
    "its containers' names and overlay peer entries"
)


def gossip(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.orchestration.mode == "swarm-mode":
        return _probe_port(
            vctx, "underlay.gossip", SERF_PORT, "swarm gossip (networkdb)", HINT_NETWORKDB
        )
    if not spec.engine.uses_cluster_store:
        return [
            CheckResult.skip(
                "underlay.gossip", "serf", "no overlay gossip: no cluster-store nor swarm mode"
            )
        ]
    results = _probe_port(vctx, "underlay.gossip", SERF_PORT, "serf gossip", HINT_SERF)
    refusing = sorted({r.target for r in results if r.failed and r.details.get("refused")})
    complaints = {node: _discovery_complaint(vctx, node) for node in refusing}
    for r in results:
        if r.failed and complaints.get(r.target):
            r.details["complaint"] = complaints[r.target]
            r.message += f"; its engine logs: {complaints[r.target]}"
    return results


DISCOVERY_ERROR = re.compile(r'level=error msg="(discovery error: [^"]*)"')


def _discovery_complaint(vctx: VerifyContext, node: str) -> str:
    """The engine's last discovery error since it started: why its serf never started
    (an entry in the store's engine list it cannot parse, for one)."""
    found = DISCOVERY_ERROR.findall(vctx.lab.node(node).service_log(ENGINE_SERVICE) or "")
    return found[-1] if found else ""


def engine_api(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if not spec.engine.tls:
        return [
            CheckResult.skip(
                "underlay.api", "engine api", "engines do not listen on TCP (engine.tls: false)"
            )
        ]
    return _probe_port(
        vctx,
        "underlay.api",
        spec.engine.api_port,
        "engine API (TLS)",
        "nodes cannot reach each other's engine port: when every port to one node fails, "
        "that node is cut off the lab network (link, switch or firewall)",
    )


def members(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if not spec.engine.uses_cluster_store:
        return [
            CheckResult.skip(
                "underlay.members", "serf", "no legacy overlay (cluster-store) in the spec"
            )
        ]
    expected = {n.name for n in spec.engine_nodes}
    node_at = {str(n.address): n.name for n in spec.engine_nodes}
    results = []
    for node in sorted(expected):
        handle = vctx.lab.node(node)
        log = handle.service_log(ENGINE_SERVICE)
        if not handle.engine_ping(timeout=2):
            # The log a dead engine left describes a cluster it has since left.
            results.append(
                CheckResult.untested(
                    "underlay.members", node, "its engine does not answer", "engines.api"
                )
            )
            continue
        if log is None:
            results.append(
                CheckResult.untested(
                    "underlay.members",
                    node,
                    "no engine log to read its gossip view from",
                    "engines.api",
                )
            )
            continue
        seen = serf_view(log, node_at)
        missing = sorted(expected - seen)
        results.append(
            CheckResult(
                check="underlay.members",
                subject=node,
                status="fail" if missing else "pass",
                message=(
                    f"its gossip cluster holds only {', '.join(sorted(seen)) or 'nothing'} "
                    f"(missing {', '.join(missing)})"
                )
                if missing
                else f"gossip cluster holds all {len(expected)} engines",
                hint="" if not missing else HINT_PARTITION,
                nodes=[node, *missing],
                target=node,
                command=f"grep 'serf: Event' {handle.service_log_location('dockerd')}",
                details={"seen": sorted(seen), "missing": missing},
            )
        )
    return results


HINT_PARTITION = (
    "a member cut off a moment ago comes back by itself (serf retries every 30 s). Lasting "
    "islands have another cause: libnetwork's legacy overlay joins serf through ONE "
    "neighbour, once, when the engine starts, and retries only when the KV node list "
    "changes. Engines that start at the same moment can join a neighbour that is not "
    "listening yet and form an island of their own; containers on different islands never "
    "learn of each other. Restart the engines of the smaller island one at a time (their "
    "join then succeeds); start engines one by one (`invoke up` does)."
)


API = Check(
    "underlay.api", "underlay", "every node reaches every other node's engine port", engine_api
)

GOSSIP = Check(
    "underlay.gossip",
    "underlay",
    "overlay gossip (7946: serf, or swarm's networkdb) is open between every pair of nodes",
    gossip,
)

MEMBERS = Check(
    "underlay.members",
    "underlay",
    "every engine's gossip cluster holds every engine (no islands)",
    members,
    # Read after the paths were tested: a node the others declare failed while the pairs
    # ran loses its paths then, and the diagnosis must see the views that explain it
    # (seen on a real lab: views read first, still whole; the paths, later, all failed).
    after=tuple(connectivity.CHECKS),
)

CHECKS = [API, GOSSIP, MEMBERS]
