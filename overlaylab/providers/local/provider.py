"""The embedded default provider: every node is a network + UTS namespace on this box.

Shape of a local lab (cluster `lab`):

    host ── ol-lab (veth, 192.168.99.1) ──┐
                                          │  netns ol-lab._switch: bridge br0
    netns ol-lab.kv    eth1 192.168.99.10 ┤  (the lab switch lives in its own
    netns ol-lab.node1 eth1 192.168.99.11 ┤   namespace, so no dockerd's iptables
    netns ol-lab.node2 eth1 192.168.99.12 ┘   policy can ever block it)

Nodes get no default route: lab traffic cannot leave the lab.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from overlaylab.layout import LabLayout
from overlaylab.providers.local import plumbing, teardown
from overlaylab.providers.local.node import LocalNode
from overlaylab.spec.models import ClusterSpec
from overlaylab.spec.models import LocalProvider as LocalProviderSpec
from overlaylab.waiting import wait_until

# Sets the node's hostname inside its fresh UTS namespace, then becomes the service.
# Spec values travel as arguments ("$1", "$@"), never inside the script text.
START_MARKER = "--- overlaylab: starting"


class LocalProvider:
    name = "local"

    def __init__(self, spec: ClusterSpec, layout: LabLayout) -> None:
        self.spec = spec
        self.layout = layout
        options = spec.provider
        assert isinstance(options, LocalProviderSpec)
        self.options = options
        self._nodes: dict[str, LocalNode] = {}

    # --- the provider interface ----------------------------------------------------
    def node(self, name: str) -> LocalNode:
        if name not in self._nodes:
            self.spec.node(name)  # raises for a name the spec does not have
            self._nodes[name] = LocalNode(self, name)
        return self._nodes[name]

    def nodes(self) -> Iterator[LocalNode]:
        return (self.node(n.name) for n in self.spec.nodes)

    def preflight(self) -> list[tuple[str, str]]:
        from overlaylab.providers.tool_gaps import local_preflight

        return local_preflight(self.spec, self.host_address)

    # --- node plumbing -------------------------------------------------------------
    @property
    def host_address(self) -> ipaddress.IPv4Address | None:
        if not self.options.host_link:
            return None
        return self.options.host_address or next(self.spec.lab.subnet.hosts())

    def provision(self, on_item: Callable[[str, str], None] | None = None) -> None:
        """Create (or complete, after an interruption) the switch, nodes and links."""
        say = on_item or (lambda where, msg: None)
        teardown.record_host_footprint(self.layout)
        layout, mtu = self.layout, self.spec.lab.mtu
        existing = set(teardown.lab_namespaces(layout))
        sw = layout.switch_ns
        if sw not in existing:
            plumbing.create_namespace(sw)
        plumbing.retrying(lambda: self._make_switch(sw, mtu))
        say("switch", f"netns {sw}, bridge {layout.SWITCH_BRIDGE}")

        prefix = self.spec.lab.subnet.prefixlen
        for node in self.spec.nodes:
            ns = layout.node_ns(node.name)
            if ns not in existing:
                plumbing.create_namespace(ns)
            plumbing.retrying(lambda node=node: self._cable_node(node.name, str(node.address)))
            say(node.name, f"netns {ns}, {layout.NODE_IFACE} {node.address}/{prefix}")

        if self.host_address is not None:
            plumbing.retrying(self._cable_host)
            say("host", f"{layout.host_link} {self.host_address}/{prefix}")

    def _make_switch(self, sw: str, mtu: int) -> None:
        with plumbing.links(sw) as switch:
            switch.add_bridge(self.layout.SWITCH_BRIDGE)
            switch.set(self.layout.SWITCH_BRIDGE, mtu=mtu, state="up")
            switch.set("lo", state="up")

    def _cable_node(self, node: str, address: str) -> None:
        """The node's end on the switch, its eth1 and address (idempotent)."""
        layout, mtu = self.layout, self.spec.lab.mtu
        ns, port = layout.node_ns(node), layout.switch_port(node)
        with plumbing.links(layout.switch_ns) as switch, plumbing.links(ns) as inside:
            if not inside.exists(layout.NODE_IFACE):
                switch.delete(port)  # the switch end of a pair half-made by a crash
                switch.add_veth(port, layout.NODE_IFACE, ns, mtu)
            switch.set(port, master=layout.SWITCH_BRIDGE, state="up")
            inside.set("lo", state="up")
            inside.replace_address(layout.NODE_IFACE, address, self.spec.lab.subnet.prefixlen)
            inside.set(layout.NODE_IFACE, mtu=mtu, state="up")
            if self.options.nat:
                self._ensure_nat_interface(inside)

    def _cable_host(self) -> None:
        """This machine's link to the lab switch, with its address (idempotent)."""
        layout = self.layout
        plumbing.cable_host(
            layout.host_link,
            layout.switch_ns,
            layout.SWITCH_HOST_PORT,
            layout.SWITCH_BRIDGE,
            str(self.host_address),
            self.spec.lab.subnet.prefixlen,
            self.spec.lab.mtu,
        )

    NAT_IFACE = "eth0"
    NAT_ADDRESS = "10.0.2.15"  # VirtualBox's NAT address: identical on every VM
    NAT_PREFIX = 24

    def _ensure_nat_interface(self, inside: plumbing.Links) -> None:
        # A dead-end pair inside the node: an address no other node can reach, which
        # is exactly what a VirtualBox NAT adapter is from the other VMs' view.
        if not inside.exists(self.NAT_IFACE):
            inside.add_veth(self.NAT_IFACE, "nat0", None, self.spec.lab.mtu)
        inside.replace_address(self.NAT_IFACE, self.NAT_ADDRESS, self.NAT_PREFIX)
        inside.set("nat0", state="up")
        inside.set(self.NAT_IFACE, state="up")

    # --- services (dockerd, etcd, ...) inside a node --------------------------------
    def in_node(self, node: str, argv: Sequence[str]) -> list[str]:
        """`argv` inside the node: its network namespace, and a UTS namespace of its own
        named after the node."""
        return plumbing.in_namespace(self.layout.node_ns(node), node, argv)

    def spawn(self, node: str, service: str, argv: Sequence[str]) -> int:
        """Start a long-running service inside the node's namespaces, detached.

        nsenter and unshare exec in place, so the pid we get is the service's own.
        """
        node_dir = self.layout.node_dir(node)
        node_dir.mkdir(parents=True, exist_ok=True)
        log = self.layout.log_file(node, service).open("ab")
        # Logs are appended across restarts; the marker lets readers take only the
        # current run (an old panic must not explain a new death).
        log.write(f"{START_MARKER} {service} at {time.time():.3f}\n".encode())
        log.flush()
        cmd = self.in_node(node, argv)
        with log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self.layout.pid_file(node, service).write_text(f"{proc.pid}\n")
        return proc.pid

    def service_pid(self, node: str, service: str, binary: str | None = None) -> int | None:
        """The service's pid if it is alive (and really is `binary`), else None."""
        try:
            pid = int(self.layout.pid_file(node, service).read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # A zombie left by our own Popen is dead for our purposes.
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        if binary and comm != binary[:15]:
            return None
        return pid

    def stop_service(self, node: str, service: str, binary: str, timeout: float = 10) -> None:
        pid = self.service_pid(node, service, binary)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            # A stopped service (SIGSTOP: hung) acts on SIGTERM only once it runs again;
            # without this it sat out the whole timeout before its SIGKILL (systemd and
            # kill(1)'s habit too).
            os.kill(pid, signal.SIGCONT)
        if not wait_until(lambda: self.service_pid(node, service, binary) is None, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def current_log(self, node: str, service: str) -> str | None:
        """The service's log since its latest start, or None when there is none."""
        try:
            text = self.layout.log_file(node, service).read_text(errors="replace")
        except FileNotFoundError:
            return None
        return text.rsplit(START_MARKER, 1)[-1]

    def engine_env(self, node: str) -> dict[str, str]:
        """DOCKER_* variables that point the docker CLI at this node's engine."""
        spec = self.spec
        if spec.engine.tls and self.host_address is not None:
            return {
                "DOCKER_HOST": f"tcp://{spec.address_of(node)}:{spec.engine.api_port}",
                "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.layout.client_cert_dir),
                "DOCKER_MACHINE_NAME": node,
            }
        return {"DOCKER_HOST": f"unix://{self.layout.docker_socket(node)}"}

    # --- teardown ------------------------------------------------------------------------
    def destroy(self) -> list[str]:
        """Remove everything the lab made; works from names, whatever state it is in."""
        return teardown.destroy_local_lab(self.layout)

    def exists(self) -> bool:
        return bool(teardown.lab_namespaces(self.layout)) or self.layout.state_dir.exists()
