"""Connectivity matrix on each overlay: every ordered cross-host pair of the nodes' first
probes, and first -> second probe on each node (same-host), by ICMP, DNS, TCP, UDP and
full-size don't-fragment packets."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations

from overlaylab.probe_tools import DF_ECHO, UDP_SEND, source
from overlaylab.up.steps.images import PROBE_PAGE
from overlaylab.verify.batch import Outcome, keep_ahead, riders, run_tests
from overlaylab.verify.check import Check
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import IPUTILS_PING, PROBE_PORT, PROBE_UDP_PORT, Probe, ProbeTest
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


def _result(
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


def _latency(output: str) -> float | None:
    match = re.search(r"time=([\d.]+) ms", output)
    return float(match[1]) if match else None


# --- what each check runs in the source probe, and what it makes of the answer ------------


def icmp_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    return ProbeTest(
        f"icmp.{a.name}.{b.name}",
        a,
        ["ping", "-c", "1", "-W", "1", b.address],
        lambda code, _out: code == 0,
    )


def icmp_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    latency = _latency(seen.output)
    message = f"ping {b.address}" + (
        f" in {latency:g} ms" if seen.ok and latency is not None else f" failed (exit {seen.code})"
    )
    return _result(
        "connectivity.icmp",
        a,
        b,
        seen,
        message,
        HINT_DATAPLANE,
        cmd,
        latency_ms=latency,
    )


def dns_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    return ProbeTest(
        f"dns.{a.name}.{b.name}",
        a,
        ["nslookup", b.name],
        lambda _code, out: b.address in resolved(out),
    )


def dns_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    got = resolved(seen.output)
    message = f"{b.name} -> {', '.join(got) or 'nothing'}"
    if not seen.ok and got:
        message += f" (its address is {b.address}: a stale record)"
    return _result(
        "connectivity.dns",
        a,
        b,
        seen,
        message,
        HINT_DNS_SWARM if vctx.lab.spec.orchestration.mode == "swarm-mode" else HINT_DNS,
        cmd,
        name=b.name,
        resolved=got,
    )


TCP_SCRIPT = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$1" "$2"'


def tcp_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    page = PROBE_PAGE.decode().strip()
    return ProbeTest(
        f"tcp.{a.name}.{b.name}",
        a,
        ["sh", "-c", TCP_SCRIPT, "tcp", b.name, str(PROBE_PORT)],
        lambda _code, out: page in out,
        timeout=4,
    )


def tcp_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    message = f"tcp {b.name}:{PROBE_PORT} " + (
        "answered" if seen.ok else f"did not answer (exit {seen.code})"
    )
    return _result(
        "connectivity.tcp",
        a,
        b,
        seen,
        message,
        HINT_DATAPLANE,
        cmd,
        port=PROBE_PORT,
    )


def udp_token(a: Probe) -> str:
    """What `a` sends, and must hear back."""
    return f"overlaylab-udp-{a.name}"


UDP_RESEND = 0.25  # seconds between two datagrams of one UDP test
UDP_SENDS = 8  # datagrams at most: UDP_SENDS x UDP_RESEND is the test's patience (2 s)


def udp_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    token = udp_token(a)
    # probe_tools' udp-send: the token again every UDP_RESEND seconds until it is
    # echoed, so a datagram lost on the way costs a resend, not the test.
    argv = [UDP_SEND, b.address, str(PROBE_UDP_PORT), token, str(UDP_SENDS), str(UDP_RESEND)]
    return ProbeTest(
        f"udp.{a.name}.{b.name}",
        a,
        argv,
        lambda _code, out: token in out,
        timeout=2 + int(UDP_SENDS * UDP_RESEND),
    )


def udp_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    message = f"udp {b.address}:{PROBE_UDP_PORT} " + (
        "echoed" if seen.ok else f"no echo (exit {seen.code})"
    )
    return _result(
        "connectivity.udp",
        a,
        b,
        seen,
        message,
        HINT_DATAPLANE,
        cmd,
        port=PROBE_UDP_PORT,
    )


# The source reads its overlay MTU (eth0's) and sends one echo of that size with
# don't-fragment, past any path MTU its kernel cached (probe_tools' df-echo, run by the
# image's perl; `ping -M do` refuses locally for 10 minutes after a link was too small,
# however well it carries now). When that is lost, a small ping tells whether anything
# crosses at all (if not, it is not the MTU), in the same test: a round of its own would
# cost a fault one more exec and ping timeout.
PERL = "/opt/host/bin/perl"
DF_SCRIPT = (
    "m=$(cat /sys/class/net/eth0/mtu) || exit 2; "
    'echo "overlay mtu $m"; '
    f'{PERL} -e "$2" "$1" "$m" && exit 0; '
    f'{IPUTILS_PING} -c 1 -W 1 "$1" >/dev/null 2>&1; '
    'echo "small ping exit $?"; exit 1'
)
DEFAULT_OVERLAY_MTU = 1450  # said when the source could not read its own


def overlay_mtu(output: str) -> int:
    found = re.search(r"^overlay mtu (\d+)$", output, re.MULTILINE)
    return int(found[1]) if found else DEFAULT_OVERLAY_MTU


def held_path_mtu(output: str) -> int | None:
    """The path MTU the source's kernel holds for the target (df-echo's first line)."""
    found = re.search(r"^path mtu (\d+)$", output, re.MULTILINE)
    return int(found[1]) if found else None


def small_packets_lost(output: str) -> bool:
    """The DF test's small ping after a lost full-size one: did it fail too?"""
    found = re.search(r"^small ping exit (\d+)$", output, re.MULTILINE)
    return found is not None and found[1] != "0"


def mtu_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    argv = ["sh", "-c", DF_SCRIPT, "df", b.address, source(DF_ECHO).decode()]
    return ProbeTest(f"df.{a.name}.{b.name}", a, argv, lambda c, _o: c == 0)


def mtu_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    mtu = overlay_mtu(seen.output)
    message = f"{mtu}-byte packet with don't-fragment to {b.address} " + (
        "crossed" if seen.ok else f"was lost (exit {seen.code})"
    )
    hint = HINT_MTU
    held = held_path_mtu(seen.output)
    cached = held if held is not None and held < mtu else None
    if seen.ok and cached:
        # Not a fault of the path: it carries full-size packets now. The kernel forgets
        # the smaller value by itself; until then it sends smaller packets to b.
        message += (
            f" (the source's kernel still holds a path MTU of {cached} for it, cached from "
            "an earlier 'fragmentation needed': it expires by itself, net.ipv4.route."
            "mtu_expires)"
        )
    small_lost = not seen.ok and small_packets_lost(seen.output)
    # Only an MTU problem if small packets get through: otherwise nothing does.
    if small_lost:
        message += "; small packets are lost too, so this is not the MTU"
        hint = HINT_DATAPLANE
    return _result(
        "mtu.df",
        a,
        b,
        seen,
        message,
        hint,
        cmd,
        overlay_mtu=mtu,
        lab_mtu=vctx.lab.spec.lab.mtu,
        cached_path_mtu=cached,
        # Whether the test's small ping crossed after a lost full-size echo (else None).
        small_packets_cross=not small_lost if "small ping exit" in seen.output else None,
        small_lost=small_lost,
    )


@dataclass(frozen=True)
class PairCheck:
    test: Callable[[VerifyContext, Probe, Probe], ProbeTest]
    # The last argument: the `docker exec` that reproduces the test, as a user would paste it.
    result: Callable[[VerifyContext, Probe, Probe, Outcome, str], CheckResult]


PAIR_CHECKS: dict[str, PairCheck] = {
    "connectivity.icmp": PairCheck(icmp_test, icmp_result),
    "connectivity.dns": PairCheck(dns_test, dns_result),
    "connectivity.tcp": PairCheck(tcp_test, tcp_result),
    "connectivity.udp": PairCheck(udp_test, udp_result),
    "mtu.df": PairCheck(mtu_test, mtu_result),
}


def _run_pair_checks(vctx: VerifyContext, check_ids: list[str]) -> dict[str, list[CheckResult]]:
    """Every pair of every check in `check_ids`, in one shared set of rounds."""
    todo = pairs(vctx)
    tests = {
        (check_id, a, b): PAIR_CHECKS[check_id].test(vctx, a, b)
        for check_id in check_ids
        for a, b in todo
    }
    ahead, standing = riders(vctx)
    seen = run_tests(vctx, [*tests.values(), *ahead])
    keep_ahead(vctx, standing, seen)
    found: dict[str, list[CheckResult]] = {cid: [] for cid in check_ids}
    for (check_id, a, b), test in tests.items():
        cmd = vctx.command(a.node, a.name, test.argv)
        found[check_id].append(PAIR_CHECKS[check_id].result(vctx, a, b, seen[test.id], cmd))
    return found


def pair_check(check_id: str) -> Callable[[VerifyContext], list[CheckResult]]:
    """A check's results, from one batched run of every pair check this verify runs.

    Pairs with a node that has no probes are not listed here: probes.running fails
    that node once, with the reason."""

    def run(vctx: VerifyContext) -> list[CheckResult]:
        done: dict[str, list[CheckResult]] = vctx.cache.setdefault("pair_checks", {})
        if check_id not in done:
            wanted = [c for c in PAIR_CHECKS if c == check_id or c in vctx.selected]
            done.update(_run_pair_checks(vctx, [c for c in wanted if c not in done]))
        return done[check_id]

    return run


ICMP = Check(
    "connectivity.icmp",
    "connectivity",
    "ICMP by address between probes on each overlay",
    pair_check("connectivity.icmp"),
    needs_probes=True,
)

DNS = Check(
    "connectivity.dns",
    "connectivity",
    "probe names resolve, across hosts, to the right address",
    pair_check("connectivity.dns"),
    needs_probes=True,
)

TCP = Check(
    "connectivity.tcp",
    "connectivity",
    "TCP by name to a listening probe",
    pair_check("connectivity.tcp"),
    needs_probes=True,
)

UDP = Check(
    "connectivity.udp",
    "connectivity",
    "UDP datagrams echoed by the other probe",
    pair_check("connectivity.udp"),
    needs_probes=True,
)

MTU_DF = Check(
    "mtu.df",
    "mtu",
    "a full-size don't-fragment packet crosses the overlay",
    pair_check("mtu.df"),
    needs_probes=True,
)

CHECKS = [ICMP, DNS, TCP, UDP, MTU_DF]
