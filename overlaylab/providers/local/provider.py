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

import ipaddress
from collections.abc import Callable, Iterator

from overlaylab.layout import LabLayout
from overlaylab.providers.local import memory_state, plumbing, teardown
from overlaylab.providers.local.node import LocalNode
from overlaylab.providers.local.preflight import local_preflight
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec


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
            self._nodes[name] = LocalNode(self.spec, self.layout, name, self.host_address)
        return self._nodes[name]

    def nodes(self) -> Iterator[LocalNode]:
        return (self.node(n.name) for n in self.spec.nodes)

    def preflight(self) -> list[tuple[str, str]]:
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
        if memory_state.mount_state_in_memory(self.layout):
            say("state", f"{self.layout.state_dir} in memory (tmpfs)")
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

    # --- teardown ------------------------------------------------------------------------
    def destroy(self) -> list[str]:
        """Remove everything the lab made; works from names, whatever state it is in."""
        return teardown.destroy_local_lab(self.layout)

    def exists(self) -> bool:
        return bool(teardown.lab_namespaces(self.layout)) or self.layout.state_dir.exists()
