"""The swarm checks: one group for both orchestrations, each check run by its own.

- swarm.nodes: swarm mode (swarm_mode.py) or classic swarm (classic_swarm.py), by
  the spec's orchestration.mode; skipped without one.
- swarm.replicas, swarm.services: swarm mode (swarm_mode.py, swarm_services.py).
- swarm.schedule: classic swarm (classic_swarm.py).
"""

from __future__ import annotations

from overlaylab.verify.check import Check
from overlaylab.verify.checks import classic_swarm, swarm_mode, swarm_services
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult


def nodes(vctx: VerifyContext) -> list[CheckResult]:
    mode = vctx.lab.spec.orchestration.mode
    if mode == "classic-swarm":
        return classic_swarm.nodes(vctx)
    if mode != "swarm-mode":
        return [CheckResult.skip("swarm.nodes", "swarm", "orchestration.mode is none")]
    return swarm_mode.nodes(vctx)


NODES = Check(
    "swarm.nodes",
    "swarm",
    "every node in the swarm: ready, active, its role, its lab address; a manager quorum",
    nodes,
)

REPLICAS = Check(
    "swarm.replicas",
    "swarm",
    "every stack service runs the tasks it asks for",
    swarm_mode.replicas,
)

SCHEDULE = Check(
    "swarm.schedule",
    "swarm",
    "classic swarm: a probe started through the master with constraint:node==X lands on "
    "X and reaches the other nodes over the overlay",
    classic_swarm.schedule,
    needs_probes=True,
)

SERVICES = Check(
    "swarm.services",
    "swarm",
    "service names resolve as their endpoint mode promises; VIPs answer",
    swarm_services.services,
    needs_probes=True,
)

CHECKS = [NODES, REPLICAS, SCHEDULE, SERVICES]
