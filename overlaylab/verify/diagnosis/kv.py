"""The KV store: down, hung, or another store than the spec's."""

from __future__ import annotations

from overlaylab.verify.checks import (
    connectivity,
    engines,
    kv,
    names,
    networks,
    probes_running,
    stacks,
    swarm,
)
from overlaylab.verify.diagnosis.evidence import (
    NODE_DEPENDENT,
    Diagnosis,
    Evidence,
    connected_by_name,
    unanswered_only_on,
)
from overlaylab.verify.result import CheckResult


def kv_down(ev: Evidence) -> list[Diagnosis]:
    ran = ev.ran(kv.REACHABLE)
    failed = ev.unexplained(kv.REACHABLE)
    if not ran or len(failed) != len(ran) or ev.spec.kv is None:
        return []
    store = ev.spec.kv
    # Containers cannot join an overlay without the store, so classic swarm's scheduling
    # probes (which join one) fail with it.
    checks = ev.explain(
        [
            *failed,
            *ev.failed(kv.REGISTERED),
            *ev.failed(networks.PRESENT),
            *ev.unexplained(swarm.SCHEDULE),
            # What apps registered could not be read: discovery.endpoints, untested.
            *ev.untested_because(ev.spec.kv.node, kv.REACHABLE),
        ]
    )
    if all(r.details.get("connected") for r in failed):
        # Every node opens its port and none gets an answer: the store itself is stuck.
        return [
            Diagnosis(
                cause=f"the KV store ({store.backend} on {store.node}) does not answer",
                detail=f"{failed[0].message}. It accepts connections but answers no request "
                "(the process is stopped, hung or overloaded): engines cannot register, and "
                "cannot list or create global (overlay) networks. Containers already running "
                "keep talking over the overlay; new ones cannot join it. `invoke up` stops the "
                "store and starts it again.",
                nodes=[store.node],
                checks=checks,
            )
        ]
    return [
        Diagnosis(
            cause=f"the KV store ({store.backend} on {store.node}) is down or unreachable",
            detail="no engine reaches it: engines cannot register, and cannot list or create "
            "global (overlay) networks. Containers already running keep talking over the "
            "overlay; new ones cannot join it. `invoke up` restarts the store.",
            nodes=[store.node],
            checks=checks,
        )
    ]


def kv_unreachable_from(ev: Evidence) -> list[Diagnosis]:
    """The store answers some engine nodes and not others: it runs, so what lies between
    it and those nodes (a firewall on its port, a route) cuts them from it."""
    ran = ev.ran(kv.REACHABLE)
    failed = ev.unexplained(kv.REACHABLE)
    if not failed or len(failed) == len(ran) or ev.spec.kv is None:
        return []
    store = ev.spec.kv
    found = []
    for result in failed:
        node = result.source
        # Its engine lists global networks from the store: they are missing there.
        follows = [
            r
            for check in (kv.REGISTERED, networks.PRESENT)
            for r in ev.unexplained(check)
            if r.nodes == [node] or (check is kv.REGISTERED and node in r.nodes)
        ]
        lost = {r.network for r in follows if r.check == networks.PRESENT.id}
        follows += _on_lost_networks(ev, node, lost)
        found.append(
            Diagnosis(
                cause=f"{node} cannot reach the KV store ({store.backend} on {store.node})",
                detail=f"{result.message}, while the other engine nodes reach it: the store "
                f"runs, and something between {node} and {store.node}:{store.client_port} (a "
                f"firewall, a route) drops {node}'s requests. {node}'s engine cannot "
                "register (its registration expires), nor list or create overlays (they "
                "are missing there); its containers already on them keep working.",
                nodes=[node],
                checks=ev.explain([result, *follows]),
            )
        )
    return found


def _on_lost_networks(ev: Evidence, node: str, lost: set[str]) -> list[CheckResult]:
    """What `node` does on overlays its engine no longer lists (seen on a real lab, a few
    seconds after the store was cut): it answers its containers no name of another
    engine's container there, so lookups from it fail, and so do connections by name;
    and no container can start there on them (classic swarm's scheduling probe: "network
    not found")."""
    if not lost:
        return []
    lookups = [
        r
        for r in ev.unexplained(connectivity.DNS)
        if r.source == node and r.network in lost and r.path == "cross-host"
    ]
    by_name = connected_by_name(ev, lookups)
    stack_names = [
        r
        for r in ev.unexplained(names.RESOLVE)
        if r.network in lost and unanswered_only_on(r, node)
    ]
    starts = [r for r in ev.unexplained(swarm.SCHEDULE) if r.target == node]
    return [*lookups, *by_name, *stack_names, *starts]


def wrong_store(ev: Evidence) -> list[Diagnosis]:
    """Engines running with another cluster-store than the spec's are in another cluster:
    the lab's overlays, and every container on them, are missing there."""
    wanted = ev.spec.cluster_store_url()
    failed = [
        r
        for r in ev.unexplained(engines.ADVERTISE)
        if "cluster_store" in r.details and r.details["cluster_store"] != wanted
    ]
    if not failed:
        return []
    nodes = sorted(r.target for r in failed)
    follows = (*NODE_DEPENDENT, probes_running.RUNNING, stacks.RUNNING)
    explained = [*failed, *(r for node in nodes for r in ev.involving(node, follows))]
    stores = sorted({str(r.details["cluster_store"]) for r in failed})
    return [
        Diagnosis(
            cause=f"{len(nodes)} engine(s) run with another cluster store than the spec's",
            detail=f"{', '.join(nodes)} use {', '.join(stores)}, the spec says {wanted}: the "
            "lab's overlays live in the spec's store, so they do not exist on those engines, "
            "and no container there can join them. `invoke up` rewrites daemon.json and "
            "restarts the engines.",
            nodes=nodes,
            checks=ev.explain(explained),
        )
    ]
