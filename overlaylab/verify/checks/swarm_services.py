"""Swarm mode: what the stacks' services really answer.

swarm.services: each stack service's name resolves, from a probe on every node, to
what its endpoint mode promises (dnsrr: its tasks' addresses; vip: its virtual IP),
and a VIP answers on the ports its tasks serve (published, declared in the compose
file or the image, or listened on). Without IPVS in the kernel a VIP has nothing
behind it ("No route to host"): the result says so, with the fix.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from overlaylab.up.steps.stacks import read_compose
from overlaylab.up.steps.swarm import leader_of, service_name
from overlaylab.up.swarm_stacks import has_ipvs
from overlaylab.verify.checks.probe_pairs import resolved, until
from overlaylab.verify.checks.stack_containers import stack_containers
from overlaylab.verify.checks.swarm_mode import stack_services
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe
from overlaylab.verify.result import CheckResult

DNS_HINT = (
    "swarm's DNS answers a service name with its VIP (vip) or its tasks' addresses "
    "(dnsrr); a stale or missing answer means the tasks are not on this overlay, or "
    "gossip between the nodes is cut (see connectivity.*)"
)


# busybox nc has no -z: send a request, and exit 0 only when the connection was made.
_CONNECT = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$1" "$2" >/dev/null'

VIP_HINT = "the VIP's tasks do not answer on that port; see swarm.replicas and connectivity.*"

IPVS_HINT = (
    "this kernel has no IPVS (no ip_vs module, no /proc/net/ip_vs): a service's virtual "
    "IP has nothing behind it and the ingress routing mesh cannot forward. Use "
    "`deploy: {endpoint_mode: dnsrr}` with `ports: [{mode: host, ...}]` (what the lab "
    "deploys by default without IPVS), or run the nodes on a kernel with ip_vs "
    "(`modprobe ip_vs`)."
)


def services(vctx: VerifyContext) -> list[CheckResult]:
    found, refused = stack_services(vctx, "swarm.services")
    if found is None:
        return refused
    spec = vctx.lab.spec
    leader = leader_of(spec).name
    with vctx.lab.node(leader).engine(timeout=10) as client:
        overlay_ids = {
            n.id: n.name for n in client.networks.list(names=[n.name for n in spec.networks])
        }
        task_ips = _task_addresses(client, overlay_ids)
    ipvs = {n.name: has_ipvs(vctx.lab, n.name) for n in spec.engine_nodes}
    work = []
    for stack in spec.stacks:
        compose = read_compose(vctx.lab, stack)
        for service, node in sorted(stack.services.items()):
            full = service_name(stack.name, service)
            if full not in found:
                continue  # swarm.replicas reports it
            endpoint = _endpoints(found[full], overlay_ids)
            if endpoint["mode"] == "vip":
                endpoint["ports"] = _vip_ports(vctx, compose, service, full, endpoint["ports"])
            for network in sorted(set(endpoint["vips"]) | set(task_ips.get(full, {}))):
                work.append(
                    (
                        full,
                        service,
                        node,
                        network,
                        endpoint,
                        task_ips.get(full, {}).get(network, []),
                    )
                )

    def one(item: tuple[str, str, str, str, dict[str, Any], list[str]]) -> list[CheckResult]:
        full, short, node, network, endpoint, addresses = item
        return [
            _resolve_service(vctx, name, node, network, endpoint, addresses)
            for name in (short, full)
        ] + _reach_vip(vctx, full, node, network, endpoint, ipvs)

    return vctx.map(one, work)


def _endpoints(attrs: dict[str, Any], overlay_ids: dict[str, str]) -> dict[str, Any]:
    endpoint = attrs.get("Endpoint") or {}
    # The service's spec says the mode; Endpoint.Spec is empty for a service without ports.
    asked = (attrs["Spec"].get("EndpointSpec") or {}).get("Mode")
    mode = asked or (endpoint.get("Spec") or {}).get("Mode") or "vip"
    vips = {
        overlay_ids[v["NetworkID"]]: v["Addr"].split("/")[0]
        for v in endpoint.get("VirtualIPs") or []
        if v["NetworkID"] in overlay_ids
    }
    ports = sorted({p["TargetPort"] for p in endpoint.get("Ports") or []})
    return {"mode": mode, "vips": vips, "ports": ports}


def _task_addresses(client: Any, overlay_ids: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """service name -> overlay -> addresses of its running tasks."""
    names = {s["ID"]: s["Spec"]["Name"] for s in client.api.services()}
    found: dict[str, dict[str, list[str]]] = {}
    for task in client.api.tasks(filters={"desired-state": "running"}):
        service = names.get(task["ServiceID"])
        for attachment in task.get("NetworksAttachments") or []:
            network = overlay_ids.get(attachment["Network"]["ID"])
            if service and network:
                for address in attachment.get("Addresses") or []:
                    found.setdefault(service, {}).setdefault(network, []).append(
                        address.split("/")[0]
                    )
    return found


def _resolve_service(
    vctx: VerifyContext,
    name: str,
    node: str,
    network: str,
    endpoint: dict[str, Any],
    addresses: list[str],
) -> CheckResult:
    expected = (
        sorted(addresses) if endpoint["mode"] == "dnsrr" else [endpoint["vips"].get(network, "")]
    )
    seen: dict[str, list[str]] = {}
    command = output = ""

    def look(probe: Probe) -> tuple[str, str]:
        def attempt() -> tuple[bool, int, str, str]:
            code, out, cmd = vctx.exec(probe, None, ["nslookup", name], timeout=6)
            return sorted(resolved(out)) == expected, code, out, cmd

        # A service just deployed or changed reaches every node's DNS within seconds.
        _ok, _code, out, cmd, _tries = until(vctx, attempt)
        return out, cmd

    probes = vctx.probes_on(network)
    # From every probe at once: one after another, a name no DNS knows cost each probe
    # its own look past the check's --timeout window (a 10 s verify took 37 s).
    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as lookers:
        looked = list(lookers.map(look, probes))
    for probe, (out, cmd) in zip(probes, looked, strict=True):
        seen[probe.node] = sorted(resolved(out))
        if seen[probe.node] != expected and not command:
            command, output = cmd, out
    if not seen:
        return CheckResult.untested(
            "swarm.services",
            node,
            f"no probe on {network} could look up {name}",
            because="probes.running",
            network=network,
        )
    wrong = sorted(n for n, a in seen.items() if a != expected)
    return CheckResult(
        check="swarm.services",
        subject=f"{name} ({endpoint['mode']}) on {network}",
        status="fail" if wrong else "pass",
        message=(
            f"resolves to {seen[wrong[0]]} from {', '.join(wrong)}; expected {expected}"
            if wrong
            else f"-> {expected} from {', '.join(sorted(seen))}"
        ),
        hint=DNS_HINT if wrong else "",
        nodes=sorted({node, *wrong}),
        target=node,
        network=network,
        command=command,
        output=output.strip()[-400:],
        details={"name": name, "expected": expected, "seen": seen, "mode": endpoint["mode"]},
    )


def _compose_ports(compose: dict[str, Any], service: str) -> set[int]:
    """Container ports a compose service declares: `ports` targets and `expose`."""
    definition = (compose.get("services") or {}).get(service) or {}
    found = set()
    for port in definition.get("ports") or []:
        if isinstance(port, dict):
            target = port.get("target")
        else:  # "80:5000", "5000", "5000/tcp", "127.0.0.1:80:5000"
            target = str(port).split("/")[0].rsplit(":", 1)[-1]
        if str(target).isdigit():
            found.add(int(target))
    for port in definition.get("expose") or []:
        target = str(port).split("/")[0]
        if target.isdigit():
            found.add(int(target))
    return found


def listening_ports(proc_net_tcp: str) -> set[int]:
    """TCP ports listened on in /proc/net/tcp{,6} output, on other than a loopback
    address (the embedded DNS listens on 127.0.0.11 in every container)."""
    found = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:
            continue  # a header, or not LISTEN
        address, port = fields[1].rsplit(":", 1)
        try:
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word of the address in host (little) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(words)
        except ValueError:
            continue
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            found.add(int(port, 16))
    return found


def _vip_ports(
    vctx: VerifyContext, compose: dict[str, Any], service: str, full: str, published: list[int]
) -> list[int]:
    """The ports to try a VIP on: the service's published targets, the ports its
    compose file and image declare, and what its tasks listen on. A VIP without a
    published port still carries every connection to its tasks."""
    ports = {*published, *_compose_ports(compose, service)}
    for c in stack_containers(vctx):
        if c.swarm_service != full:
            continue
        ports.update(c.exposed)
        if c.state == "running":
            _code, out, _cmd = vctx.exec(
                c.node, c.name, ["cat", "/proc/net/tcp", "/proc/net/tcp6"], timeout=5
            )
            ports.update(listening_ports(out))
    return sorted(ports)


def _reach_vip(
    vctx: VerifyContext,
    service: str,
    node: str,
    network: str,
    endpoint: dict[str, Any],
    ipvs: dict[str, bool],
) -> list[CheckResult]:
    vip = endpoint["vips"].get(network)
    if endpoint["mode"] != "vip" or not vip:
        return []
    if not endpoint["ports"]:
        return [_vip_without_ports(vctx, service, node, network, vip, ipvs)]
    results = []
    for probe in vctx.probes_on(network):
        for port in endpoint["ports"]:

            def connect(probe: Probe = probe, port: int = port) -> tuple[bool, int, str, str]:
                argv = ["sh", "-c", _CONNECT, "vip", vip, str(port)]
                code, out, cmd = vctx.exec(probe, None, argv, timeout=6)
                return code == 0, code, out, cmd

            no_ipvs = not ipvs.get(probe.node, True)
            # Without IPVS the VIP never starts to work: waiting for it proves nothing.
            _ok, code, out, cmd = connect() if no_ipvs else until(vctx, connect)[:4]
            results.append(
                CheckResult(
                    check="swarm.services",
                    subject=f"{probe.node} -> VIP {vip}:{port} of {service} ({network})",
                    status="pass" if code == 0 else "fail",
                    message="connected"
                    if code == 0
                    else (
                        f"no answer ({out.strip()[-120:] or f'exit {code}'})"
                        + ("; this kernel has no IPVS" if no_ipvs else "")
                    ),
                    hint="" if code == 0 else (IPVS_HINT if no_ipvs else VIP_HINT),
                    nodes=[probe.node, node],
                    source=probe.node,
                    target=node,
                    network=network,
                    command=cmd,
                    details={"vip": vip, "port": port, "ipvs": not no_ipvs},
                )
            )
    return results


def _vip_without_ports(
    vctx: VerifyContext, service: str, node: str, network: str, vip: str, ipvs: dict[str, bool]
) -> CheckResult:
    """No port to try: without IPVS the VIP cannot work on any port, which is a
    finding; with IPVS, the VIP is untested (never a pass)."""
    lacking = sorted(p.node for p in vctx.probes_on(network) if not ipvs.get(p.node, True))
    if not lacking:
        return CheckResult.untested(
            "swarm.services",
            node,
            f"VIP {vip} of {service}: no port known to try it on (none published, "
            "declared or listened on)",
            because="swarm.replicas",
            network=network,
        )
    return CheckResult(
        check="swarm.services",
        subject=f"VIP {vip} of {service} ({network})",
        status="fail",
        message=f"cannot carry a connection from {', '.join(lacking)}: this kernel has no IPVS",
        hint=IPVS_HINT,
        nodes=sorted({*lacking, node}),
        source=lacking[0],
        target=node,
        network=network,
        details={"vip": vip, "port": None, "ipvs": False},
    )
