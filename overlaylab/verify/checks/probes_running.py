"""Every engine node runs its probes: the checks that look through probes test nothing
on a node without them, so that node fails here, once, with the reason."""

from __future__ import annotations

from overlaylab.verify.check import Check
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import SLOTS
from overlaylab.verify.result import CheckResult

HINT = (
    "probes are containers from the offline probe image, started on every overlay: a node "
    "that cannot start them has a dead or broken engine (engines.api, the engine's log) or "
    "lacks the image (`invoke up` loads it). Until they run, no path to or from it is tested."
)


def running(vctx: VerifyContext) -> list[CheckResult]:
    results = []
    networks = [n.name for n in vctx.lab.spec.networks]
    for node in (n.name for n in vctx.lab.spec.engine_nodes):
        mine = [p for p in vctx.probes if p.node == node]
        why = vctx.probe_problems.get(node)
        if why is None and len(mine) == len(networks) * len(SLOTS):
            message = f"{len(mine)} probes on {', '.join(networks)}"
            results.append(
                CheckResult(
                    check="probes.running",
                    subject=node,
                    status="pass",
                    message=message,
                    nodes=[node],
                    target=node,
                )
            )
            continue
        results.append(
            CheckResult(
                check="probes.running",
                subject=node,
                status="fail",
                message=f"no probe runs on {node}, so no path to or from it is tested: "
                f"{why or 'probes missing'}",
                hint=HINT,
                nodes=[node],
                target=node,
                details={"exception": why, "probes": [p.name for p in mine]},
            )
        )
    return results


RUNNING = Check(
    "probes.running",
    "probes",
    "every engine node runs its probe containers on every overlay",
    running,
    reads_probes=True,
)

CHECKS = [RUNNING]
