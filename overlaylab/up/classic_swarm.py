"""Classic swarm (`orchestration.mode: classic-swarm`), as docker-machine's --swarm ran it.

Every swarm node runs the `swarm` image as containers on its own engine: an agent
(`swarm join --advertise <node>:<engine port> <discovery>`, named swarm-agent) and,
on each master, the manager (`swarm manage` with the node's TLS files, on port 3376,
named swarm-agent-master), both with the node's network and restart=always, as
docker-machine made them. Discovery is the lab's KV store (swarm 1.2.9 speaks consul://,
etcd:// and zk://). The master reaches every engine over its TLS API with the node's
certificate, which the lab issues for both server and client use.

The image comes from, in order: the spec's images (a tarball), the host's own engine
(`docker pull swarm:1.2.9` where a registry is reachable), or a static `swarm` binary
on PATH, from which the lab builds it offline as it builds the probe image.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE
from overlaylab.providers.command import CommandResult
from overlaylab.spec.models import ClusterSpec, KVStore, Node
from overlaylab.waiting import wait_until

MANAGE_PORT = 3376
MASTER = "swarm-agent-master"
AGENT = "swarm-agent"
READY_TIMEOUT = 60.0
CERTS = "/certs"  # where the node's TLS folder is mounted in the manager


def masters(spec: ClusterSpec) -> list[Node]:
    return [n for n in spec.engine_nodes if "swarm-master" in n.roles]


def swarm_nodes(spec: ClusterSpec) -> list[Node]:
    """Nodes that join the swarm: agents and masters (a master runs an agent too)."""
    return [n for n in spec.engine_nodes if {"swarm-agent", "swarm-master"} & set(n.roles)]


def discovery_store(spec: ClusterSpec) -> KVStore:
    """Where the agents register: the lab's KV store, or a consul agent beside it on
    the KV node (`orchestration.discovery: consul`)."""
    assert spec.kv is not None
    if spec.orchestration.discovery == "consul" and spec.kv.backend != "consul":
        return KVStore(backend="consul", node=spec.kv.node)
    return spec.kv


def discovery_url(spec: ClusterSpec) -> str:
    store = discovery_store(spec)
    scheme = {"etcd": "etcd", "consul": "consul", "zookeeper": "zk"}[store.backend]
    return f"{scheme}://{spec.address_of(store.node)}:{store.client_port}"


def master_argv(spec: ClusterSpec, node: Node) -> list[str]:
    argv = [
        "manage",
        "--tlsverify",
        f"--tlscacert={CERTS}/ca.pem",
        f"--tlscert={CERTS}/cert.pem",
        f"--tlskey={CERTS}/key.pem",
        "-H",
        f"tcp://0.0.0.0:{MANAGE_PORT}",
        "--strategy",
        spec.orchestration.strategy,
        "--advertise",
        f"{node.address}:{MANAGE_PORT}",
    ]
    if len(masters(spec)) > 1:
        argv.append("--replication")  # one primary, the others replicas (leader election)
    return [*argv, discovery_url(spec)]


def agent_argv(spec: ClusterSpec, node: Node) -> list[str]:
    return ["join", "--advertise", f"{node.address}:{spec.engine.api_port}", discovery_url(spec)]


# --- the image --------------------------------------------------------------------------------
def swarm_binary() -> Path | None:
    found = shutil.which("swarm")
    return Path(found) if found else None


def swarm_rootfs(binary: Path) -> bytes:
    """A rootfs with only the static swarm binary (what the official image holds)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("etc", "tmp"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = binary.read_bytes()
        info = tarfile.TarInfo("swarm")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


IMAGE_CHANGES = ['ENTRYPOINT ["/swarm"]', 'CMD ["--help"]', f"LABEL {LABEL_ROLE}=swarm"]


# --- the containers ---------------------------------------------------------------------------
def _ensure_container(ctx: LabContext, node: Node, name: str, argv: list[str], role: str) -> str:
    handle = ctx.node(node.name)
    image = ctx.spec.orchestration.swarm_image
    with on_node(node.name), handle.engine() as client:
        found = [c for c in client.containers.list(all=True) if c.name == name]
        if found:
            current = found[0]
            if current.status == "running" and current.attrs["Args"] == argv:
                return ""
            current.remove(force=True)
        volumes = {}
        if role == "swarm-master":
            volumes[str(handle.paths.tls_dir)] = {"bind": CERTS, "mode": "ro"}
        client.containers.run(
            image,
            argv,
            name=name,
            detach=True,
            network_mode="host",
            restart_policy={"Name": "always"},
            volumes=volumes,
            labels={LABEL_CLUSTER: ctx.spec.name, LABEL_ROLE: role},
        )
    return "restarted" if found else "started"


def ensure_classic_swarm(ctx: LabContext) -> bool:
    spec = ctx.spec
    changed = []
    for node in swarm_nodes(spec):
        outcome = _ensure_container(ctx, node, AGENT, agent_argv(spec, node), "swarm-agent")
        if outcome:
            changed.append(node.name)
            ctx.progress.item(node.name, f"{AGENT} {outcome}")
    for node in masters(spec):
        outcome = _ensure_container(ctx, node, MASTER, master_argv(spec, node), "swarm-master")
        if outcome:
            changed.append(node.name)
            ctx.progress.item(node.name, f"{MASTER} {outcome} on :{MANAGE_PORT}")
    listed = _wait_for_agents(ctx)
    ctx.progress.item("swarm", f"master {masters(spec)[0].name} lists {len(listed)} healthy nodes")
    return bool(changed)


# --- talking to the master ---------------------------------------------------------------------
def master_cli(ctx: LabContext, master: Node, *args: str, timeout: float = 60) -> CommandResult:
    """The docker CLI run on the master node against its manager, with the node's own
    certificate: what a user does after `invoke env --swarm`, reached through the node."""
    tls = ctx.node(master.name).paths.tls_dir
    argv = [
        "docker",
        "--tlsverify",
        f"--tlscacert={tls}/ca.pem",
        f"--tlscert={tls}/cert.pem",
        f"--tlskey={tls}/key.pem",
        "-H",
        f"tcp://{master.address}:{MANAGE_PORT}",
        *args,
    ]
    return ctx.node(master.name).run(argv, check=False, timeout=timeout)


def master_info(ctx: LabContext, master: Node) -> dict[str, Any]:
    """The manager's `docker info` (its SystemStatus lists the swarm's nodes)."""
    result = master_cli(ctx, master, "info", "--format", "{{json .}}", timeout=20)
    if result.returncode != 0:
        raise OSError(f"swarm manager {master.name}:{MANAGE_PORT}: {result.stderr.strip()[-300:]}")
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def listed_nodes(info: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The nodes in swarm 1.2.9's /info SystemStatus: name -> address, status, error.

    SystemStatus is a list of pairs: (" node1", "192.168.99.11:2376"), then
    ("  └ Status", "Healthy"), ("  └ Error", "(none)"), ... for each node."""
    nodes: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for key, value in info.get("SystemStatus") or []:
        if key.startswith(" ") and not key.strip().startswith("└"):
            current = nodes.setdefault(key.strip(), {"address": value})
        elif current is not None and key.strip().startswith("└"):
            current[key.strip().lstrip("└").strip().lower()] = value
    return nodes


def _wait_for_agents(ctx: LabContext) -> dict[str, dict[str, str]]:
    master = masters(ctx.spec)[0]
    wanted = {n.name for n in swarm_nodes(ctx.spec)}
    seen: dict[str, dict[str, str]] = {}
    why: list[str] = []

    def all_healthy() -> bool:
        try:
            seen.clear()
            seen.update(listed_nodes(master_info(ctx, master)))
        except (OSError, ValueError) as exc:
            why[:] = [str(exc)]
            return False
        return all(seen.get(n, {}).get("status") == "Healthy" for n in wanted)

    if not wait_until(all_healthy, READY_TIMEOUT, interval=0.5):
        late = sorted(wanted - {n for n, v in seen.items() if v.get("status") == "Healthy"})
        raise OverlaylabError(
            f"classic swarm: the master {master.name} does not list {', '.join(late)} as "
            f"healthy after {READY_TIMEOUT:.0f}s ({'; '.join(why) or seen}). The agents "
            f"register in {discovery_url(ctx.spec)}; `docker logs {AGENT}` on a node and "
            f"`docker logs {MASTER}` on {master.name} say why."
        )
    return seen


def swarm_env(ctx: LabContext, name: str | None = None) -> dict[str, str]:
    """DOCKER_* for a docker CLI on this machine, pointed at a master (default: the
    first), as `docker-machine env --swarm` printed them."""
    master = ctx.spec.node(name) if name else masters(ctx.spec)[0]
    return {
        "DOCKER_HOST": f"tcp://{master.address}:{MANAGE_PORT}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(ctx.layout.client_cert_dir),
    }
