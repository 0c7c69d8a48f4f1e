"""The vagrant provider: machines from Vagrant's docker provider, then the SSH pipeline.

`provision` starts the docker engine Vagrant drives in the lab's own namespace (outer.py),
makes sure it holds the offline node image (image.py: built once, then cached by its
recipe), writes the lab's machines file into the lab's state folder (OVERLAYLAB_MACHINES,
so two labs never share one), runs `vagrant up` for every machine at once (machines.py)
and keeps what `vagrant ssh-config` says. From there each machine is an SSH host like
any other: an `SSHNode` over a fabric Connection as user vagrant (with `sudo -n`), the
lab in one folder per machine with its KV server, the engine (the machine's own Docker
service with `engine: host`, a dockerd of the lab's own with `engine: lab`) reached from
this machine at the node's lab address over the host link, with mutual TLS.

One module (~390 lines) because it is the Provider contract for Vagrant: the pieces it
puts together (outer.py, image.py, machines.py, the SSH node) each live apart already.

`destroy` needs no teardown inside the machines, which go whole: `vagrant destroy -f`
(best effort), then the engine's removal, which also takes away by name whatever is left
of the lab on this machine (namespaces `ol-<cluster>.*`, host link, cgroups, mounts,
state folder), then a final check.

VirtualBox and libvirt cannot run here: their machines are rendered (`invoke render`)
for `vagrant up` by hand on a machine that has them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

from overlaylab.errors import OverlaylabError, TeardownIncomplete, describe_failure
from overlaylab.layout import LabLayout
from overlaylab.providers.local import teardown
from overlaylab.providers.local.preflight import (
    BASE_TOOLS,
    SYSTEM_CONTAINERD_SOCKET,
    route_clashes,
    system_containerd_running,
)
from overlaylab.providers.ssh.node import SSHNode, wait_for_ssh
from overlaylab.providers.ssh.provider import host_node
from overlaylab.providers.tool_gaps import host_tool_gaps, kernel_feature
from overlaylab.providers.vagrant import image, keys, rootfs
from overlaylab.providers.vagrant.machines import SSHTarget, VagrantError, VagrantMachines
from overlaylab.providers.vagrant.outer import OUTER_NODE, OuterEngine, nested_lab_cgroups
from overlaylab.providers.vagrant.recipe import (
    IMAGE_CACHE,
    KV_PACKAGES,
    ImageBuildError,
    ImageRecipe,
)
from overlaylab.spec.loader import LoadedSpec
from overlaylab.spec.models import ClusterSpec, VagrantProviderSpec
from overlaylab.templates import PROJECT_ROOT
from overlaylab.vagrant_machines import machine_name, machines_json
from overlaylab.waiting import wait_until

APT = "apt-get install -y --no-install-recommends"
SSH_TIMEOUT = 60.0
# Vagrant's lines worth a progress line; the rest (image, volumes, cmd...) go to its log.
REPORTED_VAGRANT_LINES = ("Creating the container", "Machine booted and ready")

OnItem = Callable[[str, str], None]


class VagrantProvider:
    name = "vagrant"

    def __init__(self, spec: ClusterSpec, layout: LabLayout, spec_dir: Path | None = None) -> None:
        assert isinstance(spec.provider, VagrantProviderSpec)
        self.spec = spec
        self.layout = layout
        self.options = spec.provider
        self.spec_dir = spec_dir or Path.cwd()
        self._nodes: dict[str, SSHNode] = {}
        self._targets: dict[str, SSHTarget] | None = None

    # --- where things are -----------------------------------------------------------------
    @cached_property
    def engine(self) -> OuterEngine:
        return OuterEngine.for_spec(self.spec, self.layout)

    @property
    def vagrant_dir(self) -> Path:
        return self.layout.state_dir / "vagrant"

    @property
    def machines_file(self) -> Path:
        """This lab's machines.json (never the repository's shared .overlaylab/ one)."""
        return self.vagrant_dir / "machines.json"

    @property
    def targets_file(self) -> Path:
        return self.vagrant_dir / "ssh-targets.json"

    @cached_property
    def machines(self) -> VagrantMachines:
        return VagrantMachines(
            root=PROJECT_ROOT,  # the top-level Vagrantfile
            state_dir=self.vagrant_dir,
            docker_host=self.engine.docker_host,
            machines_file=self.machines_file,
        )

    def recipe(self) -> ImageRecipe:
        return image.recipe_for(self.spec.kv.backend if self.spec.kv else None)

    # --- the provider interface ---------------------------------------------------------------
    @property
    def host_address(self) -> ipaddress.IPv4Address | None:
        return self.engine.host_address  # this machine's end of the host link

    def node(self, name: str) -> SSHNode:
        if name not in self._nodes:
            self.spec.node(name)  # raises for a name the spec does not have
            address = ipaddress.IPv4Address(str(self.spec.address_of(name)))
            connection = self._target(name, address).connection()
            self._nodes[name] = host_node(self.spec, self.layout, name, address, connection)
        return self._nodes[name]

    def nodes(self) -> Iterator[SSHNode]:
        return (self.node(n.name) for n in self.spec.nodes)

    def exists(self) -> bool:
        return self.layout.state_dir.exists() or bool(teardown.lab_namespaces(self.layout))

    # --- preflight ------------------------------------------------------------------------
    def preflight(self) -> list[tuple[str, str]]:
        vm = self.options.vm_provider
        if vm != "docker":
            return [
                (
                    f"provider.vm_provider is {vm}: Vagrant's {vm} provider cannot run on this "
                    "machine (VirtualBox is not installed, and KVM here cannot boot Debian "
                    "kernels), so `invoke up` runs only vm_provider: docker here",
                    f"`invoke render -i SPEC` writes the machines file; on a machine with {vm}, "
                    f"run `vagrant up --provider {vm}` by hand (the README's Vagrant section), "
                    "or set provider.vm_provider: docker",
                )
            ]
        gaps: list[tuple[str, str]] = []
        if os.geteuid() != 0:
            gaps.append(
                (
                    "not running as root (the Vagrant engine's namespace and host link need it)",
                    "run as root, e.g. `sudo -E invoke up`",
                )
            )
        if not _which("vagrant"):
            gaps.append(("`vagrant` is not installed", f"{APT} vagrant"))
        else:
            try:
                keys.vagrant_public_key()
            except ImageBuildError as exc:
                gaps.append((str(exc).split(":")[0], f"{APT} vagrant"))
        # The engine Vagrant drives needs what a local lab's engines need.
        gaps += [(f"`{b}` is not installed", f"{APT} {p}") for b, p in _missing(BASE_TOOLS)]
        gaps += self._image_gaps()
        gaps += host_tool_gaps(self.spec)
        if not self.spec.engine.tls:
            gaps.append(
                (
                    "engine.tls is false: the vagrant provider reaches every engine over its "
                    "TCP API with mutual TLS",
                    "set engine.tls: true",
                )
            )
        if self.spec.kv is not None and not KV_PACKAGES.get(self.spec.kv.backend):
            gaps.append(
                (
                    f"kv.backend {self.spec.kv.backend}: the node image has no server for it "
                    "(Debian 12 does not package consul)",
                    "set kv.backend: etcd or zookeeper",
                )
            )
        if system_containerd_running(SYSTEM_CONTAINERD_SOCKET):
            gaps.append(
                (
                    f"a system containerd listens on {SYSTEM_CONTAINERD_SOCKET}; the Vagrant "
                    "engine would run its machines there, outside the lab's namespace",
                    "stop it for the lab's lifetime: `systemctl stop containerd` (or kill it)",
                )
            )
        for module in ("vxlan", "bridge", "overlay"):
            if not kernel_feature(module):
                gaps.append((f"kernel feature `{module}` is not available", f"modprobe {module}"))
        gaps += route_clashes(self.spec)
        return gaps

    def _image_gaps(self) -> list[tuple[str, str]]:
        """Nothing when the node image is cached (or already imported), else its build tools."""
        try:
            recipe = self.recipe()
        except ImageBuildError:
            return []  # the missing key is reported with vagrant
        if recipe.tarball().is_file() or self._engine_holds(recipe):
            return []
        return [
            (f"{what} (to build the Vagrant node image once; it is not cached)", fix)
            for what, fix in rootfs.missing_build_tools()
        ]

    def _engine_holds(self, recipe: ImageRecipe) -> bool:
        if not self.engine.ping():
            return False
        with self.engine.client(timeout=5) as client:
            return image.engine_has_recipe(client, self.options.docker_image, recipe.digest)

    # --- provision ------------------------------------------------------------------------
    def provision(self, on_item: OnItem | None = None) -> None:
        say = on_item or (lambda where, msg: None)
        self.vagrant_dir.mkdir(parents=True, exist_ok=True)
        self.engine.start(say)
        self._ensure_image(say)
        self._write_machines_file()
        names = [n.name for n in self.spec.nodes]
        if set(self._running_machines()) != set(names) or not self.targets_file.is_file():
            say("vagrant", f"vagrant up --provider docker: {len(names)} machines at once")
            seconds = self.machines.up(names, _vagrant_lines(say))
            say("vagrant", f"{len(names)} machines running ({seconds:.1f}s)")
            self._save_targets(self.machines.ssh_targets(names))
        self._nodes.clear()  # connections made before the machines existed are stale
        self._each(self._prepare)
        for node in self.nodes():
            say(node.name, f"vagrant@{node.address} (ssh), lab folder {node.paths.root}")

    def _ensure_image(self, say: OnItem) -> None:
        recipe = self.recipe()
        tag = self.options.docker_image
        with self.engine.client() as client:
            if image.engine_has_recipe(client, tag, recipe.digest):
                return
            if not recipe.tarball().is_file():
                say(
                    "image",
                    "building the node image once (debootstrap, about 60-100 s cold); "
                    f"cached in {IMAGE_CACHE} for every later lab",
                )
            result = image.ensure_image(client, tag, recipe, on_item=say)
        say("image", f"{tag} imported ({result.import_seconds:.1f}s)")

    def _write_machines_file(self) -> None:
        # The spec's file name is not known here: "source" names its folder.
        text = machines_json(LoadedSpec(self.spec, self.spec_dir, self.spec_dir, []))
        if not self.machines_file.is_file() or self.machines_file.read_text() != text:
            self.machines_file.parent.mkdir(parents=True, exist_ok=True)
            self.machines_file.write_text(text)

    def _running_machines(self) -> list[str]:
        """The spec's nodes whose machine (container) runs on the lab's engine."""
        wanted = {machine_name(self.spec, n.name): n.name for n in self.spec.nodes}
        with self.engine.client(timeout=10) as client:
            return [wanted[c.name] for c in client.containers.list() if c.name in wanted]

    def _save_targets(self, targets: dict[str, SSHTarget]) -> None:
        data = {
            name: {"host": t.host, "port": t.port, "user": t.user, "key_files": list(t.key_files)}
            for name, t in targets.items()
        }
        missing = [n.name for n in self.spec.nodes if n.name not in data]
        if missing:
            raise VagrantError(
                f"`vagrant ssh-config` gave no SSH settings for {', '.join(missing)}; "
                f"Vagrant's output is in {self.machines.log_file}"
            )
        self.targets_file.write_text(json.dumps(data, indent=2) + "\n")
        self._targets = None

    def _target(self, name: str, address: ipaddress.IPv4Address) -> SSHTarget:
        """What `vagrant ssh-config` said at provision; before that, the machine's address
        with Vagrant's insecure key (a session fails cleanly: no machine is there yet)."""
        if self._targets is None:
            try:
                raw = json.loads(self.targets_file.read_text())
                self._targets = {
                    n: SSHTarget(n, t["host"], int(t["port"]), t["user"], tuple(t["key_files"]))
                    for n, t in raw.items()
                }
            except (OSError, ValueError, KeyError, TypeError):
                return SSHTarget(name, str(address), 22, "vagrant", ())
        if name in self._targets:
            return self._targets[name]
        return SSHTarget(name, str(address), 22, "vagrant", ())

    def _each(self, work: Callable[[SSHNode], None]) -> None:
        nodes = list(self.nodes())
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            list(pool.map(work, nodes))

    def _prepare(self, node: SSHNode) -> None:
        why = wait_for_ssh(node.connection, SSH_TIMEOUT)
        if why is not None:
            raise OverlaylabError(
                f"machine {node.name} does not take SSH commands at vagrant@{node.address} "
                f"after {SSH_TIMEOUT:.0f}s ({why}); Vagrant's output is in "
                f"{self.machines.log_file}"
            )
        node.run(["mkdir", "-p", str(node.paths.root)])
        if node.host_docker is not None:
            node.host_docker.save(node)

    # --- destroy --------------------------------------------------------------------------
    def destroy(self) -> list[str]:
        """The machines go whole, so nothing runs inside them: `vagrant destroy -f`, then
        the engine and everything of the lab on this machine, by name."""
        done = self._destroy_machines()
        # Machines Vagrant could not take (its engine was dead or failed) stop with the
        # engine; what still runs of them (their engine killed outright) is killed here.
        self.engine.stop()
        killed = kill_machine_processes(self.layout)
        if killed:
            done.append(f"killed {killed} processes of machines the engine left behind")
        try:
            done += self.engine.remove()
        except TeardownIncomplete as exc:
            raise TeardownIncomplete(self.spec.name, [*done, *exc.done], exc.remaining) from exc
        remaining = [f"process {pid} of a machine" for pid in sorted(machine_pids(self.layout))]
        remaining += [f"cgroup {group}" for group in nested_lab_cgroups(self.layout)]
        remaining += teardown.leftovers(self.layout)
        if remaining:
            raise TeardownIncomplete(self.spec.name, done, remaining)
        return done

    def _destroy_machines(self) -> list[str]:
        if not self.machines_file.is_file() or not self.engine.ping():
            return []  # no Vagrant environment, or no engine to drive: removal takes all
        try:
            seconds = self.machines.destroy()
        except (VagrantError, OSError, subprocess.SubprocessError) as exc:
            first = describe_failure(exc).splitlines()[0]
            return [f"vagrant destroy failed ({first}); the engine's removal takes the machines"]
        return [f"vagrant destroy -f: {len(self.spec.nodes)} machines ({seconds:.1f}s)"]


def machine_pids(layout: LabLayout) -> set[int]:
    """Every process in the machines' cgroups: the engine's cgroup parent at the top of a
    hierarchy, where it is when this process sits at the root, and below the top (see
    outer.nested_lab_cgroups) inside a cgroup namespace or a sandbox.

    Neither a namespace of the lab's nor a command line naming its folder finds them: a
    machine's init, sshd and sessions live in the engine's anonymous namespaces."""
    parent = layout.cgroup_parent(OUTER_NODE)
    groups = [g for g in teardown.lab_cgroups(layout) if g.name == parent]
    pids: set[int] = set()
    for group in [*groups, *nested_lab_cgroups(layout)]:
        for procs in group.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in procs.read_text().split()}
    pids.discard(os.getpid())
    return pids


def kill_machine_processes(layout: LabLayout, timeout: float = 10.0) -> int:
    """SIGKILL every process of the machines; wait until none is left. Returns how many."""
    killed: set[int] = set()

    def none_left() -> bool:
        alive = machine_pids(layout)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(alive)
        return not alive

    wait_until(none_left, timeout, interval=0.1)
    return len(killed)


def _which(binary: str) -> str | None:
    return shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _missing(tools: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(binary, package) for binary, package in tools if not _which(binary)]


def _vagrant_lines(say: OnItem) -> OnItem:
    """Pass on the few lines of Vagrant's output that tell where each machine is."""

    def report(machine: str, message: str) -> None:
        if message.startswith(REPORTED_VAGRANT_LINES):
            say(machine, message.rstrip("."))

    return report
