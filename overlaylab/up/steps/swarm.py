"""Swarm mode (`orchestration.mode: swarm-mode`): one swarm of the lab's engines.

The spec's first manager initialises the swarm; every other node joins it with a token
read from that manager at the time (tokens are never stored), managers one at a time
(each join changes the raft quorum), then the workers. Every node advertises its lab
address, for the control plane (2377) and for the data path (VXLAN), so a second
interface (docker_gwbridge, a NAT address) is never picked. Spec labels become swarm
node labels, with `overlaylab.node=<name>` on each for the stacks' placement (a host's
own hostname need not be its node's name).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.spec.models import ClusterSpec, Node
from overlaylab.up.classic_swarm import ensure_classic_swarm
from overlaylab.up.run import UpRun
from overlaylab.waiting import wait_until

SWARM_PORT = 2377
READY_TIMEOUT = 60.0
JOIN_TIMEOUT = 60  # seconds the engine may take to answer a join (it waits for the raft)


def service_name(stack: str, service: str) -> str:
    """The swarm service `docker stack deploy` makes of a stack's service."""
    return f"{stack}_{service}"


def managers(spec: ClusterSpec) -> list[Node]:
    return [n for n in spec.engine_nodes if "manager" in n.roles]


def workers(spec: ClusterSpec) -> list[Node]:
    return [n for n in spec.engine_nodes if "manager" not in n.roles]


def leader_of(spec: ClusterSpec) -> Node:
    """The manager the lab talks to: the spec's first."""
    return managers(spec)[0]


def swarm_state(client: docker.DockerClient) -> dict[str, Any]:
    """`docker info`'s Swarm part: LocalNodeState, NodeID, ControlAvailable, RemoteManagers."""
    info: dict[str, Any] = client.info().get("Swarm") or {}
    return info


def _addresses(node: Node) -> dict[str, str]:
    address = str(node.address)
    return {
        "advertise_addr": address,
        "listen_addr": f"{address}:{SWARM_PORT}",
        "data_path_addr": address,
    }


def _init(ctx: LabContext, node: Node) -> tuple[bool, dict[str, str]]:
    """The swarm on the leader (made when missing); its join tokens."""
    made = False
    with on_node(node.name), ctx.node(node.name).engine(timeout=JOIN_TIMEOUT) as client:
        state = swarm_state(client)
        if state.get("LocalNodeState") == "inactive":
            client.swarm.init(**_addresses(node))
            made = True
        elif not state.get("ControlAvailable"):
            raise OverlaylabError(
                f"{node.name} is the spec's first manager but its engine is in a swarm as a "
                "worker: take the lab down (`invoke down`) and bring it up again"
            )
        tokens = _join_tokens(ctx, node, client)
    return made, tokens


def _leaderless(exc: docker.errors.APIError) -> bool:
    return "does not have a leader" in str(exc)


def _join_tokens(ctx: LabContext, node: Node, client: docker.DockerClient) -> dict[str, str]:
    """The swarm's join tokens, read from its leader. A manager whose engine just
    restarted (a healed fault, an engine `up` started again) is a swarm without a leader
    until the raft elects one: wait for that rather than fail the whole `up`."""
    failure: list[docker.errors.APIError] = []

    def read() -> bool:
        try:
            client.swarm.reload()
        except docker.errors.APIError as exc:
            if not _leaderless(exc):
                raise
            failure[:] = [exc]
            return False
        return True

    if not read():
        ctx.progress.item(node.name, "the swarm has no leader yet: waiting for its election")
        if not wait_until(read, READY_TIMEOUT, interval=0.5):
            names = ", ".join(m.name for m in managers(ctx.spec))
            raise OverlaylabError(
                f"the swarm still has no leader after {READY_TIMEOUT:.0f}s (asked {node.name}): "
                f"more than half of its managers ({names}) must be up and reach each other "
                f"on {SWARM_PORT}/tcp. `invoke verify` names the managers that are down; "
                f"the engine said: {failure[-1].explanation or failure[-1]}"
            )
    tokens: dict[str, str] = client.swarm.attrs["JoinTokens"]
    return tokens


def _join(ctx: LabContext, node: Node, leader: Node, tokens: dict[str, str]) -> bool:
    role = "Manager" if "manager" in node.roles else "Worker"
    leader_address = f"{leader.address}:{SWARM_PORT}"
    with on_node(node.name), ctx.node(node.name).engine(timeout=JOIN_TIMEOUT) as client:
        state = swarm_state(client)
        if state.get("LocalNodeState") in ("active", "pending"):
            remotes = [m.get("Addr") for m in state.get("RemoteManagers") or []]
            if leader_address not in remotes:
                raise OverlaylabError(
                    f"{node.name}'s engine is in another swarm (managers {remotes}), not the "
                    f"lab's ({leader_address}): take the lab down (`invoke down`) and up again"
                )
            return False
        client.swarm.join(
            remote_addrs=[leader_address], join_token=tokens[role], **_addresses(node)
        )
    return True


def _swarm_nodes(ctx: LabContext, leader: Node) -> list[dict[str, Any]]:
    with ctx.node(leader.name).engine() as client:
        return [n.attrs for n in client.nodes.list()]


NODE_LABEL = "overlaylab.node"  # the spec's node name, on its swarm node (for placement)


def swarm_address(attrs: dict[str, Any]) -> str:
    """The address a swarm node joined with (a manager's Status.Addr may be 0.0.0.0)."""
    manager = (attrs.get("ManagerStatus") or {}).get("Addr", "")
    return manager.rsplit(":", 1)[0] if manager else str(attrs["Status"].get("Addr", ""))


def by_node(spec: ClusterSpec, nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Swarm nodes by the spec's node name, matched on the lab address each joined with:
    a host's own name need not be its node's (existing hosts keep theirs)."""
    names = {str(n.address): n.name for n in spec.engine_nodes}
    return {names[a]: n for n in nodes if (a := swarm_address(n)) in names}


def _wait_ready(ctx: LabContext, leader: Node) -> dict[str, dict[str, Any]]:
    wanted = {n.name for n in ctx.spec.engine_nodes}
    seen: dict[str, dict[str, Any]] = {}

    def all_ready() -> bool:
        seen.clear()
        seen.update(by_node(ctx.spec, _swarm_nodes(ctx, leader)))
        return all(seen.get(name, {}).get("Status", {}).get("State") == "ready" for name in wanted)

    if not wait_until(all_ready, READY_TIMEOUT, interval=0.25):
        late = sorted(
            f"{name} ({seen[name]['Status']['State']})" if name in seen else f"{name} (absent)"
            for name in wanted
            if seen.get(name, {}).get("Status", {}).get("State") != "ready"
        )
        raise OverlaylabError(
            f"swarm nodes not ready after {READY_TIMEOUT:.0f}s: {', '.join(late)}. The "
            f"manager {leader.name} must reach them on {SWARM_PORT}/tcp, 7946/tcp+udp and "
            "4789/udp over the lab network (`invoke verify` shows which link is cut)."
        )
    return seen


def _label(ctx: LabContext, leader: Node, seen: dict[str, dict[str, Any]]) -> list[str]:
    """Give every swarm node the spec's labels; the names of the nodes changed."""
    changed = []
    with ctx.node(leader.name).engine() as client:
        for node in ctx.spec.engine_nodes:
            attrs = seen[node.name]
            spec = dict(attrs["Spec"])
            labels = dict(spec.get("Labels") or {})
            wanted = {**node.labels, NODE_LABEL: node.name}
            if all(labels.get(k) == v for k, v in wanted.items()):
                continue
            spec["Labels"] = {**labels, **wanted}
            client.api.update_node(attrs["ID"], attrs["Version"]["Index"], spec)
            changed.append(node.name)
    return changed


def ensure_swarm(ctx: LabContext, run: UpRun) -> bool:
    spec = ctx.spec
    if spec.orchestration.mode == "classic-swarm":
        return ensure_classic_swarm(ctx)
    if spec.orchestration.mode != "swarm-mode":
        return False
    leader = leader_of(spec)
    made, tokens = _init(ctx, leader)
    if made:
        ctx.progress.item(leader.name, f"initialised the swarm (manager, {leader.address})")
    joined = []
    # Managers one at a time: each one changes the quorum the next join needs.
    for node in managers(spec)[1:]:
        if _join(ctx, node, leader, tokens):
            joined.append(node.name)
            ctx.progress.item(node.name, "joined as manager")
    rest = workers(spec)
    if rest:
        with ThreadPoolExecutor(max_workers=len(rest)) as pool:
            outcomes = list(pool.map(lambda n: _join(ctx, n, leader, tokens), rest))
        for node, did in zip(rest, outcomes, strict=True):
            if did:
                joined.append(node.name)
                ctx.progress.item(node.name, "joined as worker")
    seen = _wait_ready(ctx, leader)
    labelled = _label(ctx, leader, seen)
    if labelled:
        ctx.progress.item("swarm", f"labels set on {', '.join(labelled)}")
    if not (made or joined or labelled):
        ctx.progress.item("swarm", f"{len(seen)} nodes ready already")
    return bool(made or joined or labelled)
