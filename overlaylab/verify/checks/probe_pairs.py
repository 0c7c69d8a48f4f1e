"""What the checks that look between probes share: the pairs each overlay is tested on,
a retry within the check's window, a pair's result and the hints it carries, and
nslookup's answer read."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from itertools import permutations

from overlaylab.verify.batch import Outcome
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe
from overlaylab.verify.result import CheckResult, PathKind

HINT_DATAPLANE = (
    "overlay traffic between hosts is VXLAN on udp/4789 between the nodes' advertised "
    "addresses: check that port on both nodes (firewall), that both engines advertise a "
    "lab address (engines.advertise) and that the nodes reach each other (underlay.*)"
)


HINT_SAME_HOST = (
    "two containers on one host do not need VXLAN: a same-host failure points at the node "
    "itself (its overlay sandbox, bridge or iptables), not at the network between hosts"
)


HINT_DNS = (
    "overlay names are answered by the engine's embedded DNS (127.0.0.11), which learns "
    "remote containers through the KV store: check kv.* and the engine on both nodes"
)


HINT_DNS_SWARM = (
    "overlay names are answered by the engine's embedded DNS (127.0.0.11), which learns "
    "other nodes' containers over the swarm's gossip (networkdb, tcp+udp 7946): check "
    "underlay.gossip and the engine on both nodes"
)


Attempt = Callable[[], tuple[bool, int, str, str]]


def pairs(vctx: VerifyContext) -> list[tuple[Probe, Probe]]:
    """Cross-host pairs between first probes, plus first -> second on each node."""
    found: list[tuple[Probe, Probe]] = []
    for net in vctx.lab.spec.networks:
        found += list(permutations(vctx.probes_on(net.name), 2))
        for first in vctx.probes_on(net.name):
            second = vctx.probe(net.name, first.node, "b")
            if second is not None:
                found.append((first, second))
    return found


def until(vctx: VerifyContext, attempt: Attempt) -> tuple[bool, int, str, str, int]:
    """Retry until it succeeds or the check's window closes (the overlay may converge).

    Every attempt runs at least once: a window used up by earlier probes of the same
    check leaves one look at each remaining one, which is what a fault needs."""
    deadline = time.monotonic() + vctx.timeout if vctx.deadline is None else vctx.deadline
    tries = 0
    while True:
        tries += 1
        ok, code, out, cmd = attempt()
        if ok or time.monotonic() >= deadline:
            return ok, code, out, cmd, tries
        time.sleep(0.3)


def path_of(a: Probe, b: Probe) -> PathKind:
    return "same-host" if a.node == b.node else "cross-host"


def subject(a: Probe, b: Probe) -> str:
    target = b.node if b.slot == "a" else f"{b.node} (2nd probe)"
    return f"{a.node} -> {target} over {a.network}"


def pair_result(
    check: str,
    a: Probe,
    b: Probe,
    seen: Outcome,
    message: str,
    hint: str,
    cmd: str,
    **details: object,
) -> CheckResult:
    if not seen.ok and path_of(a, b) == "same-host" and hint not in (HINT_DNS, HINT_DNS_SWARM):
        hint = HINT_SAME_HOST
    return CheckResult(
        check=check,
        subject=subject(a, b),
        status="pass" if seen.ok else "fail",
        message=message,
        hint="" if seen.ok else hint,
        nodes=sorted({a.node, b.node}),
        command=cmd,
        output=seen.output.strip()[-800:],
        details={
            "from": a.name,
            "to": b.name,
            "to_address": b.address,
            "tries": seen.tries,
            **details,
        },
        seconds=seen.seconds,
        source=a.node,
        target=b.node,
        network=a.network,
        path=path_of(a, b),
    )


def resolved(nslookup_output: str) -> list[str]:
    """Addresses in busybox nslookup's answer (after the 'Name:' line)."""
    _, _, answer = nslookup_output.partition("Name:")
    return re.findall(r"Address(?: \d+)?:\s*([0-9.]+)", answer)
