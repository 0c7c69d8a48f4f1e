"""The docker_gwbridge misery: the address an app picks for itself, versus its overlay one.

Every container on an overlay also gets a leg on docker_gwbridge (a node-local
172.18/16 bridge) for egress. An app that registers "its" address with a service
registry picks one of the two; if it picks the gwbridge one, peers on other hosts
cannot reach it and health checks fail. The spec says per service how its app picks
(`stacks[].advertise`); the check applies that rule to the container's real
interfaces.
"""

from __future__ import annotations

import ipaddress
import re

import docker.errors

from overlaylab.verify.check import Check
from overlaylab.verify.checks.service_registry import registered
from overlaylab.verify.checks.stack_containers import StackContainer, stack_containers
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

IFACE_LINE = re.compile(r"^(\d+):\s+(\S+)\s+inet\s+([0-9.]+)/(\d+)", re.M)
HINT = (
    "make the app advertise its overlay address: bind/advertise it explicitly (consul "
    "`-advertise '{{ GetInterfaceIP \"eth0\" }}'`, spring.cloud.consul.discovery.ip-address), "
    "or give the overlay a known --subnet and prefer it (spring.cloud.inetutils."
    "preferred-networks=10.0.9), or put the service on an --internal overlay (no "
    "docker_gwbridge leg). Ignoring `docker_gwbridge` by name does nothing: inside the "
    "container that leg is just eth1."
)


def interfaces(ip_output: str) -> list[tuple[int, str, str]]:
    """(index, name, address) of the IPv4 interfaces in `ip -o -4 addr` output."""
    return [(int(i), name, addr) for i, name, addr, _ in IFACE_LINE.findall(ip_output)]


def pick(
    rule: str, ifaces: list[tuple[int, str, str]], hosts_address: str | None
) -> tuple[str, str] | None:
    """(address, interface) the app would pick under `rule`, or None."""
    candidates = sorted(i for i in ifaces if i[1] != "lo" and not i[2].startswith("127."))
    if not candidates:
        return None
    if rule == "hostname":
        if hosts_address is None:
            return None
        name = next((n for _, n, a in candidates if a == hosts_address), "/etc/hosts")
        return hosts_address, name
    chosen = candidates[-1] if rule == "java-enumeration" else candidates[0]
    return chosen[2], chosen[1]


def _hosts_address(hosts: str, hostname: str) -> str | None:
    for line in hosts.splitlines():
        words = line.split()
        if len(words) > 1 and hostname in words[1:] and not words[0].startswith(("127.", ":")):
            return words[0]
    return None


def _gwbridge_subnet(vctx: VerifyContext, node: str) -> ipaddress.IPv4Network | None:
    with vctx.lab.node(node).engine(timeout=10) as client:
        try:
            config = client.api.inspect_network("docker_gwbridge")["IPAM"]["Config"]
        except docker.errors.NotFound:
            return None  # no container on an overlay there yet: no gwbridge either
    return ipaddress.IPv4Network(config[0]["Subnet"]) if config else None


def _gwbridge_owner(vctx: VerifyContext, node: str, address: str) -> str | None:
    """Name of the container on `node` that holds `address` on its docker_gwbridge."""
    with vctx.lab.node(node).engine(timeout=10) as client:
        try:
            containers = client.api.inspect_network("docker_gwbridge").get("Containers") or {}
        except docker.errors.NotFound:
            return None
    for info in containers.values():
        if info.get("IPv4Address", "").split("/")[0] == address:
            return info.get("Name")
    return None


def _check_one(vctx: VerifyContext, c: StackContainer, rule: str) -> CheckResult:
    overlay_addresses = {
        a: n for n, a in c.networks.items() if n in {net.name for net in vctx.lab.spec.networks}
    }
    # Read twice at most: an exec that answers with nothing to read (seen once, exit 0,
    # on a loaded machine) is one moment, not the container's interfaces.
    for _attempt in range(2):
        code, out, cmd = vctx.exec(
            c.node,
            c.name,
            ["sh", "-c", "ip -o -4 addr; echo ==; hostname; echo ==; cat /etc/hosts"],
            timeout=5,
        )
        ip_out, _, rest = out.partition("==")
        hostname, _, hosts = rest.partition("==")
        ifaces = interfaces(ip_out)
        chosen = pick(rule, ifaces, _hosts_address(hosts, hostname.strip()))
        if code == 0 and chosen is not None:
            break
    overlay = next(iter(overlay_addresses.values()), "")
    subject = f"{c.stack}/{c.service} on {c.node} ({rule})"
    details = {
        "rule": rule,
        "interfaces": [list(i) for i in ifaces],
        "overlay_addresses": overlay_addresses,
    }
    if code != 0 or chosen is None:
        return CheckResult(
            check="advertise.address",
            subject=subject,
            status="error",
            message=f"could not read the container's interfaces (exit {code})",
            command=cmd,
            output=out.strip()[-400:],
            nodes=[c.node],
            target=c.node,
            network=overlay,
            details=details,
        )
    address, iface = chosen
    details["picked"] = {"address": address, "interface": iface}
    if address in overlay_addresses:
        return CheckResult(
            check="advertise.address",
            subject=subject,
            status="pass",
            message=f"picks {address} ({iface}, overlay {overlay_addresses[address]})",
            nodes=[c.node],
            target=c.node,
            network=overlay,
            details=details,
        )
    # Not an overlay address: show whether peers can reach it, as evidence.
    overlay_iface = next((n for _, n, a in ifaces if a in overlay_addresses), "?")
    own = list(overlay_addresses)
    gwbridge = _gwbridge_subnet(vctx, c.node)
    if gwbridge is not None and ipaddress.IPv4Address(address) in gwbridge:
        iface = f"{iface}, docker_gwbridge {gwbridge}"
        details["picked"]["network"] = "docker_gwbridge"
    message = (
        f"picks {address} ({iface}), not its overlay address "
        f"{', '.join(own) or '?'} ({overlay_iface})"
    )
    peer = next((p for p in vctx.probes if p.node != c.node and p.network in c.networks), None)
    if peer is not None:
        pcode, _pout, pcmd = vctx.exec(
            peer, None, ["ping", "-c", "1", "-W", "1", address], timeout=3
        )
        owner = _gwbridge_owner(vctx, peer.node, address)
        if pcode != 0:
            message += f"; from {peer.node} {address} does not answer"
        elif owner:
            message += (
                f"; from {peer.node} {address} answers, but that is {owner} on "
                f"{peer.node}'s own docker_gwbridge: peers reach the wrong container"
            )
        else:
            message += f"; from {peer.node} {address} answers (routed outside the overlay)"
        details["peer_probe"] = {"from": peer.node, "answered": pcode == 0, "owner": owner}
        cmd = pcmd
    return CheckResult(
        check="advertise.address",
        subject=subject,
        status="fail",
        message=message,
        hint=HINT,
        nodes=[c.node],
        target=c.node,
        network=overlay,
        command=cmd,
        details=details,
    )


def advertised(vctx: VerifyContext) -> list[CheckResult]:
    rules = {(s.name, svc): rule for s in vctx.lab.spec.stacks for svc, rule in s.advertise.items()}
    containers = [
        c
        for c in stack_containers(vctx)
        if (set(c.networks) | set(c.wanted)) & {n.name for n in vctx.lab.spec.networks}
    ]
    if not containers:
        return [
            CheckResult.skip(
                "advertise.address", "stacks", "no stack containers on the spec's overlays"
            )
        ]
    # An app that registered itself is judged by what it registered (discovery.endpoints).
    found, _ = registered(vctx)
    self_registered = {str(e.get("id")) for e in found or []}

    def one(c: StackContainer) -> list[CheckResult]:
        # Paused (no exec), or cut from an overlay: which address it picks is moot.
        if c.state != "running" or set(c.wanted) - set(c.networks):
            return [
                CheckResult.untested(
                    "advertise.address",
                    c.node,
                    f"{c.stack}/{c.service}: {c.name} {', '.join(c.problems)}",
                    because="stacks.running",
                )
            ]
        if c.short_id in self_registered and (c.stack, c.service) not in rules:
            return [
                CheckResult.skip(
                    "advertise.address",
                    f"{c.stack}/{c.service} on {c.node}",
                    "it registered itself: discovery.endpoints checks the address it registered",
                    nodes=[c.node],
                )
            ]
        return [_check_one(vctx, c, rules.get((c.stack, c.service), "first-interface"))]

    return vctx.map(one, containers)


ADDRESS = Check(
    "advertise.address",
    "advertise",
    "the address each app would advertise is one its peers can reach",
    advertised,
    needs_probes=True,
)

CHECKS = [ADDRESS]
