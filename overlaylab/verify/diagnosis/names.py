"""Probe names that resolve wrongly."""

from __future__ import annotations

from overlaylab.verify.checks import connectivity, names
from overlaylab.verify.diagnosis.evidence import (
    Diagnosis,
    Evidence,
    blamed_nodes,
    connected_by_name,
    unanswered_only_on,
)
from overlaylab.verify.result import CheckResult


def probe_names_wrong(ev: Evidence) -> list[Diagnosis]:
    """A probe name that resolves wrongly (a stale record) also fails TCP, which connects
    by name, while everything by address passes: that is DNS, not the data plane."""
    failed = ev.unexplained(connectivity.DNS)
    if not failed:
        return []
    by_name = connected_by_name(ev, failed)
    stale = [r for r in failed if r.details.get("resolved")]
    silent = _silent_node(ev, failed) if not stale else None
    if silent is not None:
        return [_no_dns_on(ev, silent, failed, by_name)]
    detail = (
        f"{'; '.join(r.subject for r in failed[:3])}: {failed[0].message}. "
        + (
            "A name that resolves to another address is a stale record of a removed "
            "container; connections by name go there. "
            if stale
            else ""
        )
        + failed[0].hint
    )
    return [
        Diagnosis(
            cause=f"{len(failed)} probe name lookups fail",
            detail=detail,
            nodes=blamed_nodes(failed),
            checks=ev.explain([*failed, *by_name]),
        )
    ]


def _silent_node(ev: Evidence, failed: list[CheckResult]) -> str | None:
    """The node whose probes get no name answered at all, when every failing lookup
    starts there and none resolved wrongly: their DNS is gone, not a record."""
    sources = {r.source for r in failed}
    if len(sources) != 1 or "" in sources:
        return None
    [node] = sources
    answered = [
        r
        for r in ev.results
        if r.check == connectivity.DNS.id and r.source == node and r.status == "pass"
    ]
    return None if answered else node


def _no_dns_on(
    ev: Evidence, node: str, failed: list[CheckResult], by_name: list[CheckResult]
) -> Diagnosis:
    # The stack names looked up from the same node's probes fail for the same reason.
    lookups = [r for r in ev.unexplained(names.RESOLVE) if unanswered_only_on(r, node)]
    return Diagnosis(
        cause=f"names do not resolve in {node}'s containers: their DNS (127.0.0.11) is silent",
        detail=f"every probe name looked up from {node} fails ({failed[0].message}), from "
        "every other node they resolve, and by address the same paths work: the containers "
        f"on {node} cannot reach the engine's embedded DNS server (127.0.0.11, which the "
        "engine serves inside each container). Look for a firewall inside the containers "
        "(iptables in their network namespace), a resolv.conf that points elsewhere, or the "
        f"engine on {node} (its log).",
        nodes=[node],
        checks=ev.explain([*failed, *by_name, *lookups]),
    )
