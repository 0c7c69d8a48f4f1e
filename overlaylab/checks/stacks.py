"""Every service of every stack runs where the spec places it: the other stack checks
(names, advertised addresses, published ports) can only test containers that exist."""

from __future__ import annotations

from overlaylab.checks.base import Check, VerifyContext
from overlaylab.checks.result import CheckResult
from overlaylab.checks.stack_containers import stack_containers, unreachable_stack_nodes

HINT = (
    "`invoke up` starts missing services; if one exits again, read its log with "
    '`docker logs` on that node (`eval "$(invoke env NODE)"`)'
)


def running(vctx: VerifyContext) -> list[CheckResult]:
    placements = [
        (stack.name, service, node)
        for stack in vctx.lab.spec.stacks
        for service, node in sorted(stack.services.items())
    ]
    if not placements:
        return [CheckResult.skip("stacks.running", "stacks", "the spec deploys no stacks")]
    found = {(c.stack, c.service, c.node): c for c in stack_containers(vctx)}
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
        container = found.get((stack, service, node))
        results.append(
            CheckResult(
                check="stacks.running",
                subject=subject,
                status="pass" if container else "fail",
                message=f"{container.name} runs" if container else "no running container",
                hint="" if container else HINT,
                nodes=[node],
                target=node,
                details={"container": container.name if container else None},
            )
        )
    return results


CHECKS = [
    Check(
        "stacks.running",
        "stacks",
        "every stack service runs on the node the spec places it on",
        running,
    )
]
