"""The ssh provider: hosts that exist already; the lab lives in one folder on each.

Every host keeps the lab under /var/lib/overlaylab/<cluster>/nodes/<node>: with
`engine: lab` (the default) its own dockerd (data, exec root, socket, certificates),
the KV server, their logs and pid files. `down` stops them gracefully (dockerd stops
its containers), kills what is left of the lab by that folder, unmounts, removes the
folder, and checks the host again: nothing outside that folder is ever changed.

With `engine: host` the lab's engine is the host's own Docker service, configured as
docker-machine did it (host_engine.py); `down` first restores that service as the
lab found it, then removes the folder as above.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from fabric import Connection

from overlaylab import nodeconf
from overlaylab.errors import CommandError, TeardownIncomplete, describe_failure
from overlaylab.layout import LabLayout
from overlaylab.providers.base import NodePaths
from overlaylab.providers.kv_program import BRINGABLE, INSTALL_HERE, local_program
from overlaylab.providers.ssh import host_engine
from overlaylab.providers.ssh.node import SSHNode
from overlaylab.providers.tool_gaps import host_tool_gaps
from overlaylab.spec.models import ClusterSpec, SSHProviderSpec, VagrantProviderSpec

REMOTE_ROOT = PurePosixPath("/var/lib/overlaylab")
KV_PROGRAMS = {
    "etcd": "etcd",
    "zookeeper": "/usr/share/zookeeper/bin/zkServer.sh",
    "consul": "consul",
}
NEEDED = ("sh", "bash", "base64", "setsid", "timeout", "dockerd", "containerd", "runc")

# Run on each host with `root` and `cgroup` in its environment: no process of ours
# names "$root/" on its command line, and the script kills whatever does.
_TEARDOWN = """
for f in "$root"/*.pid; do [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done
i=0
while [ $i -lt 150 ]; do
  alive=0
  for f in "$root"/*.pid; do [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.1; i=$((i+1))
done
lab_processes() {
  for p in /proc/[0-9]*; do
    tr '\\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF "$root/" && echo "${p#/proc/}"
  done
}
for pid in $(lab_processes); do kill -KILL "$pid" 2>/dev/null; done
i=0; while [ -n "$(lab_processes)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
grep -F " $root" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
rm -rf "$root"
for group in /sys/fs/cgroup/"$cgroup" /sys/fs/cgroup/*/"$cgroup"; do
  [ -d "$group" ] && find "$group" -depth -type d -exec rmdir {} + 2>/dev/null
done
rmdir "$(dirname "$root")" "$(dirname "$(dirname "$root")")" 2>/dev/null
for pid in $(lab_processes); do
  echo "process $pid: $(tr '\\0' ' ' < /proc/$pid/cmdline | cut -c1-100)"
done
grep -F " $root" /proc/self/mountinfo | cut -d' ' -f5 | sed 's/^/mount /'
[ -e "$root" ] && echo "folder $root"
for group in /sys/fs/cgroup/"$cgroup" /sys/fs/cgroup/*/"$cgroup"; do
  [ -d "$group" ] && echo "cgroup $group"
done
true
"""


def host_node(
    spec: ClusterSpec,
    layout: LabLayout,
    name: str,
    address: ipaddress.IPv4Address,
    connection: Connection,
) -> SSHNode:
    """The node of a host reached over SSH, with the engine `provider.engine` asks for."""
    assert isinstance(spec.provider, SSHProviderSpec | VagrantProviderSpec)
    root = REMOTE_ROOT / spec.name / "nodes" / name
    if spec.provider.engine == "lab":
        # The lab's own dockerd: everything in the lab folder, containers in the lab's
        # cgroup, so that `down` finds them by name.
        paths = NodePaths.under(root)
        cgroup_parent: str | None = layout.cgroup_parent(name)
        host_docker = None
    else:
        paths = nodeconf.host_engine_paths(root)
        cgroup_parent = None  # the host's engine keeps its own cgroups
        host_docker = host_engine.HostDocker(
            cluster=spec.name,
            lab_root=root,
            drop_in=nodeconf.dockerd_drop_in(spec.name, name),
            projects=tuple(stack.name for stack in spec.stacks),
        )
    return SSHNode(
        name,
        address,
        connection,
        paths,
        api_port=spec.engine.api_port,
        client_cert_dir=layout.client_cert_dir,
        cgroup_parent=cgroup_parent,
        host_docker=host_docker,
    )


class SSHProvider:
    name = "ssh"

    def __init__(self, spec: ClusterSpec, layout: LabLayout, spec_dir: Path | None = None) -> None:
        assert isinstance(spec.provider, SSHProviderSpec)
        self.spec = spec
        self.layout = layout
        self.options = spec.provider
        self.spec_dir = spec_dir or Path.cwd()
        self._nodes: dict[str, SSHNode] = {}

    # --- the provider interface ----------------------------------------------------
    @property
    def host_address(self) -> ipaddress.IPv4Address | None:
        return None  # this machine is no node: it reaches the hosts as a client

    def node(self, name: str) -> SSHNode:
        if name not in self._nodes:
            self.spec.node(name)
            address = ipaddress.IPv4Address(str(self.spec.address_of(name)))
            self._nodes[name] = host_node(
                self.spec, self.layout, name, address, self._connection(name)
            )
        return self._nodes[name]

    def nodes(self) -> Iterator[SSHNode]:
        return (self.node(n.name) for n in self.spec.nodes)

    def _connection(self, name: str) -> Connection:
        host = self.options.hosts[name]
        connect: dict[str, object] = {
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": 15,
            "auth_timeout": 15,
        }
        if self.options.key_file:
            connect["key_filename"] = str(self.spec_dir / self.options.key_file)
        return Connection(
            host.host, user=host.user, port=host.port, connect_timeout=10, connect_kwargs=connect
        )

    def _each(self, work: Callable[[SSHNode], list[str]]) -> dict[str, list[str]]:
        """Run `work` on every host at once (as fabric's ThreadingGroup does)."""
        nodes = list(self.nodes())
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            return dict(zip([n.name for n in nodes], pool.map(work, nodes), strict=True))

    def preflight(self) -> list[tuple[str, str]]:
        gaps = host_tool_gaps(self.spec)
        if not self.spec.engine.tls:
            gaps.append(
                (
                    "engine.tls is false: the ssh provider reaches every engine over its TCP "
                    "API with mutual TLS",
                    "set engine.tls: true",
                )
            )
        kv = self.spec.kv
        consul_store = (self.spec.cluster_store_url() or "").startswith("consul://")

        def check(node: SSHNode) -> list[str]:
            wanted = list(NEEDED)
            if self.options.engine == "host":
                wanted += ["docker", "service"]  # the host's CLI and service control
            elif self.spec.orchestration.mode == "classic-swarm":
                wanted.append("docker")  # the swarm manager is asked through it
            if kv is not None and node.name == kv.node:
                wanted.append(KV_PROGRAMS[kv.backend])
                if self.spec.orchestration.discovery == "consul":
                    wanted.append(KV_PROGRAMS["consul"])  # classic swarm's discovery
            probe = (
                'for t in "$@"; do command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || '
                'echo "missing $t"; done; '
                "dockerd --version 2>/dev/null | sed 's/^/version /'; "
                "[ -d /sys/module/vxlan ] || modinfo vxlan >/dev/null 2>&1 || echo 'no vxlan'"
            )
            if consul_store:
                probe += (
                    '; grep -q libkv/store/consul "$(command -v dockerd)" 2>/dev/null || '
                    "echo 'no consul store'"
                )
            try:
                result = node.run(["sh", "-c", probe, "sh", *wanted], check=False, timeout=30)
            except CommandError as exc:
                return [f"cannot reach it over SSH: {exc}"]
            if result.returncode != 0:
                return [f"commands fail there (exit {result.returncode}): {result.stderr.strip()}"]
            problems = [
                f"`{line.split(' ', 1)[1]}` is not installed"
                for line in result.stdout.splitlines()
                if line.startswith("missing ")
                # A KV program this machine has is brought along by the kv step.
                and local_program(line.split(" ", 1)[1]) is None
            ]
            if "no consul store" in result.stdout:
                problems.append(
                    "its dockerd is built without the consul cluster store (Debian's "
                    "docker.io): engines would die with 'discovery service not supported'"
                )
            if "no vxlan" in result.stdout:
                problems.append("the kernel has no vxlan module (overlay networks need it)")
            for line in result.stdout.splitlines():
                if line.startswith("version ") and self.spec.engine.uses_cluster_store:
                    words = line.replace(",", " ").split()
                    major = next((w for w in words if w[:1].isdigit()), "0").split(".")[0]
                    if major.isdigit() and int(major) >= 23:
                        problems.append(f"{line[8:]} refuses cluster-store (removed in 23.0)")
            return problems

        for name, problems in self._each(check).items():
            host = self.options.hosts[name]
            gaps += [
                (f"host {name} ({host.user}@{host.host}:{host.port}): {p}", _fix_for(p))
                for p in problems
            ]
        return gaps

    def provision(self, on_item: Callable[[str, str], None] | None = None) -> None:
        say = on_item or (lambda where, msg: None)
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)

        def prepare(node: SSHNode) -> list[str]:
            node.run(["mkdir", "-p", str(node.paths.root)])
            if node.host_docker is not None:
                node.host_docker.save(node)  # before any step changes the host's engine
            return []

        self._each(prepare)
        for node in self.nodes():
            host = self.options.hosts[node.name]
            say(node.name, f"{host.user}@{host.host}: lab folder {node.paths.root}")

    def exists(self) -> bool:
        return self.layout.state_dir.exists()

    def destroy(self) -> list[str]:
        def take_away(node: SSHNode) -> list[str]:
            if node.host_docker is not None:
                problems = node.host_docker.restore(node)
                if problems:  # the backup stays in the lab folder for the next `down`
                    return [f"host docker not restored: {p}" for p in problems]
            settings = [f"root={node.paths.root}", f"cgroup={node.cgroup_parent}"]
            try:
                result = node.run(["env", *settings, "sh", "-c", _TEARDOWN], timeout=120)
            except CommandError as exc:
                return [f"cannot take the lab away: {describe_failure(exc)}"]
            return result.stdout.split("\n") if result.stdout.strip() else []

        remaining = {name: [r for r in left if r] for name, left in self._each(take_away).items()}
        done = [f"removed the lab from {len(remaining)} hosts"]
        if self.layout.state_dir.exists():
            shutil.rmtree(self.layout.state_dir, ignore_errors=True)
            done.append(f"removed {self.layout.state_dir}")
        left = [f"{name}: {what}" for name, items in remaining.items() for what in items]
        if self.layout.state_dir.exists():
            left.append(f"folder {self.layout.state_dir}")
        if left:
            raise TeardownIncomplete(self.spec.name, done, left)
        return done


def _fix_for(problem: str) -> str:
    if "not installed" in problem:
        tool = problem.split("`")[1]
        package = {"dockerd": "docker.io", "containerd": "containerd", "runc": "runc"}.get(
            tool, "etcd-server" if tool == "etcd" else tool
        )
        fix = f"install it on that host (Debian: apt-get install -y {package})"
        if tool in BRINGABLE:
            fix += f", or here ({INSTALL_HERE[tool]}): the lab brings it along"
        return fix
    if "SSH" in problem:
        return "check provider.hosts (address, port, user) and provider.key_file"
    if "vxlan" in problem:
        return "modprobe vxlan on that host"
    if "consul" in problem:
        return "install Docker CE's static 20.10 dockerd there, or set kv.backend: etcd"
    return "install Docker 20.10 on that host (Debian 12: apt-get install -y docker.io)"
