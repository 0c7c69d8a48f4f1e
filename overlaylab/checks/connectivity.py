"""Connectivity matrix: every ordered pair of probes on each overlay, cross-host and
same-host, by ICMP, DNS, TCP, UDP and full-size don't-fragment packets."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from itertools import permutations

from overlaylab.checks.base import Check, VerifyContext
from overlaylab.checks.probes import IPUTILS_PING, PROBE_PORT, PROBE_UDP_PORT, SOCAT, Probe
from overlaylab.checks.result import CheckResult, PathKind
from overlaylab.steps.images import PROBE_PAGE

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
HINT_MTU = (
    "containers on an overlay get its links' MTU less 50 bytes of VXLAN headers (1500 - 50 "
    "= 1450 by default); when the lab links carry less than that + 50, full-size packets "
    "with don't-fragment are dropped (TCP stalls on large transfers): raise the lab MTU, or "
    "tell the overlay its links' real MTU (-o com.docker.network.driver.mtu=<lab MTU>; the "
    "driver subtracts the 50 itself)"
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
    """Retry until it succeeds or the verify timeout passes (the overlay may converge)."""
    deadline = time.monotonic() + vctx.timeout
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


def _result(
    check: str,
    a: Probe,
    b: Probe,
    ok: bool,
    message: str,
    hint: str,
    cmd: str,
    out: str,
    started: float,
    **details: object,
) -> CheckResult:
    if not ok and path_of(a, b) == "same-host" and hint != HINT_DNS:
        hint = HINT_SAME_HOST
    return CheckResult(
        check=check,
        subject=subject(a, b),
        status="pass" if ok else "fail",
        message=message,
        hint="" if ok else hint,
        nodes=sorted({a.node, b.node}),
        command=cmd,
        output=out.strip()[-800:],
        details={"from": a.name, "to": b.name, "to_address": b.address, **details},
        seconds=round(time.monotonic() - started, 3),
        source=a.node,
        target=b.node,
        network=a.network,
        path=path_of(a, b),
    )


def icmp_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()

    def attempt() -> tuple[bool, int, str, str]:
        code, out, cmd = vctx.exec(a, None, ["ping", "-c", "1", "-W", "1", b.address], timeout=3)
        return code == 0, code, out, cmd

    ok, code, out, cmd, tries = until(vctx, attempt)
    match = re.search(r"time=([\d.]+) ms", out)
    message = f"ping {b.address}" + (
        f" in {match[1]} ms" if ok and match else f" failed (exit {code})"
    )
    return [
        _result(
            "connectivity.icmp",
            a,
            b,
            ok,
            message,
            HINT_DATAPLANE,
            cmd,
            out,
            started,
            tries=tries,
            latency_ms=float(match[1]) if match else None,
        )
    ]


def resolved(nslookup_output: str) -> list[str]:
    """Addresses in busybox nslookup's answer (after the 'Name:' line)."""
    _, _, answer = nslookup_output.partition("Name:")
    return re.findall(r"Address(?: \d+)?:\s*([0-9.]+)", answer)


def dns_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()

    def attempt() -> tuple[bool, int, str, str]:
        code, out, cmd = vctx.exec(a, None, ["nslookup", b.name], timeout=3)
        return b.address in resolved(out), code, out, cmd

    ok, _code, out, cmd, tries = until(vctx, attempt)
    got = resolved(out)
    message = f"{b.name} -> {', '.join(got) or 'nothing'}"
    if not ok and got:
        message += f" (its address is {b.address}: a stale record)"
    return [
        _result(
            "connectivity.dns",
            a,
            b,
            ok,
            message,
            HINT_DNS,
            cmd,
            out,
            started,
            tries=tries,
            name=b.name,
            resolved=got,
        )
    ]


def tcp_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()
    script = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$1" "$2"'

    def attempt() -> tuple[bool, int, str, str]:
        code, out, cmd = vctx.exec(
            a, None, ["sh", "-c", script, "tcp", b.name, str(PROBE_PORT)], timeout=4
        )
        return PROBE_PAGE.decode().strip() in out, code, out, cmd

    ok, code, out, cmd, tries = until(vctx, attempt)
    message = f"tcp {b.name}:{PROBE_PORT} " + (
        "answered" if ok else f"did not answer (exit {code})"
    )
    return [
        _result(
            "connectivity.tcp",
            a,
            b,
            ok,
            message,
            HINT_DATAPLANE,
            cmd,
            out,
            started,
            tries=tries,
            port=PROBE_PORT,
        )
    ]


def udp_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()
    token = f"overlaylab-udp-{a.name}"
    # -t: how long socat waits for the echo once stdin is done. Its default (0.5 s) is
    # shorter than a first reply can take on a loaded host, which made UDP flaky.
    script = f'echo {token} | {SOCAT} -T 3 -t 2 - "UDP:$1:$2"'

    def attempt() -> tuple[bool, int, str, str]:
        code, out, cmd = vctx.exec(
            a, None, ["sh", "-c", script, "udp", b.address, str(PROBE_UDP_PORT)], timeout=4
        )
        return token in out, code, out, cmd

    ok, code, out, cmd, tries = until(vctx, attempt)
    message = f"udp {b.address}:{PROBE_UDP_PORT} " + ("echoed" if ok else f"no echo (exit {code})")
    return [
        _result(
            "connectivity.udp",
            a,
            b,
            ok,
            message,
            HINT_DATAPLANE,
            cmd,
            out,
            started,
            tries=tries,
            port=PROBE_UDP_PORT,
        )
    ]


def overlay_mtu(vctx: VerifyContext, probe: Probe) -> int:
    code, out, _ = vctx.exec(probe, None, ["cat", "/sys/class/net/eth0/mtu"], timeout=3)
    return int(out.strip()) if code == 0 and out.strip().isdigit() else 1450


def mtu_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()
    mtu = overlay_mtu(vctx, a)
    payload = mtu - 28  # IPv4 (20) + ICMP (8) headers

    def attempt() -> tuple[bool, int, str, str]:
        argv = [IPUTILS_PING, "-M", "do", "-s", str(payload), "-c", "1", "-W", "1", b.address]
        code, out, cmd = vctx.exec(a, None, argv, timeout=3)
        return code == 0, code, out, cmd

    ok, code, out, cmd, tries = until(vctx, attempt)
    message = f"{mtu}-byte packet with don't-fragment to {b.address} " + (
        "crossed" if ok else f"was lost (exit {code})"
    )
    hint = HINT_MTU
    if not ok:
        # Only an MTU problem if small packets get through: otherwise nothing does.
        small = [IPUTILS_PING, "-c", "1", "-W", "1", b.address]
        if vctx.exec(a, None, small, timeout=3)[0] != 0:
            message += "; small packets are lost too, so this is not the MTU"
            hint = HINT_DATAPLANE
    lab_mtu = vctx.lab.spec.lab.mtu
    return [
        _result(
            "mtu.df",
            a,
            b,
            ok,
            message,
            hint,
            cmd,
            out,
            started,
            tries=tries,
            overlay_mtu=mtu,
            lab_mtu=lab_mtu,
        )
    ]


def matrix(
    fn: Callable[[VerifyContext, Probe, Probe], list[CheckResult]],
) -> Callable[[VerifyContext], list[CheckResult]]:
    """Run `fn` over every pair. Pairs with a node that has no probes are not listed
    here: probes.running fails that node once, with the reason."""

    def run(vctx: VerifyContext) -> list[CheckResult]:
        return vctx.map(lambda pair: fn(vctx, *pair), pairs(vctx))

    return run


CHECKS = [
    Check(
        "connectivity.icmp",
        "connectivity",
        "ICMP by address between probes on each overlay",
        matrix(icmp_pair),
        needs_probes=True,
    ),
    Check(
        "connectivity.dns",
        "connectivity",
        "probe names resolve, across hosts, to the right address",
        matrix(dns_pair),
        needs_probes=True,
    ),
    Check(
        "connectivity.tcp",
        "connectivity",
        "TCP by name to a listening probe",
        matrix(tcp_pair),
        needs_probes=True,
    ),
    Check(
        "connectivity.udp",
        "connectivity",
        "UDP datagrams echoed by the other probe",
        matrix(udp_pair),
        needs_probes=True,
    ),
    Check(
        "mtu.df",
        "mtu",
        "a full-size don't-fragment packet crosses the overlay",
        matrix(mtu_pair),
        needs_probes=True,
    ),
]
