"""Stack containers and the apps in them: a container that does not serve, an app
registered at its docker_gwbridge address."""

from __future__ import annotations

from overlaylab.verify.checks import discovery, names, ports, stacks
from overlaylab.verify.diagnosis.evidence import Diagnosis, Evidence


def stack_containers_not_serving(ev: Evidence) -> list[Diagnosis]:
    """A stack container that is there but does not serve (paused, cut from a network
    its compose file gives it): one cause per service, with what it broke downstream
    (its published ports, its names, the results left untested because of it)."""
    found = []
    for result in ev.unexplained(stacks.RUNNING):
        broken = {c: p for c, p in (result.details.get("containers") or {}).items() if p}
        if not broken:
            continue  # no container at all: the per-check rule below says so
        node, service = result.target, result.details.get("service")
        downstream = [
            *(
                r
                for r in ev.unexplained(ports.PUBLISHED)
                if r.target == node and r.details.get("service") == service
            ),
            *(r for r in ev.unexplained(names.RESOLVE) if r.details.get("container") in broken),
            *ev.untested_because(node, stacks.RUNNING),
        ]
        what = "; ".join(f"{c} {', '.join(p)}" for c, p in sorted(broken.items()))
        found.append(
            Diagnosis(
                cause=f"{service} on {node} does not serve: {what}",
                detail=result.hint,
                nodes=[node],
                checks=ev.explain([result, *downstream]),
            )
        )
    return found


def registered_gwbridge(ev: Evidence) -> list[Diagnosis]:
    """Apps whose registered address is their docker_gwbridge leg: one cause for all."""
    failed = [r for r in ev.unexplained(discovery.ENDPOINTS) if r.details.get("gwbridge")]
    if not failed:
        return []
    return [
        Diagnosis(
            cause=f"{len(failed)} app(s) registered their docker_gwbridge address for "
            "discovery: peers on other hosts cannot reach it",
            detail=f"{failed[0].subject}: {failed[0].message}. {failed[0].hint}",
            nodes=sorted({r.target for r in failed if r.target}),
            checks=ev.explain(failed),
        )
    ]
