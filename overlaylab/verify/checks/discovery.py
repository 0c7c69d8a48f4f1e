"""What apps really registered for discovery, called from the hosts that would call it.

Apps that register themselves (stacks/discovery, or any app using the lab's KV store
as its registry) leave address:port and a health URL there: etcd keys under
/services/<name>/<id>, or consul's agent services. Each registered endpoint is called
from a probe on every other host; an app that registered its docker_gwbridge address
answers nobody there, which is the article's broken health check, found from evidence
rather than from a declared rule (`stacks[].advertise` stays for apps that do not
register).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from overlaylab.verify.check import Check
from overlaylab.verify.checks.advertise import HINT as GWBRIDGE_HINT
from overlaylab.verify.checks.probe_pairs import until
from overlaylab.verify.checks.service_registry import has_registry, registered
from overlaylab.verify.checks.stack_containers import StackContainer, stack_containers
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe
from overlaylab.verify.result import CheckResult

# A GET with busybox nc (its wget crashed on lookups); the status line is all we need.
_GET = 'printf "GET %s HTTP/1.0\\r\\n\\r\\n" "$3" | nc -w 2 "$1" "$2" | head -1'


def endpoints(vctx: VerifyContext) -> list[CheckResult]:
    found, why = registered(vctx)
    if found is None and has_registry(vctx):
        # What apps registered is unknown: not a pass, and not a quiet skip either.
        store = vctx.lab.spec.kv
        assert store is not None
        return [
            CheckResult.untested(
                "discovery.endpoints", store.node, why, "kv.reachable", target=store.node
            )
        ]
    if found is None:
        return [CheckResult.skip("discovery.endpoints", "registry", why)]
    if not found:
        return [CheckResult.skip("discovery.endpoints", "registry", "no app registered itself")]
    containers = {c.short_id: c for c in stack_containers(vctx)}
    return vctx.map(lambda entry: [_call(vctx, entry, containers.get(entry["id"]))], found)


def _overlay_of(c: StackContainer | None, vctx: VerifyContext) -> tuple[str, str]:
    """(network, address) of the container on the spec's first overlay it is on."""
    if c is None:
        return "", ""
    for net in vctx.lab.spec.networks:
        if net.name in c.networks:
            return net.name, c.networks[net.name]
    return "", ""


def _call(vctx: VerifyContext, entry: dict[str, Any], c: StackContainer | None) -> CheckResult:
    address, port = str(entry["address"]), int(entry["port"])
    path = "/" + str(entry["health"]).split("/", 3)[-1]
    network, overlay_address = _overlay_of(c, vctx)
    home = c.node if c else ""
    callers = [
        p
        for p in vctx.probes
        if p.slot == "a" and p.node != home and (not network or p.network == network)
    ]
    subject = f"{entry['name']} {address}:{port} ({entry['id']}{f' on {home}' if home else ''})"
    if not callers:
        return CheckResult.untested(
            "discovery.endpoints", home or "lab", f"no probe on another host to call {subject}",
            because="probes.running",
        )  # fmt: skip
    failed: dict[str, str] = {}
    command = ""
    for probe in callers:

        def attempt(probe: Probe = probe) -> tuple[bool, int, str, str]:
            argv = ["sh", "-c", _GET, "get", address, str(port), path]
            code, out, cmd = vctx.exec(probe, None, argv, timeout=6)
            return " 200 " in out, code, out, cmd

        ok, _code, out, cmd, _tries = until(vctx, attempt)
        if not ok:
            failed[probe.node] = out.strip()[-120:] or "no answer"
            command = command or cmd
    gwbridge = bool(overlay_address) and address != overlay_address and _private_bridge(address)
    if not failed:
        message = f"health {path} answers from {', '.join(sorted(p.node for p in callers))}"
    else:
        message = f"health {path} does not answer from {', '.join(sorted(failed))}"
        if gwbridge:
            message += f"; it registered {address}, not its overlay address {overlay_address}"
    return CheckResult(
        check="discovery.endpoints",
        subject=subject,
        status="fail" if failed else "pass",
        message=message,
        hint=(GWBRIDGE_HINT if gwbridge else "see connectivity.* and the app's log")
        if failed
        else "",
        nodes=sorted({home, *failed} - {""}),
        target=home,
        network=network,
        command=command,
        details={
            "registered": f"{address}:{port}",
            "overlay_address": overlay_address,
            "gwbridge": gwbridge,
            "failed_from": failed,
        },
    )


def _hint(failed: dict[str, str], gwbridge: bool) -> str:
    if not failed:
        return ""
    return GWBRIDGE_HINT if gwbridge else "see connectivity.* and the app's log"


def _private_bridge(address: str) -> bool:
    """docker_gwbridge takes its subnet from Docker's local pools (172.17-31/16, 192.168/20)."""
    ip = ipaddress.IPv4Address(address)
    return ip in ipaddress.IPv4Network("172.16.0.0/12") or ip in ipaddress.IPv4Network(
        "192.168.0.0/16"
    )


ENDPOINTS = Check(
    "discovery.endpoints",
    "discovery",
    "every endpoint apps registered in the lab's registry answers its health URL from "
    "the other hosts",
    endpoints,
    needs_probes=True,
)

CHECKS = [ENDPOINTS]
