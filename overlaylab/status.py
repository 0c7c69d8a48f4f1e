"""`invoke status`: what is running, read from the machine (not from the state file)."""

from __future__ import annotations

import time
from typing import Any

import docker.errors
from rich.console import Console
from rich.table import Table

from overlaylab.context import LabContext
from overlaylab.faults.records import active_faults
from overlaylab.nodeconf import KV_BINARIES
from overlaylab.up import classic_swarm
from overlaylab.up.steps import swarm
from overlaylab.up.steps.kv import kv_ready


def _engine(ctx: LabContext, node: str) -> dict[str, Any]:
    info: dict[str, Any] = {"node": node, "address": str(ctx.spec.address_of(node))}
    handle = ctx.node(node)
    if not handle.engine_ping():
        return {**info, "engine": "down"}
    try:
        with handle.engine(timeout=5) as client:
            facts = client.info()
            containers = client.containers.list(all=True)
            info.update(
                engine="up",
                version=facts.get("ServerVersion"),
                cluster_store=facts.get("ClusterStore") or None,
                cluster_advertise=facts.get("ClusterAdvertise") or None,
                containers=[
                    {
                        "name": c.name,
                        "status": c.status,
                        "networks": {
                            k: v.get("IPAddress")
                            for k, v in c.attrs["NetworkSettings"]["Networks"].items()
                        },
                    }
                    for c in containers
                ],
                networks=sorted(
                    n.name for n in client.networks.list() if n.attrs["Driver"] == "overlay"
                ),
            )
    except docker.errors.DockerException as exc:
        info.update(engine="error", error=str(exc))
    return info


def collect(ctx: LabContext) -> dict[str, Any]:
    spec = ctx.spec
    up = ctx.provider.exists()
    nodes = [
        {"name": n.name, "address": str(n.address), "roles": list(n.roles)} for n in spec.nodes
    ]
    kv: dict[str, Any] | None = None
    if spec.kv is not None:
        binary = KV_BINARIES[spec.kv.backend]
        # A lab that is not up has no KV node to ask (a remote one may not even exist).
        alive = up and ctx.node(spec.kv.node).service_alive(spec.kv.backend, binary)
        ready, why = kv_ready(ctx) if alive else (False, "not running")
        kv = {
            "backend": spec.kv.backend,
            "node": spec.kv.node,
            "running": alive,
            "ready": ready,
            "detail": "" if ready else why,
            "url": spec.cluster_store_url(),
        }
    engines = [_engine(ctx, n.name) for n in spec.engine_nodes] if up else []
    return {
        "swarm": _swarm(ctx) if up else None,
        "cluster": spec.name,
        "provider": ctx.provider.name,
        "state_dir": str(ctx.layout.state_dir),
        "up": up,
        "nodes": nodes,
        "kv": kv,
        "engines": engines,
        # Injected by `invoke fault` (the lab's own record: no machine shows intent).
        "faults": [f.as_dict() for f in active_faults(ctx)] if up else [],
    }


def _swarm(ctx: LabContext) -> dict[str, Any] | None:
    """The swarm's nodes as its manager lists them (None without orchestration)."""
    mode = ctx.spec.orchestration.mode
    try:
        if mode == "classic-swarm":
            master = classic_swarm.masters(ctx.spec)[0]
            listed = classic_swarm.listed_nodes(classic_swarm.master_info(ctx, master))
            nodes = [
                {"name": name, "address": v.get("address", ""), "state": v.get("status", "")}
                for name, v in sorted(listed.items())
            ]
            return {"mode": mode, "manager": master.name, "nodes": nodes, "error": ""}
        if mode == "swarm-mode":
            leader = swarm.leader_of(ctx.spec)
            with ctx.node(leader.name).engine(timeout=5) as client:
                found = [n.attrs for n in client.nodes.list()]
            nodes = [
                {
                    "name": (n["Spec"].get("Labels") or {}).get(
                        swarm.NODE_LABEL, n["Description"]["Hostname"]
                    ),
                    "address": n["Status"].get("Addr", ""),
                    "state": f"{n['Status']['State']} ({n['Spec']['Role']})",
                }
                for n in sorted(found, key=lambda n: n["Description"]["Hostname"])
            ]
            return {"mode": mode, "manager": leader.name, "nodes": nodes, "error": ""}
    except Exception as exc:  # status reports what it cannot see, and goes on
        return {"mode": mode, "manager": "", "nodes": [], "error": str(exc)}
    return None


def print_status(snapshot: dict[str, Any], console: Console) -> None:
    if not snapshot["up"]:
        console.print(f"lab '{snapshot['cluster']}' is not up (`invoke up` brings it up)")
        return
    table = Table(title=f"lab {snapshot['cluster']}")
    for column in (
        "node",
        "address",
        "roles",
        "engine",
        "cluster-advertise",
        "overlays",
        "containers",
    ):
        table.add_column(column)
    engines = {e["node"]: e for e in snapshot["engines"]}
    for node in snapshot["nodes"]:
        engine = engines.get(node["name"], {})
        state = engine.get("engine", "-")
        colour = {"up": "green", "down": "red", "error": "red"}.get(state, "dim")
        running = [c for c in engine.get("containers", []) if c["status"] == "running"]
        table.add_row(
            node["name"],
            node["address"],
            ",".join(node["roles"]),
            f"[{colour}]{state}[/] {engine.get('version') or ''}".strip(),
            engine.get("cluster_advertise") or "-",
            ",".join(engine.get("networks", [])) or "-",
            str(len(running)) if engine else "-",
        )
    console.print(table)
    kv = snapshot["kv"]
    if kv:
        health = "[green]ready[/]" if kv["ready"] else f"[red]not ready[/] ({kv['detail']})"
        console.print(f"KV store: {kv['backend']} on {kv['node']} at {kv['url']}: {health}")
    for fault in snapshot.get("faults", []):
        since = time.strftime("%H:%M:%S", time.localtime(fault["injected_at"]))
        where = ", ".join(fault["targets"]) or "the lab"
        console.print(
            f"[red]active fault[/] {fault['kind']} on {where} since {since} "
            f"(`invoke heal {fault['kind']}` undoes it)"
        )
    group = snapshot.get("swarm")
    if group:
        listed = ", ".join(f"{n['name']} {n['address']} {n['state']}" for n in group["nodes"])
        console.print(
            f"{group['mode']} (manager {group['manager']}): "
            + (listed or f"[red]cannot list nodes[/] ({group['error']})")
        )
    containers = Table(title="containers")
    for column in ("node", "name", "status", "addresses"):
        containers.add_column(column)
    for engine in snapshot["engines"]:
        for c in engine.get("containers", []):
            addresses = ", ".join(f"{net}={ip}" for net, ip in c["networks"].items())
            containers.add_row(engine["node"], c["name"], c["status"], addresses)
    console.print(containers)
