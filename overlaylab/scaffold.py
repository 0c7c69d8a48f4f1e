"""`invoke new`: a cluster spec from a few choices, checked by the real loader before
it is written, so the file on disk is always one `up` accepts.

Every combination of KV backend, orchestration mode, provider and networks renders a
valid spec. Where a choice cannot apply (swarm mode keeps its own store, so `--kv` has
nothing to configure), the spec says so in a comment instead of failing.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from overlaylab.errors import OverlaylabError, SpecError
from overlaylab.scaffold_options import (
    DEFAULT_NODES,
    DEFAULT_SUBNET,
    KV_BACKENDS,
    MODES,
    PROVIDERS,
)
from overlaylab.spec.loader import FIRST_NODE_HOST, parse_spec
from overlaylab.spec.models import (
    DEFAULT_KV_PORTS,
    NAME_PATTERN,
    VAGRANT_NODE_IMAGE,
    VagrantProviderSpec,
)
from overlaylab.spec.schema import SCHEMA_PATH
from overlaylab.templates import render

DEFAULT_NETWORKS = ("dn",)
KV_NODE = "kv"
FIRST_OVERLAY = ipaddress.IPv4Network("10.0.9.0/24")  # the 1.9 guide's overlay subnet
TEMPLATE = "new-layout.yml.j2"
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class LayoutChoices:
    """What `invoke new` was asked for. `kv=None`: etcd where a store is needed."""

    name: str
    nodes: int = DEFAULT_NODES
    kv: str | None = None
    mode: str = "none"
    provider: str = "local"
    networks: tuple[str, ...] = DEFAULT_NETWORKS
    subnet: str = DEFAULT_SUBNET

    @property
    def needs_kv(self) -> bool:
        return self.mode != "swarm-mode"

    @property
    def kv_backend(self) -> str | None:
        return (self.kv or "etcd") if self.needs_kv else None


@dataclass
class PlannedNode:
    name: str
    address: ipaddress.IPv4Address
    roles: list[str]


@dataclass
class PlannedNetwork:
    name: str
    subnet: ipaddress.IPv4Network

    @property
    def yaml_name(self) -> str:
        return yaml_scalar(self.name)


def yaml_scalar(text: str) -> str:
    """`text` as a one-line YAML scalar: quoted only when YAML would read it as
    something else (a network named `yes`, `null` or `1e3` stays a string)."""
    return yaml.safe_dump(text, width=1000).splitlines()[0]


@dataclass
class Layout:
    """Everything the template lays out."""

    choices: LayoutChoices
    subnet: ipaddress.IPv4Network
    nodes: list[PlannedNode]
    networks: list[PlannedNetwork]
    notes: list[str] = field(default_factory=list)


def parse_networks(text: str) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"); blanks dropped, so "" means no overlay at all."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def check_choices(choices: LayoutChoices) -> ipaddress.IPv4Network:
    """Every problem with the options at once, in their own terms; the lab subnet."""
    problems: list[str] = []
    if not re.match(NAME_PATTERN, choices.name):
        problems.append(
            f"NAME {choices.name!r} must be a lowercase letter then up to 11 letters, digits "
            "or dashes (it names namespaces and interfaces), e.g. mylab"
        )
    if choices.nodes < 1:
        problems.append(f"--nodes {choices.nodes}: a lab needs at least 1 engine node")
    for option, value, allowed in (
        ("--kv", choices.kv, KV_BACKENDS),
        ("--mode", choices.mode, MODES),
        ("--provider", choices.provider, PROVIDERS),
    ):
        if value is not None and value not in allowed:
            problems.append(f"{option} {value!r} must be one of {', '.join(allowed)}")
    problems += _network_problems(choices.networks)
    subnet = None
    try:
        subnet = ipaddress.IPv4Network(choices.subnet)
    except ValueError as exc:
        problems.append(
            f"--subnet {choices.subnet!r} is not an IPv4 network ({exc}); "
            "e.g. 192.168.94.0/24, host bits zero"
        )
    if subnet is not None and choices.nodes >= 1:
        count = choices.nodes + (1 if choices.needs_kv else 0)
        if _first_address(subnet, count) is None:
            problems.append(
                f"{count} nodes do not fit in --subnet {subnet} beside the host's address; "
                "use a larger subnet, e.g. a /24"
            )
    if problems or subnet is None:
        raise OverlaylabError("invoke new: " + "; ".join(problems))
    return subnet


def _network_problems(names: Sequence[str]) -> list[str]:
    problems = []
    for name in names:
        if not _NETWORK_NAME.match(name):
            problems.append(
                f"--networks: {name!r} is not a network name (letters, digits, _ . -; "
                "starting with a letter or digit)"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"--networks names {', '.join(duplicates)} more than once")
    return problems


def _first_address(subnet: ipaddress.IPv4Network, count: int) -> ipaddress.IPv4Address | None:
    """Where node addresses start: .10 as the loader's defaults, lower in a small
    subnet; never the network, the broadcast or the host's .1. None: they do not fit."""
    last = subnet.broadcast_address - 1
    for offset in (FIRST_NODE_HOST, 2):
        first = subnet.network_address + offset
        if first + (count - 1) <= last:
            return first
    return None


def _overlay_subnets(lab: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Network]:
    """10.0.9.0/24, 10.0.10.0/24, ... skipping any that overlaps the lab subnet."""
    candidate = FIRST_OVERLAY
    while True:
        if not candidate.overlaps(lab):
            yield candidate
        candidate = ipaddress.IPv4Network((candidate.network_address + 256, 24))


def plan_layout(choices: LayoutChoices) -> Layout:
    subnet = check_choices(choices)
    names = ([KV_NODE] if choices.needs_kv else []) + [
        f"node{i}" for i in range(1, choices.nodes + 1)
    ]
    first = _first_address(subnet, len(names))
    assert first is not None  # check_choices made sure
    nodes = [PlannedNode(n, first + i, _roles(choices, n, i)) for i, n in enumerate(names)]
    overlays = _overlay_subnets(subnet)
    networks = [PlannedNetwork(name, next(overlays)) for name in choices.networks]
    return Layout(choices, subnet, nodes, networks, _notes(choices))


def _roles(choices: LayoutChoices, name: str, index: int) -> list[str]:
    if name == KV_NODE:
        return ["kv"]
    lead = index == (1 if choices.needs_kv else 0)  # the first engine node
    if choices.mode == "classic-swarm":
        return ["engine", "swarm-master" if lead else "swarm-agent"]
    if choices.mode == "swarm-mode":
        return ["engine", "manager" if lead else "worker"]
    return ["engine"]


def _notes(choices: LayoutChoices) -> list[str]:
    notes = []
    if choices.kv is not None and not choices.needs_kv:
        notes.append(
            f"--kv {choices.kv} is not used: swarm mode keeps its own (raft) store, and "
            "dockerd refuses cluster-store in swarm mode"
        )
    if choices.kv_backend == "consul":
        notes.append(
            "consul: Debian packages neither consul nor a dockerd with the consul store "
            "(its docker.io has etcd and zookeeper only); `up` needs a consul binary on "
            "PATH and an upstream dockerd 20.10, or use --kv etcd"
        )
    return notes


def invoked_as(choices: LayoutChoices) -> str:
    """The `invoke new` line that makes this layout (for the file's header)."""
    words = ["invoke", "new", choices.name, "--nodes", str(choices.nodes)]
    if choices.kv is not None:
        words += ["--kv", choices.kv]
    words += ["--mode", choices.mode, "--provider", choices.provider]
    words += ["--networks", ",".join(choices.networks), "--subnet", choices.subnet]
    return shlex.join(words)


def layout_text(choices: LayoutChoices, target: Path) -> str:
    """The spec's YAML, validated as if it were already at `target`."""
    layout = plan_layout(choices)
    vagrant = VagrantProviderSpec(type="vagrant")
    text = render(
        TEMPLATE,
        layout=layout,
        choices=choices,
        command=invoked_as(choices),
        name=yaml_scalar(choices.name),
        path=_display(target),
        schema=os.path.relpath(SCHEMA_PATH, target.parent.resolve()),
        kv_port=DEFAULT_KV_PORTS[choices.kv_backend] if choices.kv_backend else None,
        vagrant=vagrant,
        vagrant_image=VAGRANT_NODE_IMAGE,
    )
    try:
        parse_spec(text, source=str(target), spec_dir=target.parent)
    except SpecError as exc:
        # A bug in the template or the planning: say so rather than write a bad file.
        raise OverlaylabError(
            f"invoke new made a spec the loader refuses (a bug; nothing was written): {exc}"
        ) from exc
    return text


def _display(target: Path) -> str:
    try:
        return str(target.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(target)


def write_layout(
    choices: LayoutChoices, inventory_dir: Path, *, force: bool = False
) -> tuple[Path, Layout]:
    """Write `<inventory_dir>/<name>.yml`; refuse to replace a file unless `force`."""
    target = inventory_dir / f"{choices.name}.yml"
    if target.exists() and not force:
        raise OverlaylabError(
            f"{target} exists; pass --force to replace it, or choose another NAME"
        )
    text = layout_text(choices, target)
    try:
        inventory_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        raise OverlaylabError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, plan_layout(choices)
