"""Probe names that resolve wrongly."""

from __future__ import annotations

from overlaylab.verify.checks import connectivity
from overlaylab.verify.diagnosis.evidence import Diagnosis, Evidence, blamed_nodes


def probe_names_wrong(ev: Evidence) -> list[Diagnosis]:
    """A probe name that resolves wrongly (a stale record) also fails TCP, which connects
    by name, while everything by address passes: that is DNS, not the data plane."""
    failed = ev.unexplained(connectivity.DNS)
    if not failed:
        return []
    pairs = {(r.source, r.target, r.network, r.path) for r in failed}
    by_name = [
        r
        for r in ev.unexplained(connectivity.TCP)
        if (r.source, r.target, r.network, r.path) in pairs
    ]
    stale = [r for r in failed if r.details.get("resolved")]
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
