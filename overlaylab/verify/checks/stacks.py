"""Every service of every stack runs where the spec places it, on the networks its
compose file gives it: the other stack checks (names, advertised addresses, published
ports) can only test containers that exist and serve. A paused container is listed as
up, and one cut from its network still runs: neither serves."""

from __future__ import annotations

from overlaylab.verify.check import Check
from overlaylab.verify.checks.stack_containers import (
    StackContainer,
    stack_containers,
    unreachable_stack_nodes,
)
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

HINT = (
    "`invoke up` starts missing services; if one exits again, read its log with "
    '`docker logs` on that node (`eval "$(invoke env NODE)"`)'
)
HINT_PAUSED = (
    "a paused container keeps its addresses and published ports, but its processes are "
    "frozen: connections open and nothing answers. `docker unpause` it, or `invoke up` "
    "starts it afresh"
)
HINT_NETWORKS = (
    "the container does not sit on every network its compose file gives it (someone ran "
    "`docker network disconnect`, or connected it again without its aliases): peers "
    "cannot reach or name it there. `invoke up` starts it afresh"
)


def running(vctx: VerifyContext) -> list[CheckResult]:
    placements = [
        (stack.name, service, node)
        for stack in vctx.lab.spec.stacks
        for service, node in sorted(stack.services.items())
    ]
    if not placements:
        return [CheckResult.skip("stacks.running", "stacks", "the spec deploys no stacks")]
    found: dict[tuple[str, str, str], list[StackContainer]] = {}
    for c in stack_containers(vctx):
        found.setdefault((c.stack, c.service, c.node), []).append(c)
    down = unreachable_stack_nodes(vctx)
    results = []
    for stack, service, node in placements:
        subject = f"{stack}/{service} on {node}"
        if node in down:
            results.append(
                CheckResult.untested(
                    "stacks.running", node, f"{subject}: its engine does not answer", "engines.api"
                )
            )
            continue
        containers = found.get((stack, service, node), [])
        results.append(_judge(f"{stack}/{service}", subject, node, containers))
    return results


def _judge(service: str, subject: str, node: str, containers: list[StackContainer]) -> CheckResult:
    """Running means serving: on the networks its compose file gives it, not paused."""
    broken = [c for c in containers if not c.serving]
    if not containers:
        message, hint = "no running container", HINT
    elif broken:
        message = "; ".join(f"{c.name} {', '.join(c.problems)}" for c in broken)
        hint = HINT_PAUSED if any(c.state == "paused" for c in broken) else HINT_NETWORKS
    else:
        message, hint = f"{', '.join(c.name for c in containers)} runs", ""
    return CheckResult(
        check="stacks.running",
        subject=subject,
        status="fail" if hint else "pass",
        message=message,
        hint=hint,
        nodes=[node],
        target=node,
        details={
            "service": service,
            "container": containers[0].name if containers else None,
            "containers": {c.name: list(c.problems) for c in containers},
            "state": {c.name: c.state for c in containers},
        },
    )


RUNNING = Check(
    "stacks.running",
    "stacks",
    "every stack service runs on the node the spec places it on, on its compose networks",
    running,
)

CHECKS = [RUNNING]
