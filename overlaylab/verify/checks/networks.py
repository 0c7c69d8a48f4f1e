"""Each spec overlay exists where its orchestration keeps it: same id, driver and subnet.

A legacy overlay (cluster-store, classic swarm) is global: every engine reads it from
the KV store, so every engine lists it. A swarm-mode overlay lives in the managers'
raft store: every manager lists it, and a worker lists it only once a task or
container of its own uses it (the first verify checks while its probes start). So in
swarm mode a worker that does not list it yet is no failure; one that lists another
one is. Whether a worker can use it is what its probes show (probes.running)."""

from __future__ import annotations

from typing import Any

from overlaylab.spec.models import ClusterSpec
from overlaylab.verify.check import Check
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

HINT_KV = (
    "a global-scope network lives in the KV store: engines that miss it, or see "
    "another id, use another store or cannot reach it (kv.*, engines.advertise)"
)
HINT_SWARM = (
    "a swarm-scope network lives in the managers' raft store: a manager that misses it, "
    "or a node that sees another id, is not in the lab's swarm or lost touch with its "
    "managers (swarm.nodes); `docker network inspect` on the first manager shows the one "
    "the swarm holds"
)


def must_list(spec: ClusterSpec) -> set[str]:
    """The engines that list an overlay whether or not they use it."""
    if spec.orchestration.mode == "swarm-mode":
        return {n.name for n in spec.engine_nodes if "manager" in n.roles}
    return {n.name for n in spec.engine_nodes}


def listings(vctx: VerifyContext) -> dict[str, list[dict[str, Any]] | None]:
    """Per engine node, the spec's networks its engine lists (None: it does not answer).

    One request per engine, every engine at once: an engine waiting on a hung KV store
    takes seconds per request, and asked network after network, engine after engine,
    those seconds added up (19 s for two overlays on three engines)."""
    spec = vctx.lab.spec
    names = [net.name for net in spec.networks]

    def listing(node: str) -> list[dict[str, Any]] | None:
        handle = vctx.lab.node(node)
        if not handle.engine_ping(timeout=2):
            return None
        with handle.engine(timeout=10) as client:
            return [n for n in client.api.networks(names=names) if n["Name"] in names]

    nodes = [node.name for node in spec.engine_nodes]
    return dict(zip(nodes, vctx.pool.map(listing, nodes), strict=True))


def present(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    listing = must_list(spec)
    swarm = spec.orchestration.mode == "swarm-mode"
    listed = listings(vctx) if spec.networks else {}
    results = []
    for net in spec.networks:
        seen: dict[str, tuple[str, str, str | None]] = {}
        missing, down, idle = [], [], []
        for node in spec.engine_nodes:
            networks = listed[node.name]
            if networks is None:
                down.append(node.name)
                continue
            found = [n for n in networks if n["Name"] == net.name]
            if not found:
                (missing if node.name in listing else idle).append(node.name)
                continue
            info = found[0]
            config = (info.get("IPAM") or {}).get("Config") or [{}]
            seen[node.name] = (info["Id"], info["Driver"], config[0].get("Subnet"))
        problems = []
        odd = set(missing)  # the nodes where the network is not what it should be
        if missing:
            problems.append(f"missing on {', '.join(missing)}")
        if len({v[0] for v in seen.values()}) > 1:
            problems.append(
                "different ids on different nodes: "
                + ", ".join(f"{n}={v[0][:12]}" for n, v in seen.items())
            )
        ids = [v[0] for v in seen.values()]
        usual = max(set(ids), key=ids.count) if ids else None
        odd |= {node for node, v in seen.items() if v[0] != usual}
        for node, (_id, driver, subnet) in seen.items():
            if driver != net.driver:
                problems.append(f"driver {driver} on {node}, the spec says {net.driver}")
                odd.add(node)
            if net.subnet is not None and subnet != str(net.subnet):
                problems.append(f"subnet {subnet} on {node}, the spec says {net.subnet}")
                odd.add(node)
        any_seen = next(iter(seen.values()), None)
        if not seen and not problems:
            # No engine could show it: that is no pass ("on 0 engines"); the untested
            # results below say why.
            results += _untested(net.name, down)
            continue
        results.append(
            CheckResult(
                check="networks.present",
                subject=net.name,
                status="fail" if problems else "pass",
                message="; ".join(problems)
                or (
                    f"{net.driver} {any_seen[2] if any_seen else '?'} on "
                    f"{len(seen)} engines ({any_seen[0][:12] if any_seen else '?'})"
                    + (
                        f"; not used on {', '.join(idle)} yet (swarm workers list it then)"
                        if idle
                        else ""
                    )
                ),
                hint="" if not problems else HINT_SWARM if swarm else HINT_KV,
                # Blame where it differs; with no odd one out, every node is involved.
                nodes=sorted(odd) if problems and odd else sorted([*seen, *missing]),
                target=next(iter(odd)) if problems and len(odd) == 1 else "",
                network=net.name,
                details={
                    **{n: {"id": v[0], "driver": v[1], "subnet": v[2]} for n, v in seen.items()},
                    **{n: {"unused": True} for n in idle},
                },
            )
        )
        results += _untested(net.name, down)
    return results


def _untested(network: str, down: list[str]) -> list[CheckResult]:
    return [
        CheckResult.untested(
            "networks.present",
            node,
            f"its engine does not answer, so {network} was not looked for there",
            "engines.api",
            network=network,
        )
        for node in down
    ]


PRESENT = Check(
    "networks.present",
    "networks",
    "each overlay exists on every engine with the same id, driver and subnet",
    present,
)

CHECKS = [PRESENT]
