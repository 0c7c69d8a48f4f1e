"""Classic swarm: what the master sees, and whether it schedules where it is told.

- swarm.nodes (classic): each swarm node is registered in discovery, listed by the
  master as Healthy, at its engine's lab address. Each failure says which of the three
  broke: an agent that never registered, an agent advertising another address, a
  master that cannot read the store (it then lists nothing at all).
- swarm.schedule: a probe started through the master with `constraint:node==X` (the
  2015 way) lands on X and reaches the other nodes' probes over the overlay.
"""

from __future__ import annotations

import json
import secrets

from overlaylab.errors import CommandError
from overlaylab.layout import schedule_address
from overlaylab.overlay.peers import destination, vtep
from overlaylab.providers.command import TIMED_OUT, CommandResult
from overlaylab.up.classic_swarm import (
    AGENT,
    MANAGE_PORT,
    MASTER,
    discovery_store,
    discovery_url,
    listed_nodes,
    master_cli,
    master_info,
    masters,
    swarm_nodes,
)
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

DISCOVERY_PATH = "docker/swarm/nodes"
SCHEDULE_LABEL = "overlaylab.schedule"  # = the node a scheduling probe was sent to


def _discovered(vctx: VerifyContext) -> set[str] | None:
    """Addresses registered under swarm's discovery path (None: cannot tell)."""
    spec = vctx.lab.spec
    store = discovery_store(spec)
    kv = vctx.lab.node(store.node)
    address, port = str(spec.address_of(store.node)), store.client_port
    try:
        if store.backend == "etcd":
            status, body = kv.http_get(address, port, f"/v2/keys/{DISCOVERY_PATH}", timeout=2)
            if status == 404:
                return set()
            return {n["value"] for n in json.loads(body).get("node", {}).get("nodes", [])}
        if store.backend == "consul":
            status, body = kv.http_get(address, port, f"/v1/kv/{DISCOVERY_PATH}/?keys", timeout=2)
            return set() if status == 404 else {k.rsplit("/", 1)[-1] for k in json.loads(body)}
    except (OSError, ValueError):
        return None
    return None  # zookeeper: the master's own list has to do


def nodes(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    master = masters(spec)[0]
    try:
        listed = listed_nodes(master_info(vctx.lab, master))
        why = ""
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        listed, why = {}, f"the master's API on {master.address}:{MANAGE_PORT} fails: {exc}"
    discovered = _discovered(vctx)
    results = []
    for node in swarm_nodes(spec):
        wanted = f"{node.address}:{spec.engine.api_port}"
        seen = listed.get(node.name)
        problems, hint = [], ""
        if why:
            problems.append(why)
            hint = f"`docker logs {MASTER}` on {master.name}"
        elif discovered is not None and wanted not in discovered:
            elsewhere = sorted(a for a in discovered if a.split(":")[0] == str(node.address))
            if elsewhere:
                problems.append(
                    f"its agent advertises {', '.join(elsewhere)}, the engine is {wanted}"
                )
                hint = f"the agent's `join --advertise` must be the engine's address, {wanted}"
            else:
                problems.append(f"{wanted} is not registered in {discovery_url(spec)}")
                hint = (
                    f"its agent ({AGENT}) registers the engine's address every 60 s: "
                    f"`docker logs {AGENT}` on {node.name}; is the KV store reachable from it?"
                )
        elif seen is None and not listed:
            problems.append("the master lists no node at all")
            hint = (
                f"the master cannot read {discovery_url(spec)}: `docker logs {MASTER}` on "
                f"{master.name}, and kv.reachable"
            )
        elif seen is None:
            problems.append("registered, but the master does not list it")
            hint = f"`docker logs {MASTER}` on {master.name}"
        else:
            if seen.get("address") != wanted:
                problems.append(f"listed at {seen.get('address')}, its engine is {wanted}")
                hint = f"the agent's --advertise must be the engine's lab address ({wanted})"
            if seen.get("status") != "Healthy":
                problems.append(f"status {seen.get('status')}: {seen.get('error', '')}")
                hint = hint or (
                    f"the master reaches each engine at its advertised address over TLS; "
                    f"from {master.name}: can it open {wanted}?"
                )
        results.append(
            CheckResult(
                check="swarm.nodes",
                subject=f"{node.name} (classic swarm)",
                status="fail" if problems else "pass",
                message="; ".join(problems) or f"Healthy at {wanted}",
                hint=hint,
                nodes=sorted({node.name, master.name}),
                source=master.name,
                target=node.name,
                details={"listed": seen or {}, "discovered": sorted(discovered or [])},
            )
        )
    return results


def _cli(vctx: VerifyContext, *args: str, timeout: float = 60) -> CommandResult:
    """The docker CLI against the master, within the check's window. A call the master
    does not answer in time (it waits on an engine it cannot reach) comes back failed
    with returncode TIMED_OUT: what it found is a finding, not a crash of the check."""
    limit = vctx.window(timeout)
    try:
        return master_cli(vctx.lab, masters(vctx.lab.spec)[0], *args, timeout=limit)
    except CommandError as exc:
        if exc.returncode != TIMED_OUT:
            raise
        return CommandResult(
            tuple(exc.argv), TIMED_OUT, "", f"no answer within {limit:.0f}s", exc.where
        )


def schedule(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.orchestration.mode != "classic-swarm":
        return [
            CheckResult.skip("swarm.schedule", "swarm", "orchestration.mode is not classic-swarm")
        ]
    overlays = [n.name for n in spec.networks if n.driver == "overlay"]
    if not overlays:
        return [CheckResult.skip("swarm.schedule", "swarm", "the spec has no overlay")]
    network = overlays[0]
    return vctx.map(lambda node: [_schedule_on(vctx, node.name, network)], swarm_nodes(spec))


def _clear_earlier(vctx: VerifyContext, node: str) -> None:
    """Remove the scheduling probes an earlier verify left on `node`: one whose start
    the master never answered (the node was cut off) shows up once the node is back."""
    listed = _cli(vctx, "ps", "-a", "-q", "--filter", f"label={SCHEDULE_LABEL}={node}")
    for container in listed.stdout.split():
        _cli(vctx, "rm", "-f", container)


def _schedule_on(vctx: VerifyContext, node: str, network: str) -> CheckResult:
    # A name of its own each time: the master keeps the name of a start it is still
    # waiting on (an engine cut off mid-start) until that connection fails, minutes on,
    # and refuses the name meanwhile.
    name = f"ol-schedule-{node}-{secrets.token_hex(3)}"
    _clear_earlier(vctx, node)
    address = schedule_address(vctx.lab.spec, network, node)

    def run_argv(fixed: bool) -> list[str]:
        return [
            "run", "-d", "--name", name, "-e", f"constraint:node=={node}", "--network", network,
            *(["--ip", address] if fixed and address else []),
            "--label", f"overlaylab.cluster={vctx.lab.spec.name}",
            "--label", f"{SCHEDULE_LABEL}={node}", "overlaylab/probe:1",
            "sleep", "120",
        ]  # fmt: skip

    run = run_argv(fixed=True)
    command = "docker " + " ".join(run)
    try:
        started = _cli(vctx, *run)
        if address and not started.ok and "already in use" in started.stderr:
            # A container of the lab holds it (a nearly full subnet): any address will do.
            _cli(vctx, "rm", "-f", name)
            run = run_argv(fixed=False)
            command = "docker " + " ".join(run)
            started = _cli(vctx, *run)
        if started.returncode == TIMED_OUT:
            # Its container may still come up later: the next verify clears it.
            result = _scheduled(
                node,
                network,
                False,
                f"the master gave {started.stderr} to the start on {node}",
                command,
            )
            result.hint = (
                "a classic swarm master waits on an engine it cannot reach, and answers no "
                "start meanwhile: see underlay.api and swarm.nodes"
            )
            result.details = {"hung": True}
            return result
        if not started.ok:
            return _scheduled(
                node, network, False, f"the master refused: {started.stderr.strip()}", command
            )
        landed = _cli(vctx, "inspect", "--format", "{{.Node.Name}}", name).stdout.strip()
        if landed != node:
            return _scheduled(node, network, False, f"landed on {landed or '?'}", command)
        others = [p for p in vctx.probes_on(network) if p.node != node]
        failed = []
        for probe in others:
            reached = _cli(vctx, "exec", name, "ping", "-c", "1", "-W", "2", probe.name)
            if not reached.ok:
                failed.append(probe.node)
        if failed:
            unreached = ", ".join(failed)
            message = f"landed on {node}; cannot reach the probes of {unreached} over {network}"
            stale = _sent_elsewhere(vctx, name, node, network, failed)
            if stale:
                message += "; " + "; ".join(stale.values())
            result = _scheduled(node, network, False, message, command)
            result.details = {"landed": node, "unreached": failed, "stale_on": sorted(stale)}
            result.nodes = sorted({node, *failed})  # the path between them fails
            return result
        return _scheduled(
            node, network, True, f"landed on {node}; reached {len(others)} other node(s)", command
        )
    finally:
        _cli(vctx, "rm", "-f", name)


def _sent_elsewhere(
    vctx: VerifyContext, name: str, landed: str, network: str, unreached: list[str]
) -> dict[str, str]:
    """The unreached nodes whose overlay sandbox sends the new container's MAC somewhere
    else than to the engine it landed on (an entry a container with its address left),
    each with what it does: the evidence that the master scheduled right."""
    shown = _cli(vctx, "inspect", "--format", "{{json .NetworkSettings.Networks}}", name)
    try:
        settings = json.loads(shown.stdout)[network]
        mac, address = settings["MacAddress"], settings["IPAddress"]
    except (ValueError, KeyError, TypeError):
        return {}
    home = vtep(vctx.lab.node(landed))
    found = {}
    for node in unreached:
        dst = destination(vctx.lab.node(node), network, mac)
        if dst is not None and dst != home:
            found[node] = (
                f"{node}'s overlay sends {address} ({mac}) to {dst}, not to {landed} ({home})"
            )
    return found


def _scheduled(node: str, network: str, ok: bool, message: str, command: str) -> CheckResult:
    return CheckResult(
        check="swarm.schedule",
        subject=f"constraint:node=={node} over {network}",
        status="pass" if ok else "fail",
        message=message,
        hint=""
        if ok
        else "see swarm.nodes (is the node Healthy in the master's list?) and connectivity.*",
        nodes=[node],
        target=node,
        network=network,
        command=command,
    )
